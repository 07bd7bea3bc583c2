"""The samples view (key 4): watch it learn. The sample drawn at every
evaluation, as a timeline to step through, two steps side by side: at first
the run's first sample (noise) on the left and its latest on the right.

← and → move one side along the timeline while the other stays pinned; p
swaps which side moves. The moving side, when at the latest sample, follows
each new one. The app hands over each evaluation's sample (and, for a resumed
run, those of its earlier sessions, read from its log)."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive

from minigpt.plumbing.runs import Sample
from tui.widgets.sample_timeline import SampleCard, SampleTimeline

Side = Literal["left", "right"]
STEP = Binding.Group("Step", compact=True)  # one footer item for ← and →


class SamplesView(Vertical, can_focus=True):
    BINDINGS = [
        Binding("left", "move(-1)", "Earlier", id="samples.earlier", key_display="←", group=STEP,
                tooltip="Samples: move the free side to the evaluation before"),
        Binding("right", "move(1)", "Later", id="samples.later", key_display="→", group=STEP,
                tooltip="Samples: move the free side to the evaluation after"),
        Binding("home", "move_to_end(False)", "First", id="samples.first", show=False,
                tooltip="Samples: move the free side to the first evaluation"),
        Binding("end", "move_to_end(True)", "Latest", id="samples.latest", show=False,
                tooltip="Samples: move the free side to the latest evaluation (it then follows new ones)"),
        Binding("p", "swap_sides", "Pin", id="samples.pin", show=False,  # each side's subtitle tells of it
                tooltip="Samples: pin the side that moves, and free the other"),
    ]

    left: reactive[int] = reactive(0)  # indices into samples
    right: reactive[int] = reactive(0)
    moving: reactive[Side] = reactive("right")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.samples: list[Sample] = []

    def compose(self) -> ComposeResult:
        timeline = SampleTimeline(id="sample-timeline")
        timeline.border_title = "samples by step"
        yield timeline
        with Horizontal(id="sample-cards"):
            yield SampleCard(id="sample-left")
            yield SampleCard(id="sample-right")

    def on_mount(self) -> None:
        self._show()

    def add_samples(self, samples: list[Sample]) -> None:
        """New samples, oldest first. The moving side follows them when it is at the latest."""
        following = not self.samples or getattr(self, self.moving) == len(self.samples) - 1
        self.samples.extend(samples)
        if following and self.samples:
            setattr(self, self.moving, len(self.samples) - 1)
        self._show()

    def action_move(self, delta: int) -> None:
        if self.samples:
            index = getattr(self, self.moving) + delta
            setattr(self, self.moving, min(max(index, 0), len(self.samples) - 1))

    def action_move_to_end(self, latest: bool) -> None:
        if self.samples:
            setattr(self, self.moving, len(self.samples) - 1 if latest else 0)

    def action_swap_sides(self) -> None:
        self.moving = "left" if self.moving == "right" else "right"

    def watch_left(self) -> None:
        self._show()

    def watch_right(self) -> None:
        self._show()

    def watch_moving(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        count = len(self.samples)
        timeline = self.query_one(SampleTimeline)
        timeline.steps = tuple(sample.step for sample in self.samples)
        timeline.left, timeline.right = self.left, self.right
        if count:
            timeline.border_subtitle = f"steps {self.samples[0].step:,} to {self.samples[-1].step:,}"
        for side in ("left", "right"):
            card = self.query_one(f"#sample-{side}", SampleCard)
            index = getattr(self, side)
            note = "← → move it · p pins it" if side == self.moving else "pinned · p frees it"
            card.show(self.samples[index] if count else None, index + 1, count, note if count else "")
            card.set_class(side == self.moving, "-moving")
