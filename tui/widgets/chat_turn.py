"""The turns of a chat: each the speaker and the words, streaming in for the
model's turn. Above the oldest turn the model still reads, a line marks where
its memory begins; the turns above that line are dimmed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Label

from tui.widgets.completion_list import Completion, CompletionList

if TYPE_CHECKING:
    from minigpt.chat import Prompt
    from minigpt.plumbing.conversations import StoredTurn


class TurnCard(Completion):
    """A Completion (the list selects it, its text streams in) that is one turn of a conversation."""

    def __init__(self, title: str, text: str = "", *, role: str) -> None:
        super().__init__(title, text=text, classes=f"-{role}")
        self.role = role
        self.turn: StoredTurn | None = None  # what the conversations file keeps of it, once it has ended
        self._memory = Label("", classes="memory", markup=False)  # made here: it may be set before mounting
        self._memory.display = False

    def compose(self) -> ComposeResult:
        yield self._memory
        yield from super().compose()

    def show_memory(self, line: str | None, forgotten: bool) -> None:
        """line: the memory line to show above this turn (None: none); forgotten: the model no longer reads it."""
        self._memory.update(line or "")
        self._memory.display = line is not None
        self.set_class(forgotten, "-forgotten")


def turn_card(turn: StoredTurn) -> TurnCard:
    """A turn that has ended (or was read back from the file), as the list shows it."""
    note = ""
    if turn.role == "model":
        note = f" · step {turn.step:,}" + (" · cancelled" if turn.ended == "cancelled" else "")
    card = TurnCard(turn.speaker + note, turn.text, role=turn.role)
    card.turn = turn
    card.add_class("-done")
    return card


class TurnList(CompletionList):
    """The turns of the conversation, selected and followed as completions are."""

    @property
    def target(self) -> TurnCard | None:
        target = super().target
        return target if isinstance(target, TurnCard) else None

    def show_memory(self, turns: list[StoredTurn], prompt: Prompt, context: int) -> None:
        """Mark the oldest of turns that prompt holds, and dim those before it."""
        place = {turn.id: index for index, turn in enumerate(turns)}
        for card in self.query(TurnCard):
            index = place.get(card.turn.id, -1) if card.turn else -1  # -1: streaming, or failed
            card.show_memory(_memory_line(prompt, context) if index == prompt.first else None,
                             0 <= index < prompt.first)


def _memory_line(prompt: Prompt, context: int) -> str | None:
    """The line above the oldest turn the model reads, if it does not read them all."""
    lines = []
    if prompt.first:
        turns = f"the {prompt.first} turns above do" if prompt.first > 1 else "the turn above does"
        lines.append(f"── memory begins here: {turns} not fit in {context} tokens ──")
    if prompt.cut:
        lines.append(f"── the model reads only the end of this turn ({context} tokens) ──")
    return "\n".join(lines) or None
