"""Driving a training session from a thread worker. The library's Driver
(minigpt.plumbing.driver) runs the trainer and keeps the run's metrics log, as
it does for minigpt-train; TrainingRun is its Watcher, and posts each event
to the app as a message.

Steps are posted in batches: one message per PROGRESS_INTERVAL, whatever the
step rate, so a fast model cannot flood the UI and the training thread never
waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message import Message
from textual.worker import Worker

from minigpt.plumbing.driver import Driver, Watcher
from minigpt.plumbing.session import TrainingSession
from minigpt.plumbing.speedcheck import SpeedCorrected
from minigpt.trainer import EvalEvent, FinalScoreEvent, SavedEvent, SaveFailedEvent, StepEvent
from tui.messages import (
    CheckpointSaved,
    CheckpointSaveFailed,
    Evaluated,
    FinalScored,
    RunLogFailed,
    SpeedCacheCorrected,
    TrainingPaused,
    TrainingProgress,
)
from tui.stepped_run import PROGRESS_INTERVAL, SteppedRun


class TrainingRun(Watcher, SteppedRun):
    """One training session, kept in the run's metrics log as minigpt-train keeps it."""

    def __init__(self, session: TrainingSession, post: Callable[[Message], object]) -> None:
        super().__init__()
        self.trainer = session.trainer
        self._post = post
        self.driver = Driver(session, self)
        self._losses: list[tuple[int, float, float, float]] = []  # step, seconds, loss, learning rate
        self._last_step: StepEvent | None = None
        self._last_post = 0.0

    def stop(self) -> None:
        """End after the current step; the trainer saves what it has done."""
        self.trainer.request_stop()
        self.resume()  # a paused worker must be let go to reach the stop

    def run(self, worker: Worker) -> None:
        try:
            self.driver.run(between=lambda: self.between_steps(worker))
        finally:
            self._flush()

    def save(self) -> None:
        self._flush()
        self.driver.save()

    def on_pause(self, paused: bool) -> None:
        self._flush()
        self._post(TrainingPaused(paused))

    # --- the Watcher: events in, messages out ---------------------------------------------------

    def on_step(self, event: StepEvent) -> None:
        self._losses.append((event.step, event.elapsed, event.loss, event.lr))
        self._last_step = event
        if time.monotonic() - self._last_post >= PROGRESS_INTERVAL:
            self._flush()

    def on_eval(self, event: EvalEvent) -> None:
        self._send(Evaluated(event))

    def on_final(self, event: FinalScoreEvent) -> None:
        self._send(FinalScored(event))

    def on_saved(self, event: SavedEvent) -> None:
        self._send(CheckpointSaved(event))

    def on_save_failed(self, event: SaveFailedEvent) -> None:
        self._send(CheckpointSaveFailed(event))

    def on_log_failed(self, message: str) -> None:
        self._post(RunLogFailed(message))

    def on_speed_corrected(self, event: SpeedCorrected) -> None:
        self._post(SpeedCacheCorrected(event.description))

    def _send(self, message: Message) -> None:
        self._flush()  # keep the order: the steps before an evaluation or a save arrive first
        self._post(message)

    def _flush(self) -> None:
        if self._losses and self._last_step is not None:
            self._post(TrainingProgress(self._losses, self._last_step))
            self._losses = []
        self._last_post = time.monotonic()
