"""What the app's charts share: a plotext plot whose points arrive in
batches and that is rebuilt on a timer, only when something changed (each
redraw costs the trainer CPU); an L of axes; colours from the app's theme;
and a drawing error shown in the chart's place rather than raised."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual_plotext import PlotextPlot

REPLOT_INTERVAL = 1.0  # seconds: the chart redraws at most once a second: each redraw costs the trainer CPU
LABELS_MIN_HEIGHT = 12  # rows; a shorter chart keeps its row for data (the border title names the axes)
CAPACITY = 512  # points kept per curve; about twice a wide terminal's braille resolution
TICKS = 5


class LiveChart(PlotextPlot):
    """A chart that replot() draws whole; stale() asks for a redraw at the next tick of the timer."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._stale = True

    def on_mount(self) -> None:
        self.plt.xaxes(True, False)  # an L of axes: a full frame costs two rows a small terminal lacks
        self.plt.yaxes(True, False)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.replot())
        self.set_interval(REPLOT_INTERVAL, self._replot_if_stale)
        self.replot()

    def stale(self) -> None:
        self._stale = True

    def on_resize(self) -> None:
        self.replot()  # the axis labels come and go with the height

    def _replot_if_stale(self) -> None:
        if self._stale:
            self.replot()

    def replot(self) -> None:
        """Draw the whole chart again (and call self.refresh())."""
        raise NotImplementedError

    def render(self) -> RenderResult:
        try:
            return super().render()
        except Exception as error:  # plotext can fail on odd data: a chart glitch must not end a training session
            self.log.error("plotext could not draw the chart", error)
            return Text(f"the chart cannot be drawn ({type(error).__name__}: {error})")

    def _colour(self, variable: str) -> tuple[int, int, int]:
        """A colour of the app's theme, so the curves follow theme changes (a translucent one,
        such as foreground-muted, as it looks over the theme's surface)."""
        theme = self.app.theme_variables
        return (Color.parse(theme["surface"]) + Color.parse(theme[variable])).rgb


def tick_positions(first: float, last: float) -> list[int]:
    """Whole steps or seconds (plotext would print 75.8)."""
    return sorted({round(first + (last - first) * i / (TICKS - 1)) for i in range(TICKS)})
