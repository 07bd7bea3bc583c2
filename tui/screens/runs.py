"""The runs picker: the other runs in the checkpoint's folder, to overlay
their validation curves on the loss chart. Space ticks a run, Enter applies,
Escape leaves the chart as it was. The logs are read in a thread worker, so
a folder of long runs never holds up the screen."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import Worker, WorkerState

from minigpt.plumbing.runs import Run, load_runs


def describe(run: Run) -> str:
    """One line of the list: the run, its size and tokenizer, how far it got (in bits per character,
    the measure that compares tokenizers)."""
    bpc = f"{run.best_val_bpc:.3f}" if run.best_val_bpc is not None else "–"
    return f"{run.label} · {run.steps:,} steps · best val {bpc} bits/char"


class RunsScreen(ModalScreen[list[Run] | None]):
    BINDINGS = [
        Binding("enter", "apply", "Overlay", id="runs.apply", priority=True),  # before the list's own Enter
        Binding("escape", "dismiss(None)", "Cancel", id="runs.cancel"),
    ]

    def __init__(self, folder: Path, current_log: Path, chosen: set[Path]) -> None:
        """current_log: this run's own log, left out of the list; chosen: the logs overlaid now."""
        super().__init__()
        self.folder, self.current_log, self.chosen = folder, current_log, chosen
        self.runs: list[Run] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = f"Runs in {self.folder}"
            dialog.border_subtitle = "Space ticks · Enter overlays · Esc cancels"
            yield SelectionList[int](id="runs-list")
            yield Static("reading the runs…", id="runs-note", markup=False)

    def on_mount(self) -> None:
        self._read_runs()

    @work(thread=True, exit_on_error=False, group="runs", name="read runs")
    def _read_runs(self) -> tuple[list[Run], list[str]]:
        return load_runs(self.folder) if self.folder.is_dir() else ([], [])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS:
            runs, warnings = event.worker.result
            self._show(runs, warnings)
        elif event.state == WorkerState.ERROR:
            self.query_one("#runs-note", Static).update(f"cannot read the runs: {event.worker.error}")

    def _show(self, runs: list[Run], warnings: list[str]) -> None:
        current = self.current_log.absolute()
        self.runs = [run for run in runs if run.path.absolute() != current]
        listing = self.query_one(SelectionList)
        listing.add_options(Selection(Text(describe(run)), index, run.path in self.chosen)
                            for index, run in enumerate(self.runs))
        note = "" if self.runs else (f"No other runs in {self.folder} yet: train one with another --out "
                                     "(e.g. minigpt-train --out checkpoints/small.pt), then come back.")
        note += "".join(f"\nwarning: {warning}" for warning in warnings)
        self.query_one("#runs-note", Static).update(note.strip())
        self.query_one("#runs-note").display = bool(note)
        if self.runs:
            listing.highlighted = 0  # so that Space ticks at once
        listing.focus()

    def action_apply(self) -> None:
        self.dismiss([self.runs[index] for index in sorted(self.query_one(SelectionList).selected)])  # as listed
