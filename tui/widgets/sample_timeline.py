"""The samples view's widgets: a timeline of the evaluations, and a card showing one sample."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from minigpt.plumbing.runs import Sample
from minigpt.plumbing.terminal import printable
from tui.text import TAB, format_loss


class SampleTimeline(Widget):
    """One row, a track from the first evaluation's step to the latest's: a dot
    at each evaluation, the two sides' samples marked L and R."""

    steps: reactive[tuple[int, ...]] = reactive(())
    left: reactive[int] = reactive(0)  # indices into steps
    right: reactive[int] = reactive(0)

    def render(self) -> RenderResult:
        if not self.steps:
            return "[dim]no samples yet[/]"
        width = max(self.size.width, 1)
        row = ["[dim]─[/]"] * width
        for index in range(len(self.steps)):
            row[self._column(index, width)] = "[dim]•[/]"
        left, right = self._column(self.left, width), self._column(self.right, width)
        row[left] = "[bold $text-accent]L[/]"
        row[right] = "[bold]◆[/]" if right == left else "[bold $text-primary]R[/]"
        return "".join(row)  # markup: the colours follow the theme

    def _column(self, index: int, width: int) -> int:
        """Where the sample at index lies on the track: by its step."""
        first, last = self.steps[0], self.steps[-1]
        return round((self.steps[index] - first) / (last - first) * (width - 1)) if last > first else 0


class SampleCard(Static):
    """One evaluation's sample, its step and val loss in the border title."""

    def show(self, sample: Sample | None, number: int, count: int, note: str) -> None:
        if sample is None:
            self.border_title = ""
            self.update(Text("Samples appear here at each evaluation: press t to train.", style="italic"))
            return
        self.border_title = f"step {sample.step:,} · val {format_loss(sample.val_loss)} · {number} of {count}"
        self.border_subtitle = note
        self.update(Text(printable(sample.text, TAB)))
