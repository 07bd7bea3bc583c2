"""The live loss chart: train loss as a line, validation loss as marked points,
against the step, the training tokens seen or the time the run has used, in
nats per token or bits per character; a dotted line at the loss of a model
that guesses every token alike; the learning rate on a second axis, on
request; and, overlaid, the validation curves of other runs (read from their
logs), named in a legend by size and tokenizer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.reactive import reactive

from minigpt.plumbing.runlog import LOG_EVERY
from minigpt.plumbing.runs import Run, XAxis, YAxis
from minigpt.plumbing.terminal import format_seconds
from tui.text import format_count
from tui.widgets.chart_series import DownsampledSeries
from tui.widgets.live_chart import CAPACITY, LABELS_MIN_HEIGHT, LiveChart, tick_positions

X_AXES: tuple[XAxis, ...] = ("step", "tokens", "time")
X_LABELS = {"step": "step", "tokens": "tokens seen", "time": "time (m:ss)"}
Y_LABELS = {"loss": "loss", "bpc": "bits/char"}
OVERLAY_COLOURS = ("secondary", "warning", "success", "error", "foreground")  # theme variables, one a run


@dataclass(frozen=True)
class RunScale:
    """What turns this run's (step, seconds, loss) points into tokens and bits per character."""

    tokens_per_step: int = 0
    train_chars_per_token: float = 1.0
    val_chars_per_token: float = 1.0
    uniform_loss: float | None = None  # ln V: the loss of a model that guesses every token alike


class LossChart(LiveChart):
    """Train and validation loss against step, tokens or time. Points arrive
    in batches; the plot is rebuilt on a timer, only when something changed."""

    scale: reactive[RunScale] = reactive(RunScale, init=False)
    log_scale: reactive[bool] = reactive(False)
    show_lr: reactive[bool] = reactive(False)  # the learning rate, on the right-hand axis
    x_axis: reactive[XAxis] = reactive("step")
    y_axis: reactive[YAxis] = reactive("loss")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.train = DownsampledSeries(CAPACITY, every=LOG_EVERY)  # the steps the run's log keeps
        self.val = DownsampledSeries(CAPACITY)
        self.overlays: list[Run] = []

    def add_train_losses(self, points: list[tuple[float, ...]]) -> None:
        """(step, seconds the run has used, loss, learning rate) points."""
        self.train.extend(points)
        self.stale()

    def add_val_loss(self, step: int, seconds: float, loss: float) -> None:
        self.val.extend([(step, seconds, loss)])
        self.stale()

    def set_overlays(self, runs: list[Run]) -> None:
        """Other runs whose validation curves are drawn over this one's."""
        self.overlays = runs
        self.replot()

    def watch_log_scale(self) -> None:
        self.replot()

    def watch_scale(self) -> None:
        self.replot()

    def watch_show_lr(self) -> None:
        self.replot()

    def watch_x_axis(self) -> None:
        self._title()

    def watch_y_axis(self) -> None:
        self._title()

    def _title(self) -> None:
        self.border_title = f"{Y_LABELS[self.y_axis]} by {self.x_axis}"
        self.replot()

    def replot(self) -> None:
        self._stale = False
        plt = self.plt
        plt.clear_data()
        log = self.log_scale and bool(self.train or self.val or self.overlays)  # plotext cannot take the log of nothing
        plt.yscale("log" if log else "linear")
        labelled = self.size.height >= LABELS_MIN_HEIGHT
        plt.xlabel(X_LABELS[self.x_axis] if labelled else "")
        plt.ylabel(Y_LABELS[self.y_axis] if labelled else "")
        xs: list[float] = []  # the first and last x of every curve, for the ticks
        if self.train:
            x = self._xs(self.train)
            plt.plot(x, self._ys(self.train, self.scale.train_chars_per_token), marker="braille",
                     color=self._colour("primary"))
            xs += x[:1] + x[-1:]
            if self.show_lr:
                self._plot_lr(x)
        if self.val:
            x = self._xs(self.val)
            plt.scatter(x, self._ys(self.val, self.scale.val_chars_per_token), marker="x",
                        color=self._colour("accent"))
            xs += x[:1] + x[-1:]
        for number, run in enumerate(self.overlays):
            if points := run.curve(self.x_axis, self.y_axis):
                x, y = (list(column) for column in zip(*points, strict=True))
                colour = self._colour(OVERLAY_COLOURS[number % len(OVERLAY_COLOURS)])
                plt.plot(x, y, marker="braille", color=colour, label=run.label)
                xs += x[:1] + x[-1:]
        guess = self._uniform_guess()
        if guess is not None and xs:  # before any point, the subtitle alone gives it
            plt.plot([min(xs)], [guess], marker=" ")  # an invisible point, so that the y range takes the line in
            plt.hline(guess, color=self._colour("foreground-muted"))
        self.border_subtitle = "  ".join(filter(None, [
            "⣀ train  x val", f"─ guess {guess:.2f}" if guess is not None else "",
            "⣀ lr (right)" if self.show_lr else "", "log" if self.log_scale else "linear"]))
        if xs:
            ticks = tick_positions(min(xs), max(xs))
            plt.xticks(ticks, [self._tick_label(t) for t in ticks])
        self.refresh()

    def _plot_lr(self, x: list[float]) -> None:
        """The learning rate of each train point, on the right-hand axis (an old log may lack it)."""
        points = [(step, lr) for step, lr in zip(x, self.train.column(3), strict=True) if math.isfinite(lr)]
        if points:
            steps, rates = (list(column) for column in zip(*points, strict=True))
            self.plt.plot(steps, rates, marker="braille", color=self._colour("secondary"), yside="right")

    def _uniform_guess(self) -> float | None:
        """Where the line of a uniform guess goes, in the chart's unit."""
        loss = self.scale.uniform_loss
        if loss is None or self.y_axis == "loss":
            return loss
        return loss / (math.log(2) * self.scale.train_chars_per_token)

    def _xs(self, series: DownsampledSeries) -> list[float]:
        if self.x_axis == "time":
            return series.column(1)
        steps = series.column(0)
        return [step * self.scale.tokens_per_step for step in steps] if self.x_axis == "tokens" else steps

    def _ys(self, series: DownsampledSeries, chars_per_token: float) -> list[float]:
        losses = series.column(2)
        if self.y_axis == "loss":
            return losses
        return [loss / (math.log(2) * chars_per_token) for loss in losses]  # nats per token -> bits per character

    def _tick_label(self, tick: int) -> str:
        """Whole steps, a count of tokens (1.2k, 3.4M) or m:ss."""
        return {"step": str, "tokens": format_count, "time": format_seconds}[self.x_axis](tick)
