"""The logit lens at one position: what each layer's residual stream would
predict if the model stopped there (the embeddings first, the output last),
a column per layer and a row per rank."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.text import format_probability, visible_token


@dataclass(frozen=True)
class LensColumn:
    title: str  # "emb", "L1", ..., "out"
    predictions: list[tuple[str, float]]  # token label, probability; most likely first
    matches_output: bool  # its top prediction is the model's


class LogitLens(Widget):
    COMPONENT_CLASSES = {"logit-lens--title", "logit-lens--match", "logit-lens--other"}

    columns: reactive[list[LensColumn]] = reactive(list)

    def render(self) -> Text:
        if not self.columns:
            return Text("")
        width = max(self.size.width // len(self.columns), 1)
        lines = [Text("".join(c.title.ljust(width) for c in self.columns),
                      self.get_component_rich_style("logit-lens--title"))]
        for rank in range(max(self.size.height - 1, 0)):
            line = Text()
            for column in self.columns:
                if rank >= len(column.predictions):
                    line.append(" " * width)
                    continue
                label, probability = column.predictions[rank]
                name = "match" if rank == 0 and column.matches_output else "other"
                cell = f"{visible_token(label)[:max(width - 8, 1)]} {format_probability(probability)}"
                line.append(cell[:width - 1].ljust(width), self.get_component_rich_style(f"logit-lens--{name}"))
            lines.append(line)
        return Text("\n").join(lines)
