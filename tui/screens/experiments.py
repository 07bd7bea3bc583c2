"""The experiments picker of the Lab view (key e): every experiment with its
question, the built-in ones and those run here before. Enter picks, Escape
leaves the view as it was."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from minigpt.plumbing.experiments import Experiment


def describe(experiment: Experiment) -> Text:
    """Two lines: the name, then the question (and what it needs, when this MiniGPT lacks it)."""
    text = Text(experiment.name, style="bold")
    text.append(f"\n  {experiment.question}")
    if missing := experiment.missing_keys():
        text.append(f"\n  needs {', '.join(missing)}: not in this version yet", style="dim")
    return text


class ExperimentsScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="experiments.cancel")]

    def __init__(self, experiments: list[Experiment], current: str | None) -> None:
        super().__init__()
        self.experiments, self.current = experiments, current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Experiments"
            dialog.border_subtitle = "↑↓ choose · Enter picks · Esc cancels"
            yield OptionList(*(Option(describe(e), id=e.name) for e in self.experiments), id="experiments-list")

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        names = [e.name for e in self.experiments]
        listing.highlighted = names.index(self.current) if self.current in names else 0
        listing.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
