"""Driving Trainer.run() from a thread worker.

The trainer's loop is suspended between two events, so pausing is simply
not asking for the next one. Steps are posted in batches: one message per
PROGRESS_INTERVAL, whatever the step rate, so a fast model cannot flood
the UI and the training thread never waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from textual.message import Message
from textual.worker import Worker

from minigpt.plumbing.runlog import RunLog, log_path
from minigpt.plumbing.session import TrainingSession
from minigpt.trainer import EvalEvent, Event, SavedEvent, SaveFailedEvent, StepEvent, Trainer
from tui.messages import (
    CheckpointSaved,
    CheckpointSaveFailed,
    Evaluated,
    RunLogFailed,
    TrainingPaused,
    TrainingProgress,
)

PROGRESS_INTERVAL = 0.5  # seconds between progress messages: each costs the UI thread, and so training, CPU
PAUSE_POLL = 0.05  # seconds between checks for resume, save or quit while paused


class TrainingRun:
    """One training session, kept in the run's metrics log as minigpt-train keeps it.
    run() is called in the worker thread; pause(), resume(), stop() and
    request_save() may be called from any thread."""

    def __init__(self, session: TrainingSession, post: Callable[[Message], object]) -> None:
        self.trainer = trainer = session.trainer
        self._post = post
        self.log = RunLog(log_path(session.checkpoint), trainer, session.corpus.name,
                          on_error=lambda text: post(RunLogFailed(text)))
        self._paused = threading.Event()
        self._save_requested = threading.Event()
        self._losses: list[tuple[int, float, float, float]] = []  # step, seconds, loss, learning rate
        self._last_step: StepEvent | None = None
        self._last_post = 0.0

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        """End after the current step; the trainer saves what it has done."""
        self.trainer.request_stop()
        self._paused.clear()

    def request_save(self) -> None:
        self._save_requested.set()

    def run(self, worker: Worker) -> None:
        events = self.trainer.run()
        try:
            for event in events:
                self._handle(event)
                if worker.is_cancelled:  # the app is quitting: finish this step and save
                    self.stop()
                self._between_steps(worker)
        finally:
            events.close()
            self.log.finish()
            self._flush()

    def _between_steps(self, worker: Worker) -> None:
        if self._save_requested.is_set():
            self._save()
        if not self._paused.is_set():
            return
        self._flush()
        self._post(TrainingPaused(True))
        while self._paused.is_set() and not worker.is_cancelled:
            worker.cancelled_event.wait(PAUSE_POLL)
            if self._save_requested.is_set():
                self._save()
        self._post(TrainingPaused(False))

    def _save(self) -> None:
        self._save_requested.clear()
        self._flush()
        for event in self.trainer.save():
            self._handle(event)

    def _handle(self, event: Event) -> None:
        self.log.record(event)
        if isinstance(event, StepEvent):
            self._losses.append((event.step, event.elapsed, event.loss, event.lr))
            self._last_step = event
            if time.monotonic() - self._last_post >= PROGRESS_INTERVAL:
                self._flush()
            return
        self._flush()  # keep the order: the steps before an evaluation arrive first
        if isinstance(event, EvalEvent):
            self._post(Evaluated(event))
        elif isinstance(event, SaveFailedEvent):
            self._post(CheckpointSaveFailed(event))
        elif isinstance(event, SavedEvent):
            self._post(CheckpointSaved(event))

    def _flush(self) -> None:
        if self._losses and self._last_step is not None:
            self._post(TrainingProgress(self._losses, self._last_step))
            self._losses = []
        self._last_post = time.monotonic()


def save_events(trainer: Trainer) -> Iterator[Message]:
    """The messages for a save made while no run is going on."""
    for event in trainer.save():
        yield CheckpointSaveFailed(event) if isinstance(event, SaveFailedEvent) else CheckpointSaved(event)
