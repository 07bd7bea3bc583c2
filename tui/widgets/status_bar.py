"""The status bar: what the app is doing, how training goes, and what it works on.

Each line is made of parts ranked by what matters most to someone watching a
run (the time or step, the losses, then the time left, the speed...); a narrow
terminal leaves out the least important whole, rather than cutting the line
wherever the width ends."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label

from minigpt.plumbing.terminal import format_seconds
from tui.text import fit, format_count, format_loss, one_line

STATES = ("loading", "idle", "training", "paused", "stopping", "saving", "finished", "error")


@dataclass(frozen=True)
class Progress:
    step: int = 0
    max_iters: int = 0
    loss: float | None = None
    val_loss: float | None = None  # the latest evaluation's
    best_val_loss: float | None = None
    tokens_per_sec: float | None = None
    eta: float | None = None  # seconds left: at the recent pace, or of the time budget
    time_budget: float = 0.0  # seconds; 0 for a run of max_iters steps
    time_used: float = 0.0
    final_val_loss: float | None = None  # the whole validation split, once the run has reached its end
    memorising: bool = False  # the latest evaluation says the model has begun to learn its text by heart


@dataclass(frozen=True)
class RunInfo:
    device: str
    parameters: int
    checkpoint: str  # as the user wrote it, e.g. "checkpoints/model.pt"
    saved: str  # what the checkpoint holds: "new", "loaded, step 400", "saved, step 1,200"
    corpus: str
    shape: str = ""  # e.g. "d_model 192 x 4 layers"


Parts = tuple[tuple[int, str], ...]  # (rank, text): rank 0 matters most


class PartsLine(Widget):
    """One line of ranked parts, fitted to the width it has whenever it is drawn."""

    parts: reactive[Parts] = reactive(())

    def __init__(self, separator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.separator = separator

    def render(self) -> Text:
        return Text(fit(list(self.parts), self.size.width, self.separator), no_wrap=True)


class StatusBar(Vertical):
    """Two lines: state and training figures, then device, size and files."""

    state: reactive[str] = reactive("loading")
    generating: reactive[bool] = reactive(False)
    message: reactive[str] = reactive("")  # e.g. what the loader is doing
    progress: reactive[Progress] = reactive(Progress)
    info: reactive[RunInfo | None] = reactive(None)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(id="state")
            yield PartsLine("  ", id="figures")
        yield PartsLine(" · ", id="info")

    def watch_state(self, old: str, new: str) -> None:
        label = self.query_one("#state", Label)
        label.remove_class(f"-{old}").add_class(f"-{new}")
        self._show_state()
        self._show_figures()

    def watch_generating(self) -> None:
        self._show_state()

    def _show_state(self) -> None:
        self.query_one("#state", Label).update(self.state + (" · generating" if self.generating else ""))

    def watch_message(self) -> None:
        self._show_figures()

    def watch_progress(self) -> None:
        self._show_figures()

    def watch_info(self) -> None:
        self._show_info()

    def _show_figures(self) -> None:
        p = self.progress
        if self.message or not p.max_iters:
            parts = [(0, self.message)]
        elif self.state == "finished":
            parts = finished_parts(p)
        else:
            parts = training_parts(p, self.state == "training")
        self.query_one("#figures", PartsLine).parts = tuple(parts)

    def _show_info(self) -> None:
        i = self.info
        parts = () if i is None else ((2, i.device), (1, f"{format_count(i.parameters)} params"), (1, i.shape),
                                      (0, f"{i.checkpoint} ({i.saved})"), (3, one_line(i.corpus, 60)))
        self.query_one("#info", PartsLine).parts = parts


def training_parts(p: Progress, training: bool) -> list[tuple[int, str]]:
    """The figures of a run under way (or stopped), ranked."""
    where = [(0, f"step {p.step:,}/{p.max_iters:,}")]
    if p.time_budget:
        where = [(0, f"{format_seconds(p.time_used)}/{format_seconds(p.time_budget)}"), (2, f"step {p.step:,}")]
    parts = [*where, (0, f"loss {format_loss(p.loss)}"), (0, f"val {format_loss(p.val_loss)}")]
    if p.final_val_loss is not None:
        parts.append((0, f"final val {format_loss(p.final_val_loss)}"))
    if p.memorising:
        parts.append((1, "memorising"))
    if p.tokens_per_sec:
        parts.append((3, f"{format_count(p.tokens_per_sec)} tok/s"))
    if p.eta is not None and training and p.final_val_loss is None:  # scored: it has ended
        parts.append((1, f"{'left' if p.time_budget else 'ETA'} {format_seconds(p.eta)}"))
    return parts


def finished_parts(p: Progress) -> list[tuple[int, str]]:
    """A run that has used its budget or steps: where it ended, its final val loss (the whole
    validation split, once scored; else its last evaluation's) and its best evaluation's."""
    used = format_seconds(p.time_budget) if p.time_budget else f"step {p.step:,}"
    final = p.final_val_loss if p.final_val_loss is not None else p.val_loss
    return [(1, used), (2, f"step {p.step:,}" if p.time_budget else ""),
            (0, f"final val {format_loss(final)}"), (0, f"best {format_loss(p.best_val_loss)}")]
