"""The Lab's chart: every variant of an experiment overlaid, each in its own
colour, against the time it has used: its training loss as a line, its
validation evaluations as marks, in bits per character (what compares
tokenizers). Curves grow as the variants train; a variant done earlier is
drawn whole from its log."""

from __future__ import annotations

from minigpt.plumbing.terminal import format_seconds
from tui.widgets.chart_series import DownsampledSeries
from tui.widgets.live_chart import CAPACITY, LABELS_MIN_HEIGHT, LiveChart, tick_positions

COLOURS = ("primary", "warning", "success", "error", "secondary", "accent", "foreground")  # theme variables


class LabChart(LiveChart):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.train: dict[str, DownsampledSeries] = {}  # by variant, in the experiment's order: (seconds, bits/char)
        self.val: dict[str, DownsampledSeries] = {}

    def on_mount(self) -> None:
        self.border_title = "bits/char by time"
        self.border_subtitle = "⣀ train  x val"

    def clear(self, variants: list[str]) -> None:
        """Start over with these variants (no points yet), in this order."""
        self.train = {name: DownsampledSeries(CAPACITY) for name in variants}
        self.val = {name: DownsampledSeries(CAPACITY) for name in variants}
        self.replot()

    def add_train(self, variant: str, points: list[tuple[float, float]]) -> None:
        self.train[variant].extend(points)
        self.stale()

    def add_val(self, variant: str, points: list[tuple[float, float]]) -> None:
        self.val[variant].extend(points)
        self.stale()

    def replot(self) -> None:
        self._stale = False
        plt = self.plt
        plt.clear_data()
        labelled = self.size.height >= LABELS_MIN_HEIGHT
        plt.xlabel("time (m:ss)" if labelled else "")
        plt.ylabel("bits/char" if labelled else "")
        xs: list[float] = []
        for number, name in enumerate(self.train):
            colour = self._colour(COLOURS[number % len(COLOURS)])
            for series, scatter in ((self.train[name], False), (self.val[name], True)):
                if not series:
                    continue
                x, y = series.column(0), series.column(1)
                if scatter:
                    plt.scatter(x, y, marker="x", color=colour)
                else:
                    plt.plot(x, y, marker="braille", color=colour, label=name)
                xs += [x[0], x[-1]]
        if xs:
            points = tick_positions(min(xs), max(xs))
            plt.xticks(points, [format_seconds(t) for t in points])
        self.refresh()
