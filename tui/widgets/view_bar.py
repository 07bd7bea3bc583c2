"""The view bar: one row that names every view with its key, the one shown
highlighted, as btop numbers its boxes, and at its right end the keys that
list every other key (help, the command palette). At any terminal size every
view can be found from the screen itself; a click switches too."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label


@dataclass(frozen=True)
class ViewTab:
    view: str  # the id of the view's pane
    title: str
    key: str  # as the user's keymap has it, e.g. "1"


class ViewLabel(Label):
    def __init__(self, tab: ViewTab) -> None:
        super().__init__(Text.assemble((tab.key, "bold"), " ", tab.title), id=f"tab-{tab.view}")
        self.tab = tab

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(ViewBar.Selected(self.tab.view))


class ViewBar(Horizontal):
    tabs: reactive[tuple[ViewTab, ...]] = reactive((), recompose=True)
    current: reactive[str] = reactive("")
    hints: reactive[str] = reactive("", recompose=True)  # e.g. "? keys  ^p commands"

    class Selected(Message):
        """The user clicked a view's name."""

        def __init__(self, view: str) -> None:
            super().__init__()
            self.view = view

    def compose(self) -> ComposeResult:
        yield Label("MiniGPT", id="app-name")
        for tab in self.tabs:
            yield ViewLabel(tab).set_class(tab.view == self.current, "-current")
        yield Label(self.hints, id="hints", markup=False)

    def watch_current(self) -> None:
        for label in self.query(ViewLabel):
            label.set_class(label.tab.view == self.current, "-current")
