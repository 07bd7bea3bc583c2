"""The event log view (key 2): every notable event of the session, one line each."""

from __future__ import annotations

from textual.widgets import Log

from minigpt.plumbing.terminal import printable
from tui.text import TAB

LOG_LINES = 2000  # the log keeps this many lines


class LogView(Log):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=LOG_LINES, id=id)

    def add(self, text: str) -> None:
        self.write_line(printable(text, TAB))
