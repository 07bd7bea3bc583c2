"""Who is who in the chat: the name you speak as and the one the model plays.
The text's most frequent speakers are listed, and offered as you type a name
(→ takes the suggestion); any name can be typed. Enter in the first field goes
to the second, Enter there applies; Escape leaves the roles as they were."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static

LISTED = 8  # speakers named in the dialog


class RolesScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="roles.cancel")]

    def __init__(self, speakers: list[tuple[str, int]], user: str, model: str) -> None:
        """speakers: (name, turns) of the text, most turns first."""
        super().__init__()
        self.speakers, self.user, self.model = speakers, user, model

    def compose(self) -> ComposeResult:
        names = [name for name, _ in self.speakers]
        suggest = SuggestFromList(names, case_sensitive=False)
        listed = " · ".join(f"{name} {turns:,}" for name, turns in self.speakers[:LISTED])
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Who is who"
            dialog.border_subtitle = "Enter next · → takes the suggestion · Esc cancels"
            yield Static(f"The text's speakers, by turns: {listed}", id="roles-speakers", markup=False)
            yield Label("You are")
            yield Input(self.user, suggester=suggest, id="roles-user")
            yield Label("The model plays")
            yield Input(self.model, suggester=suggest, id="roles-model")
            yield Static("", id="roles-problem", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "roles-user":
            self.query_one("#roles-model", Input).focus()
            return
        user, model = (self.query_one(f"#roles-{role}", Input).value.strip() for role in ("user", "model"))
        if problem := _problem(user, model):
            self.query_one("#roles-problem", Static).update(problem)
            return
        self.dismiss((user, model))


def _problem(user: str, model: str) -> str | None:
    if not user or not model:
        return "Name both: who you are, and whom the model plays."
    if user == model:
        return "The model plays someone other than you."
    if any(mark in name for name in (user, model) for mark in ":."):
        return "A name without ':' or '.': the template adds the mark."
    return None
