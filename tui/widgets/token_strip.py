"""The text being inspected, one line of tokens: coloured by the probability
the model gave each one (its boundaries shown by alternating shades and ids
in the tokens view), the token of the current step highlighted."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from minigpt.plumbing.terminal import printable
from tui.text import visible_token

# The probability levels that pick a token's colour, each a component class of the strip.
LEVELS = ((0.5, "high"), (0.2, "mid"), (0.05, "low"), (0.0, "rare"))


@dataclass(frozen=True)
class StripToken:
    label: str  # the token's own text
    id: int
    probability: float | None  # of the token where it was drawn; None in the prompt


@dataclass(frozen=True)
class Strip:
    tokens: list[StripToken]
    cursor: int  # index of the current step's token


def level(probability: float) -> str:
    return next(name for floor, name in LEVELS if probability >= floor)


def visible_range(widths: list[int], cursor: int, budget: int) -> range:
    """The tokens, around cursor, whose widths fit in budget columns (the cursor's
    always; then alternately one after it and one before it)."""
    start, end, used = cursor, cursor + 1, widths[cursor] if widths else 0
    while True:
        grown = False
        for side in ("after", "before"):
            index = end if side == "after" else start - 1
            if 0 <= index < len(widths) and used + widths[index] <= budget:
                used += widths[index]
                start, end = (start, end + 1) if side == "after" else (start - 1, end)
                grown = True
        if not grown:
            return range(start, end)


class TokenStrip(Widget):
    """One line: the text coloured by probability, or (show_ids) the tokens
    themselves, each with its id, in alternating shades."""

    COMPONENT_CLASSES = {"token-strip--" + name for _, name in LEVELS} | {
        "token-strip--prompt", "token-strip--cursor", "token-strip--even", "token-strip--odd"}

    strip: reactive[Strip | None] = reactive(None)

    def __init__(self, *, show_ids: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_ids = show_ids

    def render(self) -> Text:
        if not self.strip or not self.strip.tokens:
            return Text("")
        pieces = [self._piece(i, token) for i, token in enumerate(self.strip.tokens)]
        shown = visible_range([len(text) for text, _ in pieces], self.strip.cursor, max(self.size.width, 1))
        return Text.assemble(*(pieces[i] for i in shown), no_wrap=True, overflow="crop")

    def _piece(self, index: int, token: StripToken) -> tuple[str, object]:
        if self.show_ids:
            text = f"{visible_token(token.label)}·{token.id} "
            style = self.get_component_rich_style("token-strip--even" if index % 2 == 0 else "token-strip--odd")
        else:
            text = printable(token.label, " ").replace("\n", "⏎")  # spaces stay spaces: it reads as text
            name = "prompt" if token.probability is None else level(token.probability)
            style = self.get_component_rich_style(f"token-strip--{name}")
        if self.strip and index == self.strip.cursor:
            style = style + self.get_component_rich_style("token-strip--cursor")
        return text, style
