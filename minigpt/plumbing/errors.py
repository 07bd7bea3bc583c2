"""The root of MiniGPT's own exceptions. Each one means bad input or a known
failure, and its message alone tells the user what to do; the CLI and the TUI
show it as one line instead of a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MiniGPTError(Exception):
    pass


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """The end of an "unknown key" message: the closest known name, or all of them."""
    known = list(known)
    matches = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else f" (known keys: {', '.join(known)})"
