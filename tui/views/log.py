"""The event log view (key 2): every notable event of the session, one entry
each, wrapped to the width of the terminal rather than cut off."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.widgets import RichLog

from minigpt.plumbing.terminal import printable
from tui.text import TAB

LOG_LINES = 2000  # the log keeps this many entries


class LogView(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        # min_width: RichLog renders at 78 columns at least, wider than an 80-column terminal leaves it
        super().__init__(max_lines=LOG_LINES, min_width=20, wrap=True, markup=False, highlight=False, id=id)
        self.entries: deque[str] = deque(maxlen=LOG_LINES)  # as written, before wrapping

    def add(self, text: str) -> None:
        text = printable(text, TAB)
        self.entries.append(text)
        self.write(Text(text))
