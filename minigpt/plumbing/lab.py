"""The Lab's runner: an experiment's variants trained one after another, each
for the same time (or steps), on the same text, from the same seed, as a
stream of plain events that the CLI and the app present.

    lab = LabRun(BUILTINS["width"], Budget(seconds=60), root=Path("checkpoints/lab"))
    for event in lab.run():
        ...  # VariantStarted, VariantTraining (the trainer's events), VariantDone, ExperimentDone

Each variant is a normal run: a checkpoint and a metrics log in the
experiment's folder (minigpt.plumbing.lab_record), which minigpt-runs and the
app read like any other. A variant's time counts its start-up (reading the
text, learning a tokenizer, building the model), as minigpt-train's does.

request_stop() (Ctrl+C, quitting the app) ends the variant in progress after
its current step and saves it. Running the experiment again resumes it:
finished variants are skipped, and the interrupted one goes on with the rest
of its budget (its clock, schedule and batches restored from its checkpoint).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minigpt.plumbing.conclusions import conclude
from minigpt.plumbing.config import MAX_ITERS, TrainConfig, apply_overrides
from minigpt.plumbing.corpus import choose_corpus
from minigpt.plumbing.experiments import (
    FIXED_KEYS,
    Experiment,
    Variant,
    base_config,
    check_runnable,
    variant_config,
)
from minigpt.plumbing.lab_record import (
    Budget,
    LabError,
    Record,
    VariantResult,
    load_record,
    read_results,
    save_record,
    variant_checkpoint,
)

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession
    from minigpt.trainer import Event, Trainer

EVALUATIONS = 5  # per variant, when it has a number of steps rather than a time


@dataclass(frozen=True)
class VariantStarted:
    index: int
    variant: Variant
    parameters: int
    resumed: bool  # goes on from where an earlier run of the experiment stopped it
    tokens_per_step: int
    chars_per_token: tuple[float, float]  # of the training and validation text: losses in bits per character


@dataclass(frozen=True)
class VariantTraining:
    index: int
    event: Event  # the trainer's: a step, an evaluation, a save


@dataclass(frozen=True)
class VariantDone:
    index: int
    result: VariantResult | None  # None when its log holds no evaluation (it could not be written)
    earlier: bool  # finished by an earlier run of the experiment


@dataclass(frozen=True)
class LabNote:
    text: str  # something the user should know: a set-up note, a log that cannot be written


@dataclass(frozen=True)
class ExperimentStopped:
    index: int  # the variant it stopped at (saved part-way, or not begun); running it again resumes there


@dataclass(frozen=True)
class ExperimentDone:
    results: dict[str, VariantResult]
    conclusion: str


LabEvent = VariantStarted | VariantTraining | VariantDone | LabNote | ExperimentStopped | ExperimentDone


def budget_overrides(budget: Budget, given: Mapping[str, Any]) -> dict[str, Any]:
    """The config keys that give a variant its time (or its steps); given: the user's --set."""
    if budget.seconds:
        return {"time_budget": budget.seconds, "max_iters": MAX_ITERS}
    steps = {"time_budget": 0.0, "max_iters": budget.steps}
    return steps if "eval_interval" in given else {**steps, "eval_interval": max(budget.steps // EVALUATIONS, 1)}


# A variant's session takes its whole config as given: the Lab chose it. Its time is not among these keys, so
# that a resumed variant keeps its own budget instead of adding the time again (session.continued_budget).
GIVEN_KEYS = frozenset(f.name for f in fields(TrainConfig)) - {"time_budget", "max_iters"}


class LabRun:
    """One run of an experiment. run() is the event stream; request_stop() may be called from any thread."""

    def __init__(self, experiment: Experiment, budget: Budget, root: Path, data: Path | None = None,
                 overrides: Mapping[str, Any] | None = None, fresh: bool = False,
                 progress: Callable[[str], None] = lambda text: None) -> None:
        """root: the Lab's folder (the experiment's is root/NAME); overrides: the user's --set, on every variant;
        fresh: train every variant from scratch, replacing an earlier run of the experiment. A bad experiment,
        setting or text fails here, before anything is trained or written."""
        check_runnable(experiment)
        self.experiment, self.budget, self.data = experiment, budget, data
        self.folder = root / experiment.name
        overrides = dict(overrides or {})
        self.base = apply_overrides(base_config(experiment, overrides), budget_overrides(budget, overrides),
                                    source=str(budget))  # what every variant starts from
        self.corpus = choose_corpus(data)  # streamed once: a bad file fails here
        progress("loading PyTorch…")
        _warm_up()
        self.fresh, self.progress = fresh, progress
        self.trainer: Trainer | None = None  # the variant training now
        self._stop = threading.Event()
        self._notes: list[str] = []

    @classmethod
    def resuming(cls, record: Record, root: Path, progress: Callable[[str], None] = lambda text: None) -> LabRun:
        """Go on with an experiment as its record says it was run: its time, its text, its settings."""
        plain = base_config(record.experiment).to_dict()
        overrides = {key: value for key, value in record.base.items()
                     if plain.get(key) != value and key not in FIXED_KEYS}
        return cls(record.experiment, record.budget, root, Path(record.data) if record.data else None, overrides,
                   progress=progress)

    def request_stop(self) -> None:
        self._stop.set()
        if self.trainer:
            self.trainer.request_stop()

    def run(self) -> Iterator[LabEvent]:
        record = self._open_record()
        for index, variant in enumerate(self.experiment.variants):
            if self._stop.is_set():
                yield ExperimentStopped(index)
                return
            record = yield from self._variant(index, variant, record)
            if variant.name not in record.done:  # stopped part-way, and saved
                yield ExperimentStopped(index)
                return
        results, warnings = read_results(self.folder, self.experiment)
        yield from (LabNote(warning) for warning in warnings)
        if len(results) < len(self.experiment.variants):
            missing = ", ".join(v.name for v in self.experiment.variants if v.name not in results)
            yield LabNote(f"no result for {missing} (its log holds no evaluation): no conclusion")
            return
        yield ExperimentDone(results, conclude(self.experiment, {n: r.val_bpc for n, r in results.items()}))

    def _open_record(self) -> Record:
        """The experiment's record, new or continued: an earlier run must have been run the same way."""
        record = Record(self.experiment, self.budget, str(self.data) if self.data else None, self.corpus.name,
                        self.base.to_dict())
        earlier = None if self.fresh else load_record(self.folder)
        if earlier:
            if difference := _difference(earlier, record):
                raise LabError(f"{self.folder} holds a run of {self.experiment.name} with {difference}; run it the "
                               "same way to resume it, or pass --fresh to start it over")
            record = replace(record, started=earlier.started, done=earlier.done)
        save_record(self.folder, record)
        return record

    def _variant(self, index: int, variant: Variant, record: Record) -> Iterator[LabEvent]:
        """Train one variant, or skip it if done; returns the record, updated."""
        checkpoint = variant_checkpoint(self.folder, variant.name)
        if variant.name in record.done and checkpoint.exists():
            yield VariantDone(index, self._result(variant), earlier=True)
            return record
        started = time.monotonic()  # the variant's time counts its start-up
        resume = variant.name in record.started
        record = replace(record, started=_with(record.started, variant.name))
        save_record(self.folder, record)
        session = self._open_session(variant, checkpoint, resume)
        if self._stop.is_set():  # asked while it was set up: nothing trained, nothing to save
            return record
        finished_earlier = session.finished  # its last run ended as its budget did, before the record said so
        if not finished_earlier:
            self.trainer = session.trainer
            yield VariantStarted(index, variant, session.trainer.num_parameters, session.resumed,
                                 session.trainer.tokens_per_step, (session.trainer.splits.train_chars_per_token,
                                                                   session.trainer.splits.val_chars_per_token))
            yield from self._train(index, session, started)
            self.trainer = None
            if session.trainer.stop_requested and not session.trainer.finished:  # stopped part-way, and saved
                return record
        record = replace(record, done=_with(record.done, variant.name))
        save_record(self.folder, record)
        yield VariantDone(index, self._result(variant), earlier=finished_earlier)
        return record

    def _open_session(self, variant: Variant, checkpoint: Path, resume: bool) -> TrainingSession:
        from minigpt.plumbing.session import open_session

        config = variant_config(self.base, self.experiment, variant)
        self.progress(f"{variant.name}: starting…")
        session = open_session(config, GIVEN_KEYS, self.data, checkpoint, "auto" if resume else "scratch",
                               progress=lambda text: self.progress(f"{variant.name}: {text}"))
        self._notes += [f"{variant.name}: {note}" for note in session.notes if not session.finished]
        return session

    def _train(self, index: int, session: TrainingSession, started: float) -> Iterator[LabEvent]:
        for event in train_with_log(session, started, self._notes.append):
            if self._stop.is_set():
                session.trainer.request_stop()  # asked before this trainer's run began
            yield from self._pending_notes()
            yield VariantTraining(index, event)
        yield from self._pending_notes()

    def _pending_notes(self) -> Iterator[LabNote]:
        while self._notes:
            yield LabNote(self._notes.pop(0))

    def _result(self, variant: Variant) -> VariantResult | None:
        results, warnings = read_results(self.folder, replace(self.experiment, variants=(variant,)))
        self._notes += warnings
        return results.get(variant.name)


def open_variant(checkpoint: Path, progress: Callable[[str], None] = lambda text: None) -> TrainingSession:
    """A variant's run as the Lab left it (the checkpoint, its text and its config), to look inside it."""
    from minigpt.plumbing.session import open_session

    folder = checkpoint.parent
    record = load_record(folder)
    variant = next((v for v in record.experiment.variants if v.name == checkpoint.stem), None) if record else None
    if record is None or variant is None:
        raise LabError(f"{checkpoint}: not a variant of an experiment the Lab has run (no {folder.name} record of it)")
    config = variant_config(apply_overrides(TrainConfig(), record.base, source=str(folder / "experiment.json")),
                            record.experiment, variant)
    return open_session(config, GIVEN_KEYS, Path(record.data) if record.data else None, checkpoint, "resume",
                        progress)


def _warm_up() -> None:
    """Pay PyTorch's one-time costs here, before any variant's clock starts, rather than in the first
    variant's time: importing it, and the parts it imports when a first model is built (seconds)."""
    from minigpt.model import ModelConfig
    from minigpt.plumbing.device import training_memory

    training_memory(ModelConfig(vocab_size=8, block_size=8, d_model=8, n_heads=1, n_layers=1), batch_size=1)


def train_with_log(session: TrainingSession, started: float, warn: Callable[[str], None]) -> Iterator[Event]:
    """Run a session's trainer, keeping its metrics log as minigpt-train keeps it. (The Lab's one
    place that drives a trainer: the library's single driver, when it comes, takes its place.)"""
    from minigpt.plumbing.runlog import RunLog, log_path

    log = RunLog(log_path(session.checkpoint), session.trainer, session.corpus.name, on_error=warn)
    try:
        for event in session.trainer.run(started=started):
            log.record(event)
            yield event
    finally:
        log.finish()


def _with(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    return names if name in names else (*names, name)


def _difference(earlier: Record, now: Record) -> str:
    """How now's run of the experiment differs from earlier's, in words; "" when it does not."""
    if earlier.budget != now.budget:
        return f"{earlier.budget} (now {now.budget})"
    if (earlier.data, earlier.corpus) != (now.data, now.corpus):
        return f"the text {earlier.corpus} (now {now.corpus})"
    if changed := [key for key in now.base if earlier.base.get(key) != now.base[key]]:
        key = changed[0]
        return f"{key} = {earlier.base.get(key)!r} (now {now.base[key]!r})"
    if replace(earlier.experiment, source="") != replace(now.experiment, source=""):
        return "other variants (its definition has changed since)"
    return ""
