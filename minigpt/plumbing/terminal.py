"""Presenting text and times in a terminal, for the CLIs and the app alike."""

from __future__ import annotations

import unicodedata


def printable(text: str, tab: str = "\t") -> str:
    """Drop control characters but keep newlines; tabs become `tab` (the app
    passes spaces, so that its wrapping stays predictable). Model output and
    prompts are untrusted: an ESC (the start of every escape sequence), a
    carriage return or a backspace could move the cursor, rewrite what is
    shown or change the terminal's state. Lone surrogates go too: they cannot
    be written as UTF-8."""
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))
    return "".join(kept).replace("\t", tab)


def format_seconds(seconds: float) -> str:
    """75 -> 1:15, 3725 -> 1:02:05."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def format_age(seconds: float) -> str:
    """How long ago, in words: 30 -> "just now", 7200 -> "2 hours ago", 3 * 86400 -> "3 days ago"."""
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def unescape(text: str) -> str:
    """Read \\n, \\t and \\\\ the way people type them on a command line or in a one-line prompt."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    out, chars = [], iter(text)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append(escapes.get(nxt, c + nxt))
        else:
            out.append(c)
    return "".join(out)
