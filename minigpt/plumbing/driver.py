"""Driving a training session for a front end. minigpt-train and the app both
run their trainer here: every event is written to the run's metrics log
(runlog) and handed to the front end's Watcher, which only presents it.
This module does not import PyTorch: a front end imports it at start-up.

    driver = Driver(session, watcher)   # watcher: a Watcher with on_step, on_eval...
    driver.run(started)                 # until max_iters, the budget's end or a stop request
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minigpt.plumbing.runlog import RunLog, log_path

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.speedcheck import SpeedCorrected
    from minigpt.trainer import EvalEvent, Event, FinalScoreEvent, SavedEvent, SaveFailedEvent, StepEvent


class Watcher:
    """What a front end does with a run's events: a method for each kind, each doing nothing here."""

    def on_step(self, event: StepEvent) -> None:
        """After every optimizer step."""

    def on_eval(self, event: EvalEvent) -> None:
        """After every evaluation: the losses, and a sample."""

    def on_final(self, event: FinalScoreEvent) -> None:
        """The run reached its end: its last weights scored on the whole validation split."""

    def on_saved(self, event: SavedEvent) -> None:
        """A checkpoint was written."""

    def on_save_failed(self, event: SaveFailedEvent) -> None:
        """A checkpoint could not be written; the previous one is intact and training goes on."""

    def on_log_failed(self, message: str) -> None:
        """The metrics log could not be written (said once); training goes on."""

    def on_speed_corrected(self, event: SpeedCorrected) -> None:
        """At the end of a session: the speed cache had this run's shape wrong, and now holds its pace."""


# By the event's name: a front end can import this module before PyTorch (which minigpt.trainer imports).
METHODS = {"StepEvent": "on_step", "EvalEvent": "on_eval", "FinalScoreEvent": "on_final",
           "SavedEvent": "on_saved", "SaveFailedEvent": "on_save_failed", "SpeedCorrected": "on_speed_corrected"}


def deliver(event: Event | SpeedCorrected, watcher: Watcher) -> None:
    """Hand an event to the watcher's method for its kind."""
    getattr(watcher, METHODS[type(event).__name__])(event)


class Driver:
    """Runs a session's trainer, keeps the run's metrics log, and hands every event to a watcher."""

    def __init__(self, session: TrainingSession, watcher: Watcher, log: Path | None = None,
                 keep_log: bool = True) -> None:
        """log: where the metrics log goes (by default beside the checkpoint); keep_log=False keeps none
        (under torchrun, the ranks other than 0)."""
        self.trainer = session.trainer
        self.watcher = watcher
        self.log = RunLog(log or log_path(session.checkpoint), self.trainer, session.corpus.name,
                          on_error=watcher.on_log_failed) if keep_log else None

    def run(self, started: float | None = None, between: Callable[[], None] = lambda: None) -> None:
        """Train until the trainer stops (see Trainer.run; started: when the program
        started). between() is called after each event: the place to pause or to save."""
        from minigpt.plumbing.speedcheck import checking_speed  # imports PyTorch

        events = checking_speed(self.trainer, self.trainer.run(started))  # a speed cache a busy moment misled
        try:
            for event in events:
                self.deliver(event)
                between()
        finally:
            events.close()
            if self.log:
                self.log.finish()

    def save(self) -> None:
        """Save now: between two steps (from between()), or while no run goes on."""
        for event in self.trainer.save():
            self.deliver(event)

    def deliver(self, event: Event | SpeedCorrected) -> None:
        if self.log:
            self.log.record(event)
        deliver(event, self.watcher)
