"""The help screen: every key first, one row each, grouped by the view it acts
in, as currently mapped; then a few lines on what the app does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keys import HelpRow

ABOUT = """\
MiniGPT trains a small GPT on a text and lets you watch it learn: the loss \
falls on the chart (the grey line is a model that guesses every token alike), \
a sample is written at each evaluation, and a prompt is completed from the \
weights of the moment, even while training runs.

The checkpoint is saved at every evaluation, on s, when training stops and \
when you quit. Sampling settings live in {settings}; its [keymap] table remaps \
any key above by its id (e.g. train = "f5"), and [tui] keeps the theme."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close")]

    def __init__(self, groups: list[tuple[str, list[HelpRow]]], settings_path: str) -> None:
        super().__init__()
        self.groups = groups
        self.settings_path = settings_path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "Esc closes · ↑↓ scroll"
            rows = [row for _, group in self.groups for row in group]
            widths = (max(len(key) for key, _, _ in rows), max(len(id_) for _, _, id_ in rows))
            for title, group in self.groups:
                yield Static(Text(title, style="bold"), classes="group")
                yield Static(key_table(group, widths), classes="keys")
            yield Static(Text(ABOUT.format(settings=self.settings_path)), id="about")


def key_table(rows: list[HelpRow], widths: tuple[int, int]) -> Table:
    """A row a key: the key, what it does, its id; the columns as wide in every group."""
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(style="bold", no_wrap=True, width=widths[0])
    table.add_column(ratio=1)
    table.add_column(style="dim", no_wrap=True, width=widths[1])
    for key, does, binding_id in rows:
        table.add_row(key, does, binding_id)
    return table
