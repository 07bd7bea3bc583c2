"""Turning model output and numbers into text that is safe and short to show."""

from __future__ import annotations

import math


def printable(text: str) -> str:
    """Drop control characters, escape sequences included, keeping newlines.
    Model output and prompts are untrusted: an ESC or a carriage return
    could otherwise move the terminal's cursor or change its state. Tabs
    become spaces so that wrapping stays predictable."""
    text = text.replace("\t", "    ")
    return "".join(c for c in text if c.isprintable() or c == "\n")


def one_line(text: str, width: int) -> str:
    """text on one line, cut to width characters with an ellipsis."""
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


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
