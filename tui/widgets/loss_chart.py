"""The live loss chart: train loss as a line, validation loss as marked points,
against the step or against the time the run has used."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from minigpt.terminal import format_seconds
from tui.widgets.chart_series import DownsampledSeries

REPLOT_INTERVAL = 1.0  # seconds: the chart redraws at most once a second: each redraw costs the trainer CPU
LABELS_MIN_HEIGHT = 12  # rows; a shorter chart keeps its row for data (the border title names the axes)
CAPACITY = 512  # points kept per curve; about twice a wide terminal's braille resolution
TICKS = 5
XAxis = Literal["step", "time"]
COLUMN = {"step": 0, "time": 1}  # points are (step, seconds, loss)


class LossChart(PlotextPlot):
    """Train and validation loss against step or time. Points arrive in
    batches; the plot is rebuilt on a timer, only when something changed."""

    log_scale: reactive[bool] = reactive(False)
    x_axis: reactive[XAxis] = reactive("step")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.train = DownsampledSeries(CAPACITY)
        self.val = DownsampledSeries(CAPACITY)
        self._stale = True

    def on_mount(self) -> None:
        self.plt.xaxes(True, False)  # an L of axes: a full frame costs two rows a small terminal lacks
        self.plt.yaxes(True, False)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.replot())
        self.set_interval(REPLOT_INTERVAL, self._replot_if_stale)
        self.replot()

    def add_train_losses(self, points: list[tuple[int, float, float]]) -> None:
        """(step, seconds the run has used, loss) points."""
        self.train.extend(points)
        self._stale = True

    def add_val_loss(self, step: int, seconds: float, loss: float) -> None:
        self.val.extend([(step, seconds, loss)])
        self._stale = True

    def watch_log_scale(self) -> None:
        self.replot()

    def watch_x_axis(self, x_axis: XAxis) -> None:
        self.border_title = f"loss by {x_axis}"
        self.replot()

    def on_resize(self) -> None:
        self.replot()  # the axis labels come and go with the height

    def _replot_if_stale(self) -> None:
        if self._stale:
            self.replot()

    def replot(self) -> None:
        self._stale = False
        plt = self.plt
        plt.clear_data()
        log = self.log_scale and bool(self.train or self.val)  # plotext cannot take the log of nothing
        plt.yscale("log" if log else "linear")
        labelled = self.size.height >= LABELS_MIN_HEIGHT
        plt.xlabel(("step" if self.x_axis == "step" else "time (m:ss)") if labelled else "")
        plt.ylabel("loss" if labelled else "")
        self.border_subtitle = f"⣀ train  x val  · {'log' if self.log_scale else 'linear'}"
        x = COLUMN[self.x_axis]
        train_xs, val_xs = self.train.column(x), self.val.column(x)
        if self.train:
            plt.plot(train_xs, self.train.column(2), marker="braille", color=self._colour("primary"))
        if self.val:
            plt.scatter(val_xs, self.val.column(2), marker="x", color=self._colour("accent"))
        ends = train_xs[:1] + train_xs[-1:] + val_xs[:1] + val_xs[-1:]
        if ends:
            ticks = _ticks(min(ends), max(ends))
            labels = [str(t) if self.x_axis == "step" else format_seconds(t) for t in ticks]
            plt.xticks(ticks, labels)
        self.refresh()

    def render(self) -> RenderResult:
        try:
            return super().render()
        except Exception as error:  # plotext can fail on odd data: a chart glitch must not end a training session
            self.log.error("plotext could not draw the chart", error)
            return Text(f"the chart cannot be drawn ({type(error).__name__}: {error})")

    def _colour(self, variable: str) -> tuple[int, int, int]:
        """A colour of the app's theme, so the curves follow theme changes."""
        return Color.parse(self.app.theme_variables[variable]).rgb


def _ticks(first: float, last: float) -> list[int]:
    """Whole steps or seconds (plotext would print 75.8)."""
    return sorted({round(first + (last - first) * i / (TICKS - 1)) for i in range(TICKS)})
