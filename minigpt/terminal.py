"""Text that is safe to write to a terminal."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """Drop control characters but keep newlines and tabs. Model output and
    prompts are untrusted: an ESC (the start of every escape sequence), a
    carriage return or a backspace could move the cursor, rewrite what is
    shown or change the terminal's state."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
