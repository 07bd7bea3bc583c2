"""The status bar: what the app is doing, how training goes, and what it works on."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label

from minigpt.plumbing.terminal import format_seconds
from tui.text import format_count, format_loss, one_line

STATES = ("loading", "idle", "training", "paused", "stopping", "saving", "error")


@dataclass(frozen=True)
class Progress:
    step: int = 0
    max_iters: int = 0
    loss: float | None = None
    val_loss: float | None = None
    tokens_per_sec: float | None = None
    eta: float | None = None  # seconds left: at the recent pace, or of the time budget
    time_budget: float = 0.0  # seconds; 0 for a run of max_iters steps
    time_used: float = 0.0
    final_val_loss: float | None = None  # the whole validation split, once the run has reached its end


@dataclass(frozen=True)
class RunInfo:
    device: str
    parameters: int
    checkpoint: str  # e.g. "checkpoints/model.pt (loaded at step 400)" or "... (new)"
    corpus: str
    shape: str = ""  # e.g. "d_model 192 x 4 layers", when chosen for a time budget


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
            yield Label(id="figures", markup=False)
        yield Label(id="info", markup=False)

    def watch_state(self, old: str, new: str) -> None:
        label = self.query_one("#state", Label)
        label.remove_class(f"-{old}").add_class(f"-{new}")
        self._show_state()

    def watch_generating(self) -> None:
        self._show_state()

    def _show_state(self) -> None:
        self.query_one("#state", Label).update(self.state + (" · generating" if self.generating else ""))

    def watch_message(self) -> None:
        self._show_figures()

    def watch_progress(self) -> None:
        self._show_figures()

    def _show_figures(self) -> None:
        p = self.progress
        if self.message or not p.max_iters:
            text = self.message
        else:
            where = f"step {p.step:,}/{p.max_iters:,}"
            if p.time_budget:
                where = f"{format_seconds(p.time_used)}/{format_seconds(p.time_budget)} · step {p.step:,}"
            parts = [where, f"loss {format_loss(p.loss)}", f"val {format_loss(p.val_loss)}"]
            if p.final_val_loss is not None:
                parts.append(f"final val {format_loss(p.final_val_loss)}")
            if p.tokens_per_sec:
                parts.append(f"{format_count(p.tokens_per_sec)} tok/s")
            if p.eta is not None and self.state == "training" and p.final_val_loss is None:  # scored: it ended
                parts.append(f"{'left' if p.time_budget else 'ETA'} {format_seconds(p.eta)}")
            text = "  ".join(parts)
        self.query_one("#figures", Label).update(text, layout=False)  # one row, always: no layout pass needed

    def watch_info(self) -> None:
        i = self.info
        shape = f"{i.shape} · " if i and i.shape else ""
        text = "" if i is None else (f"{i.device} · {format_count(i.parameters)} params · {shape}"
                                     f"{i.checkpoint} · {one_line(i.corpus, 60)}")
        self.query_one("#info", Label).update(text, layout=False)
