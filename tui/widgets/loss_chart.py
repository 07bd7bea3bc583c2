"""The live loss chart: train loss as a line, validation loss as marked points."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.widgets.chart_series import DownsampledSeries

REPLOT_INTERVAL = 1.0  # seconds: the chart redraws at most once a second: each redraw costs the trainer CPU
LABELS_MIN_HEIGHT = 12  # rows; a shorter chart keeps its row for data (the border title names the axes)
CAPACITY = 512  # points kept per curve; about twice a wide terminal's braille resolution
TICKS = 5


class LossChart(PlotextPlot):
    """Train and validation loss against step. Points arrive in batches;
    the plot is rebuilt on a timer, only when something changed."""

    log_scale: reactive[bool] = reactive(False)

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

    def add_train_losses(self, points: list[tuple[int, float]]) -> None:
        self.train.extend(points)
        self._stale = True

    def add_val_loss(self, step: int, loss: float) -> None:
        self.val.extend([(step, loss)])
        self._stale = True

    def watch_log_scale(self) -> None:
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
        plt.xlabel("step" if labelled else "")
        plt.ylabel("loss" if labelled else "")
        self.border_subtitle = f"⣀ train  x val  · {'log' if self.log_scale else 'linear'}"
        if self.train:
            plt.plot(self.train.xs, self.train.ys, marker="braille", color=self._colour("primary"))
        if self.val:
            plt.scatter(self.val.xs, self.val.ys, marker="x", color=self._colour("accent"))
        steps = self.train.xs[:1] + self.train.xs[-1:] + self.val.xs[:1] + self.val.xs[-1:]
        if steps:
            plt.xticks(*_step_ticks(min(steps), max(steps)))
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


def _step_ticks(first: float, last: float) -> tuple[list[float], list[str]]:
    """Whole-number step labels (plotext would print 75.8)."""
    ticks = sorted({round(first + (last - first) * i / (TICKS - 1)) for i in range(TICKS)})
    return ticks, [str(t) for t in ticks]
