"""The help screen: what the app does and every key, as currently mapped."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# MiniGPT

Train a small GPT on a text file and watch it learn: the **loss chart** falls
while samples taken at each evaluation appear under it, each labelled with
its step. Type a **prompt** at any time, even while training runs, and the
model completes it from a snapshot of its current weights.

The checkpoint is saved at every evaluation, on **Save**, when training stops
and when you quit while training.

Sampling settings live in the settings file (`{settings}`); its `[keymap]` table
remaps any key below by its id, e.g. `train = "f5"`, and `[tui]` keeps the theme.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close")]

    def __init__(self, keys: list[tuple[str, str, str]], settings_path: str) -> None:
        """keys: (key, description, binding id) for every key of the app."""
        super().__init__()
        self.keys = keys
        self.settings_path = settings_path

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| `{key}` | {description} | `{id_}` |" for key, description, id_ in self.keys)
        table = f"## Keys\n\n| key | does | id |\n|---|---|---|\n{rows}\n"
        with VerticalScroll(id="dialog") as dialog:
            dialog.border_title = "Help"
            dialog.border_subtitle = "Esc closes"
            yield Markdown(INTRO.format(settings=self.settings_path) + "\n" + table)
