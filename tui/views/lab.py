"""The Lab view (key 5): experiments that answer a question with measurements.

The view shows one experiment (e picks another): its question, a row per
variant (waiting, training with its time left, done with its figures), the
variants' curves overlaid as they grow, and at the end the conclusion,
written from the results, and the sample of the variant under the cursor.
What an earlier run left in the Lab's folder is shown as soon as it is picked.

The view shows and asks; the app runs. r asks the app to run the experiment
(resuming it as it was run, if it was begun); f, to run it again from
scratch, at the time per variant chosen with + and -. The app runs it in its
one training worker, if nothing trains already, sets `running` and hands the
experiment's events down (show_events). i asks the app to open the variant
under the cursor in the Inspect view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import DataTable, Label, Static
from textual.worker import Worker, WorkerState

from minigpt.plumbing.conclusions import conclude
from minigpt.plumbing.experiments import BUILTINS, Experiment
from minigpt.plumbing.lab import ExperimentDone, ExperimentStopped, VariantDone, VariantStarted, VariantTraining
from minigpt.plumbing.lab_record import RECORD, Budget, Record, VariantResult, load_record, read_results
from minigpt.plumbing.terminal import format_seconds
from tui.text import one_line
from tui.widgets.lab_chart import LabChart
from tui.widgets.variant_table import VariantTable

if TYPE_CHECKING:
    from minigpt.plumbing.lab import LabEvent
    from minigpt.trainer import Event  # imports PyTorch, which the app loads after its first paint

TIMES = (30.0, 60.0, 120.0, 300.0, 600.0)  # the choices of + and -, in seconds per variant
SAMPLE_CHARACTERS = 160


@dataclass(frozen=True)
class Shown:
    """An experiment, and what its folder holds of a run of it (results grow as a run goes on)."""

    experiment: Experiment
    record: Record | None = None
    results: dict[str, VariantResult] = field(default_factory=dict)


class LabView(Vertical):
    BINDINGS = [
        Binding("r", "run", "Run", id="lab.run", tooltip="Lab: run the experiment, or resume it where it stopped"),
        Binding("e", "pick", "Experiment", id="lab.pick", tooltip="Lab: pick another experiment"),
        Binding("plus,equals_sign", "time(1)", "Time", id="lab.time", key_display="+-",
                tooltip="Lab: more time per variant (- less)"),
        Binding("minus", "time(-1)", "Less time", show=False, id="lab.less-time", tooltip="Lab: less time per variant"),
        Binding("f", "run(True)", "Fresh", show=False, id="lab.fresh",
                tooltip="Lab: run the experiment again from scratch, at the time per variant shown"),
        Binding("i", "inspect_variant", "Inspect", id="lab.inspect",
                tooltip="Lab: open the variant under the cursor in the Inspect view"),
    ]

    folder: var[Path | None] = var(None)  # the Lab's folder (the app's checkpoints/lab)
    running: var[bool] = var(False)  # the app runs the shown experiment now
    seconds: reactive[float] = reactive(60.0, init=False)
    shown: reactive[Shown | None] = reactive(None, init=False)

    class StartRequested(Message):
        """Run an experiment: resume it from its record, or (no record) start it afresh with budget."""

        def __init__(self, experiment: Experiment, record: Record | None, budget: Budget) -> None:
            super().__init__()
            self.experiment, self.record, self.budget = experiment, record, budget

    class InspectRequested(Message):
        def __init__(self, checkpoint: Path, name: str) -> None:
            super().__init__()
            self.checkpoint, self.name = checkpoint, name

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.experiments: dict[str, Experiment] = dict(BUILTINS)  # and, once read, those run here before
        self.status = ""  # a line on the running experiment, for the status bar
        self._budget = Budget(seconds=self.seconds)  # of the run shown
        self._conclusion = ""
        self._chars_per_token = 1.0  # of the variant training now: its training loss in bits per character
        self._tokens_per_step = 0  # of the variant training now

    def compose(self) -> ComposeResult:
        yield Label("e picks an experiment, r runs it", id="lab-title", markup=False)
        yield VariantTable(id="lab-variants")
        yield LabChart(id="lab-chart")
        yield Static("", id="lab-conclusion", markup=False)

    @property
    def table(self) -> VariantTable:
        return self.query_one(VariantTable)

    def variant_name(self, index: int) -> str:
        return self.shown.experiment.variants[index].name if self.shown else "?"

    # --- choosing -------------------------------------------------------------------------

    def watch_folder(self) -> None:
        if self.folder is not None:
            self._find_recorded(self.folder)
            self._read(next(iter(BUILTINS.values())), self.folder)  # shown at once, with what the folder holds

    @work(thread=True, exit_on_error=False, group="lab-find", name="lab experiments")
    def _find_recorded(self, folder: Path) -> list[Experiment]:
        """The experiments run here before that are not built in (a learner's own, run with minigpt-lab)."""
        records = (load_record(path.parent) for path in sorted(folder.glob(f"*/{RECORD}")))
        return [r.experiment for r in records if r and r.experiment.name not in BUILTINS]

    @work(thread=True, exclusive=True, exit_on_error=False, group="lab-read", name="lab results")
    def _read(self, experiment: Experiment, folder: Path) -> Shown:
        record = load_record(folder / experiment.name)
        if record is None:
            return Shown(experiment)
        return Shown(record.experiment, record, read_results(folder / experiment.name, record.experiment)[0])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group not in ("lab-find", "lab-read"):
            return
        event.stop()  # the view's own workers: the app need not hear of them
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Lab", severity="error")
        elif event.state == WorkerState.SUCCESS and isinstance(event.worker.result, Shown):
            if not self.running:
                self.shown = event.worker.result
        elif event.state == WorkerState.SUCCESS:
            self.experiments.update((experiment.name, experiment) for experiment in event.worker.result)

    def action_pick(self) -> None:
        from tui.screens.experiments import ExperimentsScreen

        current = self.shown.experiment.name if self.shown else None
        self.app.push_screen(ExperimentsScreen(list(self.experiments.values()), current), self._picked)

    def _picked(self, name: str | None) -> None:
        if name is not None and self.folder is not None:
            self._read(self.experiments[name], self.folder)

    def action_time(self, direction: int) -> None:
        index = min(range(len(TIMES)), key=lambda i: abs(TIMES[i] - self.seconds))
        self.seconds = TIMES[min(max(index + direction, 0), len(TIMES) - 1)]

    def watch_seconds(self) -> None:
        self._title()

    def action_run(self, fresh: bool = False) -> None:
        shown = self.shown
        if shown is None or self.running:
            return
        if missing := shown.experiment.missing_keys():
            self.notify(f"{shown.experiment.name} needs the config keys {', '.join(missing)}, which this version of "
                        "MiniGPT does not have yet", title="Lab", severity="warning")
            return
        record = None if fresh else shown.record
        budget = record.budget if record else Budget(seconds=self.seconds)
        self.post_message(self.StartRequested(shown.experiment, record, budget))

    def action_inspect_variant(self) -> None:
        name = self.table.selected
        if self.shown and self.folder and name:
            checkpoint = self.folder / self.shown.experiment.name / f"{name}.pt"
            if checkpoint.exists():
                self.post_message(self.InspectRequested(checkpoint, f"{self.shown.experiment.name}/{name}"))
            else:
                self.notify(f"{name} has not been trained yet", title="Lab", severity="warning")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run", "pick", "time"):
            return None if self.running else True  # greyed while an experiment runs
        return True

    # --- showing ---------------------------------------------------------------------------

    def watch_shown(self) -> None:
        """An experiment and its recorded run: the rows, the curves, the conclusion."""
        shown = self.shown
        if shown is None:
            return
        names = [variant.name for variant in shown.experiment.variants]
        self.table.set_variants(names)
        self.query_one(LabChart).clear(names)
        self._conclusion = ""
        record, results = shown.record, shown.results
        for name in names:
            state = "done" if record and name in record.done else "part-way" if record and name in record.started \
                else "waiting"
            if name in results:
                self._show_result(name, results[name], state)
            else:
                self.table.update(name, state=state)
        if record and len(record.done) == len(names) and len(results) == len(names):
            self._conclusion = conclude(shown.experiment, {name: r.val_bpc for name, r in results.items()})
        self.query_one(LabChart).replot()
        self._title()
        self._show_sample()

    def watch_running(self) -> None:
        if self.running and self.shown:  # from the top: variants done earlier come back as events
            self.shown = Shown(self.shown.experiment)
        self.refresh_bindings()

    def _title(self) -> None:
        shown = self.shown
        if shown is None:
            return
        self.query_one("#lab-title", Label).update(f"{shown.experiment.name}: {shown.experiment.question}")
        if shown.record and not self.running:
            self._budget = shown.record.budget
        elif not self.running:
            self._budget = Budget(seconds=self.seconds)
        record = shown.record
        part_done = record and record.started and len(record.done) < len(shown.experiment.variants)
        self.table.border_title = f"{self._budget}{' · r resumes' if part_done and not self.running else ''}"

    def _show_result(self, name: str, result: VariantResult, state: str, curves: bool = True) -> None:
        """A variant's row from its result, and (unless they were drawn as it trained) its curves."""
        self.table.update(name, state=state, parameters=result.parameters, tokens=result.tokens,
                          val_loss=result.val_loss, val_bpc=result.val_bpc)
        if not curves:
            return
        chart = self.query_one(LabChart)
        train, _ = result.run.chart_points()
        chars = result.run.info.get("chars_per_token") or 1.0
        chart.add_train(name, [(seconds, _bits(loss, chars)) for _, seconds, loss, *_ in train])
        chart.add_val(name, result.run.curve("time", "bpc"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_sample()

    def _show_sample(self) -> None:
        name = self.table.selected
        result = self.shown.results.get(name) if self.shown and name else None
        sample = f"{name} writes: {one_line(result.sample, SAMPLE_CHARACTERS)}" if result and result.sample else ""
        text = "\n".join(part for part in (self._conclusion, sample) if part)
        self.query_one("#lab-conclusion", Static).update(text or "The conclusion comes when every variant is done.")
        self.set_class(bool(self._conclusion), "-concluded")

    def show_events(self, events: list[LabEvent]) -> None:
        """What the running experiment has done since the last call."""
        assert self.shown is not None
        experiment = self.shown.experiment
        for event in events:
            if isinstance(event, VariantStarted):
                self._chars_per_token, self._tokens_per_step = event.chars_per_token[0], event.tokens_per_step
                self.table.update(event.variant.name, state="starting", parameters=event.parameters)
            elif isinstance(event, VariantTraining):
                self._show_training(experiment, event.index, event.event)
            elif isinstance(event, VariantDone) and event.result:
                self.shown.results[event.result.name] = event.result
                self._show_result(event.result.name, event.result, "done", curves=event.earlier)
            elif isinstance(event, ExperimentStopped):
                self.table.update(experiment.variants[event.index].name, state="part-way")
                self.status = ""
            elif isinstance(event, ExperimentDone):
                self._conclusion = event.conclusion
                self.status = ""
        self._show_sample()

    def _show_training(self, experiment: Experiment, index: int, event: Event) -> None:
        from minigpt.trainer import EvalEvent, StepEvent

        name, chart = experiment.variants[index].name, self.query_one(LabChart)
        if isinstance(event, StepEvent):
            left = (format_seconds(max(self._budget.seconds - event.elapsed, 0)) if self._budget.seconds
                    else f"{event.max_iters - event.step:,} steps")
            self.table.update(name, state=f"{left} left", tokens=event.step * self._tokens_per_step)
            chart.add_train(name, [(event.elapsed, _bits(event.loss, self._chars_per_token))])
            self.status = f"Lab {experiment.name}: variant {index + 1}/{len(experiment.variants)} {name}, {left} left"
        elif isinstance(event, EvalEvent):
            self.table.update(name, val_loss=event.val_loss, val_bpc=event.val_bpc)
            chart.add_val(name, [(event.elapsed, event.val_bpc)])


def _bits(loss: float, chars_per_token: float) -> float:
    """Nats per token -> bits per character."""
    return loss / (math.log(2) * chars_per_token)
