"""Attention weights as shaded cells: one map (a row per query token, a column
per key token, labelled by token), or a grid of small maps, one per layer and
head. At character level one cell is one character of the text."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.text import visible_token

SHADES = " ·░▒▓█"  # from no attention to all of it
ROW_LABEL_WIDTH = 4


@dataclass(frozen=True)
class AttentionData:
    """Weights of the last queries over the last keys, newest last. rows[i][j] is
    how much query i attends to key j; the last row is the current position."""

    rows: list[list[float]]
    labels: list[str]  # the tokens, one per key; the queries are the last len(rows) of them


@dataclass(frozen=True)
class SmallMap:
    title: str  # e.g. "L1 H2"
    data: AttentionData


def shade(weight: float) -> str:
    """The cell of a weight: blank for none (the future, under the causal mask), a dot at least for any."""
    if weight <= 0:
        return SHADES[0]
    return SHADES[min(max(int(weight * (len(SHADES) - 1) + 0.5), 1), len(SHADES) - 1)]


def fit(data: AttentionData, width: int, height: int) -> AttentionData:
    """The part of data that fits width x height cells: the newest keys and queries."""
    columns, rows = max(width, 1), max(height, 1)
    return AttentionData([row[-columns:] for row in data.rows[-rows:]], data.labels[-columns:])


class AttentionMap(Widget):
    COMPONENT_CLASSES = {"attention-map--cells", "attention-map--label", "attention-map--current"}

    data: reactive[AttentionData | None] = reactive(None)

    def render(self) -> Text:
        if self.data is None or not self.data.rows:
            return Text("")
        data = fit(self.data, self.size.width - ROW_LABEL_WIDTH - 1, self.size.height - 1)
        label_style = self.get_component_rich_style("attention-map--label")
        lines = [Text(" " * (ROW_LABEL_WIDTH + 1) + "".join(visible_token(t)[0] for t in data.labels), label_style)]
        first_query = len(data.labels) - len(data.rows)
        for i, row in enumerate(data.rows):
            current = i == len(data.rows) - 1
            cells = self.get_component_rich_style("attention-map--current" if current else "attention-map--cells")
            label = visible_token(data.labels[first_query + i])[-ROW_LABEL_WIDTH:].rjust(ROW_LABEL_WIDTH)
            lines.append(Text.assemble((label + " ", label_style), ("".join(map(shade, row)), cells)))
        return Text("\n").join(lines)


class AttentionGrid(Widget):
    """Every layer x head as a small map of the newest positions, one layer a row."""

    COMPONENT_CLASSES = {"attention-grid--cells", "attention-grid--title"}

    maps: reactive[list[list[SmallMap]]] = reactive(list)  # [layer][head]

    def render(self) -> Text:
        if not self.maps:
            return Text("")
        layers, heads = len(self.maps), len(self.maps[0])
        side = max(min((self.size.width + 1) // heads - 1, self.size.height // layers - 1), 1)
        title_style = self.get_component_rich_style("attention-grid--title")
        cell_style = self.get_component_rich_style("attention-grid--cells")
        lines = []
        for layer in self.maps:
            small = [fit(m.data, side, side) for m in layer]
            lines.append(Text(" ".join(m.title[:side].ljust(side) for m in layer), title_style))
            for r in range(side):
                cells = (["".join(map(shade, d.rows[r])).ljust(side) if r < len(d.rows) else " " * side
                          for d in small])
                lines.append(Text(" ".join(cells), cell_style))
        return Text("\n").join(lines[: self.size.height])
