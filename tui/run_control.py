"""The app's training controls, and what it shows of a run as it goes: a part of
MiniGPTApp (tui.app), in a module of its own.

t starts, pauses and resumes training in a thread worker (tui.training); x
stops and s saves; a finished run says so, and + gives it EXTRA_SECONDS more
(the library's rule for a longer budget). The worker's messages go to the
chart, the status bar, the completions and samples views, and the Log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.worker import Worker, WorkerState, get_current_worker

from minigpt.plumbing.runs import Sample
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
from tui.narration import evaluation_line, final_score_line, finished_line, memorising_note

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession
    from tui.stepped_run import SteppedRun

EXTRA_SECONDS = 300.0  # what + adds to a run's time budget


class RunControl(App[None]):
    """The training half of MiniGPTApp: it uses the app's session, run_state, progress,
    run_info, chart, completions, samples and Log."""

    def action_start_training(self) -> None:
        assert self.session is not None  # check_action enables this only with a session
        from tui.training import TrainingRun

        self._run = TrainingRun(self.session, self.post_message)
        self.run_state = "training"
        self.log_line(f"training from step {self.session.trainer.step:,}")
        self._train(self._run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="train")
    def _train(self, run: SteppedRun) -> None:
        run.run(get_current_worker())

    def action_finished_hint(self) -> None:
        assert self.session is not None
        self.notify(finished_line(self.session, self.key_display(self.get_binding("add-time")), EXTRA_SECONDS),
                    title="Training is finished")

    def action_add_time(self) -> None:
        """Give the run EXTRA_SECONDS more, and train."""
        assert self.session is not None
        self.session.add_time(EXTRA_SECONDS)
        config = self.session.trainer.config
        self.progress = replace(self.progress, max_iters=config.max_iters, time_budget=config.time_budget)
        self.log_line(f"{EXTRA_SECONDS / 60:g} more minutes: the time budget is now {config.time_budget / 60:.1f} "
                      "minutes, the learning-rate schedule laid over it")
        self.action_start_training()

    def action_pause_training(self) -> None:
        if self._run:
            self._run.pause()
            self.run_state = "paused"

    def action_resume_training(self) -> None:
        if self._run:
            self._run.resume()
            self.run_state = "training"

    def action_stop_training(self) -> None:
        if self._run:
            self._run.stop()
            self.run_state = "stopping"

    def action_save(self) -> None:
        if self._run:  # the training thread saves between two steps
            self._run.request_save()
        elif self.session:
            self.run_state = "saving"
            self._save(self.session)

    @work(thread=True, exit_on_error=False, group="save", name="save")
    def _save(self, session: TrainingSession) -> None:
        from tui.training import TrainingRun

        TrainingRun(session, self.post_message).save()

    def on_training_progress(self, message: TrainingProgress) -> None:
        self.chart.add_train_losses(message.losses)
        last = message.last
        self.progress = replace(self.progress, step=last.step, max_iters=last.max_iters, loss=last.loss,
                                tokens_per_sec=last.tokens_per_sec, eta=last.eta,
                                time_used=last.elapsed, final_val_loss=None)  # steps past an end: it is old

    def on_evaluated(self, message: Evaluated) -> None:
        event = message.event
        self.chart.add_val_loss(event.step, event.elapsed, event.val_loss)
        if event.memorising and not self.progress.memorising:
            self.notify(memorising_note(event), title="Memorising", severity="warning", timeout=20)
        self.progress = replace(self.progress, val_loss=event.val_loss, best_val_loss=event.best_val_loss,
                                memorising=event.memorising)
        self.completions.add_sample(event)
        self.samples.add_samples([Sample(event.step, event.val_loss, event.sample)])
        self.log_line(evaluation_line(event))

    def on_final_scored(self, message: FinalScored) -> None:
        self.progress = replace(self.progress, final_val_loss=message.event.val_loss)
        self.log_line(final_score_line(message.event))

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        self._unsaved_error = None
        self.log_line(f"saved {message.event.path} at step {message.event.step:,}")
        if self.run_info:
            self.run_info = replace(self.run_info, saved=f"saved, step {message.event.step:,}")

    def on_checkpoint_save_failed(self, message: CheckpointSaveFailed) -> None:
        self._unsaved_error = message.event.error
        self.notify(f"{message.event.error}; the previous checkpoint is intact", title="Checkpoint not saved",
                    severity="error", timeout=15)

    def on_run_log_failed(self, message: RunLogFailed) -> None:
        self.notify(message.text, title="Metrics log", severity="warning", timeout=15)

    def on_speed_cache_corrected(self, message: SpeedCacheCorrected) -> None:
        self.notify(message.text, title="Speed cache", timeout=15)

    def on_training_paused(self, message: TrainingPaused) -> None:
        if message.paused and self.session:
            self.log_line(f"paused at step {self.session.trainer.step:,}")

    def _training_ended(self, worker: Worker) -> None:
        self._run = None
        lab = self.lab_ended()  # the worker ran a Lab experiment (tui.lab_control)
        finished = self.session is not None and self.session.finished
        self.run_state = "finished" if finished else "idle"
        if worker.state == WorkerState.ERROR:
            self._report(worker.error, "The Lab stopped" if lab else "Training stopped")
        elif self.session and not lab:
            self.log_line(f"training ended at step {self.session.trainer.step:,}")
            if finished and not self._quitting:
                self.action_finished_hint()
        if self._quitting:
            self._finish_quitting()
