"""The next-token candidates of one step as horizontal bars: the raw
probability (temperature 1) beside the one after the sampling settings.
Tokens the settings removed are greyed; the drawn token is marked."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.text import visible_token

LABEL_WIDTH = 6
EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True)
class Bar:
    label: str
    raw: float
    processed: float
    drawn: bool


def bar(fraction: float, width: int) -> str:
    """fraction of width columns, to an eighth of a column."""
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def percent(probability: float) -> str:
    return f"{probability:6.1%}"


class ProbabilityBars(Widget):
    COMPONENT_CLASSES = {"probability-bars--header", "probability-bars--raw", "probability-bars--processed",
                         "probability-bars--removed", "probability-bars--drawn"}

    bars: reactive[list[Bar]] = reactive(list)

    def render(self) -> Text:
        # Each bar is scaled to the largest probability shown, so a flat distribution still reads.
        width = max((self.size.width - LABEL_WIDTH - 2 - 2 * 8) // 2, 1)  # marker, label, two bars and figures
        top = max((max(b.raw, b.processed) for b in self.bars), default=1.0) or 1.0
        header = self.get_component_rich_style("probability-bars--header")
        lines = [Text.assemble((f"{'':{LABEL_WIDTH + 2}}{'raw (T=1)':{width + 8}}settings", header))]
        for b in self.bars[: max(self.size.height - 1, 0)]:
            lines.append(self._line(b, width, top))
        return Text("\n").join(lines)

    def _line(self, b: Bar, width: int, top: float) -> Text:
        style = self.get_component_rich_style
        removed = b.processed == 0
        label_style = style("probability-bars--drawn") if b.drawn else style("probability-bars--removed") if removed \
            else ""
        raw_style = style("probability-bars--removed" if removed else "probability-bars--raw")
        processed_style = style("probability-bars--removed" if removed else "probability-bars--processed")
        label = visible_token(b.label)[:LABEL_WIDTH].ljust(LABEL_WIDTH)
        return Text.assemble(("▶ " if b.drawn else "  ", label_style), (label, label_style),
                             (bar(b.raw / top, width), raw_style), (f" {percent(b.raw)} ", raw_style),
                             (bar(b.processed / top, width), processed_style),
                             (f" {percent(b.processed)}" if not removed else "    cut", processed_style))
