"""Turning model output and numbers into text that is safe and short to show."""

from __future__ import annotations

import math

from minigpt.terminal import printable

TAB = "    "  # what a tab becomes on screen, so that wrapping stays predictable


def one_line(text: str, width: int) -> str:
    """text on one line, cut to width characters with an ellipsis."""
    flat = " ".join(printable(text, TAB).split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def format_count(n: float) -> str:
    """1234 -> 1.2k, 830000 -> 830k, 1500000 -> 1.50M."""
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def format_loss(loss: float | None) -> str:
    if loss is None:
        return "–"
    return f"{loss:.4f}" if math.isfinite(loss) else str(loss)


VISIBLE_WHITESPACE = {"\n": "⏎", " ": "␣", "\t": "⇥"}


def visible_token(label: str) -> str:
    """A token's text with its whitespace made visible (a space as ␣, a newline
    as ⏎) and nothing that could move the cursor: for labels, where a blank
    would read as nothing at all."""
    return "".join(VISIBLE_WHITESPACE.get(c, c) for c in printable(label)) or "∅"
