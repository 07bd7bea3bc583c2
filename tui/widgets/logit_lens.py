"""The logit lens at one position: what the residual stream would predict if
the model stopped after each stage (the embeddings, then each layer's
attention and MLP; the last is the model's output), a column per stage.

Rows: the stages' names, their top predictions (as many as fit), and last
the probability each stage gives the token drawn next, so that a learner
sees which sublayer finds it. Wherever it is among the top predictions,
the drawn token is highlighted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.text import format_probability, visible_token

LONG_TITLES = 7  # columns at least this wide say "att 1", narrower ones "a1"
TOOLTIP = ("The logit lens: what the model would predict if it stopped after the embeddings (emb), after each "
           "layer's attention (att) or MLP (mlp). The last row: the probability of the token drawn next.")


class LensCell(NamedTuple):
    label: str  # the token's text
    probability: float
    drawn: bool  # the token drawn next


@dataclass(frozen=True)
class LensColumn:
    stage: str  # "embeddings", "attention 1", "mlp 1", ...
    predictions: list[LensCell]  # most likely first
    drawn: LensCell  # the token drawn next, whatever its rank


def stage_title(stage: str, width: int) -> str:
    """ "attention 1" -> "att 1" (or "a1" in a narrow column); "embeddings" -> "emb" (or "e")."""
    kind, _, layer = stage.partition(" ")
    if width >= LONG_TITLES:
        return f"{kind[:3]} {layer}".rstrip()
    return kind[0] + layer


class LogitLens(Widget):
    COMPONENT_CLASSES = {"logit-lens--title", "logit-lens--drawn", "logit-lens--other", "logit-lens--next"}

    columns: reactive[list[LensColumn]] = reactive(list)

    def on_mount(self) -> None:
        self.tooltip = TOOLTIP

    def render(self) -> Text:
        if not self.columns:
            return Text("")
        width = max(self.size.width // len(self.columns), 1)
        title = self.get_component_rich_style("logit-lens--title")
        lines = [Text("".join(stage_title(c.stage, width)[:width - 1].ljust(width) for c in self.columns), title)]
        for rank in range(max(self.size.height - 2, 0)):
            line = Text()
            for column in self.columns:
                cell = column.predictions[rank] if rank < len(column.predictions) else None
                line.append(*self._cell(cell, width, "drawn" if cell and cell.drawn else "other"))
            lines.append(line)
        if self.size.height > 1:
            lines.append(Text.assemble(*(self._cell(c.drawn, width, "next") for c in self.columns)))
        return Text("\n").join(lines)

    def _cell(self, cell: LensCell | None, width: int, style: str) -> tuple[str, object]:
        if cell is None:
            return " " * width, ""
        text = f"{visible_token(cell.label)[:max(width - 7, 1)]} {format_probability(cell.probability)}"
        return text[:width - 1].ljust(width), self.get_component_rich_style(f"logit-lens--{style}")
