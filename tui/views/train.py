"""The training view (key 1): the loss chart beside the completions pane, or
above it in a narrow terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var

from tui.views.completions import CompletionsPane
from tui.widgets.loss_chart import LossChart

if TYPE_CHECKING:
    from minigpt.session import TrainingSession
    from minigpt.settings import SamplingSettings


class TrainView(Horizontal):
    BINDINGS = [
        Binding("l", "toggle_log_scale", "Log/lin", id="log-scale", tooltip="Toggle a log scale for the loss"),
        Binding("a", "toggle_x_axis", "Axis", id="x-axis", tooltip="Plot the loss by step or by time used"),
    ]

    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)

    def compose(self) -> ComposeResult:
        yield LossChart(id="chart")
        yield CompletionsPane(id="completions").data_bind(TrainView.session, TrainView.sampling)

    def action_toggle_log_scale(self) -> None:
        chart = self.query_one(LossChart)
        chart.log_scale = not chart.log_scale

    def action_toggle_x_axis(self) -> None:
        chart = self.query_one(LossChart)
        chart.x_axis = "time" if chart.x_axis == "step" else "step"
