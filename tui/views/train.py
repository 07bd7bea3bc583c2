"""The training view (key 1): the loss chart beside the completions pane, or
above it in a narrow terminal. Its keys choose the chart's axes and the
other runs (of the checkpoint's folder) whose curves it overlays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var

from tui.views.completions import CompletionsPane
from tui.widgets.loss_chart import X_AXES, LossChart

if TYPE_CHECKING:
    from minigpt.plumbing.runs import Run
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings


class TrainView(Horizontal):
    BINDINGS = [
        Binding("l", "toggle_log_scale", "Log/lin", id="log-scale", tooltip="Toggle a log scale for the loss"),
        Binding("a", "toggle_x_axis", "Axis", id="x-axis",
                tooltip="Plot the loss by step, by training tokens seen or by time used"),
        Binding("b", "toggle_y_axis", "Bits", id="y-axis", show=False,
                tooltip="Plot the loss in nats per token or in bits per character"),
        Binding("g", "toggle_lr", "LR", id="lr-curve", show=False,
                tooltip="Show or hide the learning rate beside the loss"),
        Binding("o", "pick_runs", "Runs", id="runs", show=False,  # the footer is full at 80 columns
                tooltip="Overlay other runs' validation curves"),
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
        chart.x_axis = X_AXES[(X_AXES.index(chart.x_axis) + 1) % len(X_AXES)]

    def action_toggle_lr(self) -> None:
        chart = self.query_one(LossChart)
        chart.show_lr = not chart.show_lr

    def action_toggle_y_axis(self) -> None:
        chart = self.query_one(LossChart)
        chart.y_axis = "bpc" if chart.y_axis == "loss" else "loss"

    def action_pick_runs(self) -> None:
        from minigpt.plumbing.runlog import log_path
        from tui.screens.runs import RunsScreen

        assert self.session is not None  # check_action enables this only with a session
        chart = self.query_one(LossChart)
        screen = RunsScreen(self.session.checkpoint.parent, log_path(self.session.checkpoint),
                            {run.path for run in chart.overlays})
        self.app.push_screen(screen, self._runs_picked)

    def _runs_picked(self, runs: list[Run] | None) -> None:
        if runs is not None:
            self.query_one(LossChart).set_overlays(runs)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_runs":
            return None if self.session is None else True
        return True
