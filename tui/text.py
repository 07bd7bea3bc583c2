"""Turning model output and numbers into text that is safe and short to show."""

from __future__ import annotations

import math
import unicodedata

from minigpt.plumbing.terminal import printable

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
    """A token's text for a label: whitespace made visible (a space as ␣, a
    newline as ⏎), and any other control character, which could move the
    cursor, written as its escape (\\x01)."""
    return "".join(VISIBLE_WHITESPACE.get(c) or (f"\\x{ord(c):02x}" if unicodedata.category(c) in ("Cc", "Cs")
                                                 else c) for c in label)


def format_probability(p: float) -> str:
    """0.413 -> 41%, 0.0413 -> 4.1%, 0.00413 -> 0.41%: two figures, whatever the size."""
    return f"{p:.0%}" if p >= 0.1 else f"{p:.1%}" if p >= 0.01 else f"{p:.2%}"


def fit(parts: list[tuple[int, str]], width: int, separator: str = "  ") -> str:
    """The parts that fit on one line of width characters, in their order; when
    not all do, the least important (highest rank; later ones first among equals)
    are left out, and a lone part too long for the line is cut with an ellipsis."""
    shown = [part for part in parts if part[1]]
    by_importance = sorted(shown, key=lambda part: part[0])
    while len(by_importance) > 1 and len(separator.join(text for _, text in by_importance)) > width:
        dropped = by_importance.pop()
        shown.remove(dropped)
    line = separator.join(text for _, text in shown)
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
