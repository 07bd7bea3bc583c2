"""The samples view's widgets: a timeline of the evaluations, and a card showing one sample."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from minigpt.runs import Sample
from minigpt.terminal import printable
from tui.text import TAB, format_loss


class SampleTimeline(Widget):
    """One row: a dot for each evaluation (buckets of them when there are more
    than columns), with the two sides' places marked L and R."""

    count: reactive[int] = reactive(0)
    left: reactive[int] = reactive(0)
    right: reactive[int] = reactive(0)

    def render(self) -> RenderResult:
        if not self.count:
            return "[dim]no samples yet[/]"
        cells = min(self.count, max(self.size.width, 1))
        row = ["[dim]·[/]"] * cells
        left, right = (index * cells // self.count for index in (self.left, self.right))
        row[left] = "[bold $text-accent]L[/]"
        row[right] = "[bold]◆[/]" if right == left else "[bold $text-primary]R[/]"
        return "".join(row)  # markup: the colours follow the theme


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
