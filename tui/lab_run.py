"""Driving a Lab experiment (minigpt.plumbing.lab) from the app's one training
worker, as tui.training drives a training run: the same keys pause, resume,
stop and save it, and its events reach the app in batches, one message per
PROGRESS_INTERVAL at most while steps stream in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.message import Message
from textual.worker import Worker

from minigpt.plumbing.lab import LabEvent, LabRun, VariantStarted, VariantTraining
from minigpt.trainer import StepEvent
from tui.messages import LabUpdate
from tui.stepped_run import PROGRESS_INTERVAL, SteppedRun


class LabDriver(SteppedRun):
    """One run of an experiment (start builds the LabRun in the worker thread: it reads the text)."""

    def __init__(self, start: Callable[[], LabRun], post: Callable[[Message], object]) -> None:
        super().__init__()
        self._start, self._post = start, post
        self.lab: LabRun | None = None
        self._stopped = threading.Event()
        self._pending: list[LabEvent] = []
        self._index = 0  # the variant training now
        self._last_post = 0.0

    def stop(self) -> None:
        """End the variant in progress after its current step; it is saved, and the experiment resumes later."""
        self._stopped.set()
        self.resume()  # a paused worker must be let go to reach the stop
        if self.lab:
            self.lab.request_stop()

    def run(self, worker: Worker) -> None:
        self.lab = self._start()
        if self._stopped.is_set():  # asked while the text was read
            self.lab.request_stop()
        events = self.lab.run()
        try:
            for event in events:
                self._handle(event)
                if isinstance(event, VariantTraining):
                    self.between_steps(worker)
                elif worker.is_cancelled:  # the app is quitting: finish this step and save
                    self.stop()
        finally:
            events.close()
            self._flush()

    def save(self) -> None:
        if self.lab and self.lab.trainer:
            for event in self.lab.trainer.save():
                self._handle(VariantTraining(self._index, event))

    def on_pause(self, paused: bool) -> None:
        if paused:
            self._flush()

    def _handle(self, event: LabEvent) -> None:
        self._pending.append(event)
        if isinstance(event, VariantStarted):
            self._index = event.index
        steps = isinstance(event, VariantTraining) and isinstance(event.event, StepEvent)
        if not steps or time.monotonic() - self._last_post >= PROGRESS_INTERVAL:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._post(LabUpdate(self._pending))
            self._pending = []
        self._last_post = time.monotonic()
