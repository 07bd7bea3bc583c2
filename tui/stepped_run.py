"""What the app's one training worker runs: a training session (tui.training)
or a Lab experiment (tui.lab_run). The keys pause, resume, stop and save it
from the UI thread; the worker thread honours them between two steps. The
library's loops are suspended between two events, so pausing is simply not
asking for the next one."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from textual.worker import Worker

PROGRESS_INTERVAL = 0.5  # seconds between progress messages: each costs the UI thread, and so training, CPU
PAUSE_POLL = 0.05  # seconds between checks for resume, save or quit while paused


class SteppedRun(ABC):
    """run() and save() are called in the worker thread; pause(), resume(), stop()
    and request_save() may be called from any thread."""

    def __init__(self) -> None:
        self._paused = threading.Event()
        self._save_requested = threading.Event()

    @abstractmethod
    def run(self, worker: Worker) -> None:
        """Train until the end, a stop, or the worker's cancelling, calling between_steps() after each step."""

    @abstractmethod
    def stop(self) -> None:
        """End after the current step; what was done is saved."""

    @abstractmethod
    def save(self) -> None:
        """Save now: between two steps, or while no run goes on."""

    @abstractmethod
    def on_pause(self, paused: bool) -> None:
        """Called in the worker thread as a pause begins (True) and ends (False)."""

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def request_save(self) -> None:
        self._save_requested.set()

    def between_steps(self, worker: Worker) -> None:
        """Save if asked, hold the worker here while paused, and stop if the app is quitting."""
        self._save_if_asked()
        if self._paused.is_set():
            self.on_pause(True)
            while self._paused.is_set() and not worker.is_cancelled:
                worker.cancelled_event.wait(PAUSE_POLL)
                self._save_if_asked()
            self.on_pause(False)
        if worker.is_cancelled:  # the app is quitting: end after this step, which saves
            self.stop()

    def _save_if_asked(self) -> None:
        if self._save_requested.is_set():
            self._save_requested.clear()
            self.save()
