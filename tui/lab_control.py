"""The Lab in the app: a part of MiniGPTApp (tui.app), in a module of its own.

The Lab view (key 5) asks to run or resume an experiment; it runs in the app's
one training worker (tui.lab_run), so that only one thing trains at a time,
and its events go to the view, the status line and the Log. A variant opened
from the Lab is inspected in the Inspect view, which says whose model it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.worker import Worker, WorkerState

from tui.messages import LabUpdate
from tui.views.lab import LabView

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession


class LabControl(App[None]):
    """The Lab half of MiniGPTApp: it uses the app's run_state, its training worker (_train, _run),
    the Lab and Inspect views and the Log."""

    def on_lab_view_start_requested(self, message: LabView.StartRequested) -> None:
        if self._run is not None:
            what = "The Lab is running an experiment" if self.lab.running else "The model is training"
            self.notify(f"{what}, and only one thing trains at a time: stop it with x first", title="Lab",
                        severity="warning")
            return
        if self.run_state not in ("idle", "finished"):
            why = "the app's model could not be loaded (see the log); minigpt-lab runs experiments without it" \
                if self.run_state == "error" else "wait until the app's model has loaded"
            self.notify(f"The Lab cannot start: {why}", title="Lab", severity="warning")
            return
        from tui.lab_run import LabDriver

        def start():
            from minigpt.plumbing.lab import LabRun

            if message.record:
                return LabRun.resuming(message.record, self.lab.folder)
            return LabRun(message.experiment, message.budget, self.lab.folder, self.options.data, fresh=True)

        self._run = LabDriver(start, self.post_message)
        self.lab.running = True
        self.run_state = "training"
        self.log_line(f"lab: {message.experiment.name}, {message.budget}")
        self._train(self._run)

    def lab_ended(self) -> bool:
        """Called as the training worker ends: whether it ran the Lab."""
        lab, self.lab.running = self.lab.running, False
        if lab:
            self.load_message = ""
        return lab

    def on_lab_update(self, message: LabUpdate) -> None:
        from minigpt.plumbing.lab import ExperimentDone, ExperimentStopped, LabNote, VariantTraining
        from minigpt.trainer import SavedEvent, SaveFailedEvent

        self.lab.show_events(message.events)
        self.load_message = self.lab.status
        for event in message.events:
            saving = event.event if isinstance(event, VariantTraining) else None
            if isinstance(saving, SavedEvent):
                self.log_line(f"lab: saved {self.lab.variant_name(event.index)} at step {saving.step:,}")
            elif isinstance(saving, SaveFailedEvent):
                self.notify(f"{saving.error}; the variant's previous checkpoint is intact",
                            title="Lab: checkpoint not saved", severity="error", timeout=15)
            elif isinstance(event, LabNote):
                self.notify(event.text, title="Lab", severity="warning", timeout=10)
            elif isinstance(event, ExperimentStopped):
                self.log_line(f"lab: stopped at {self.lab.variant_name(event.index)}; r in the Lab view resumes it")
            elif isinstance(event, ExperimentDone):
                self.log_line(f"lab: done. {event.conclusion}")

    def on_lab_view_inspect_requested(self, message: LabView.InspectRequested) -> None:
        self._open_variant(message.checkpoint, message.name)

    @work(thread=True, exit_on_error=False, group="variant", name="open variant")
    def _open_variant(self, checkpoint: Path, name: str) -> tuple[TrainingSession, str]:
        from minigpt.plumbing.lab import open_variant

        return open_variant(checkpoint), name

    def variant_opened(self, worker: Worker) -> None:
        if worker.state == WorkerState.ERROR:
            self._report(worker.error, "Cannot open the variant")
            return
        session, name = worker.result
        self.inspector.model_name, self.inspector.session = name, session
        self.inspector.inspect("", "")
        self.action_show_view("inspect-view")
        back = self.key_display(self.get_binding("view-inspect"))
        self.notify(f"Inspecting the Lab's {name}, at step {session.trainer.step:,}; {back} goes back to this "
                    "app's model", title="Lab")

    def inspect_own_model(self) -> None:
        """Back from a Lab variant to the app's own model."""
        if self.inspector.model_name:
            self.inspector.model_name, self.inspector.session = "", self.session
