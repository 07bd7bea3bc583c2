"""minigpt-tui: train a MiniGPT model live and complete prompts in a terminal app.

The app only presents what the library emits. It composes the views (each
a module of tui.views, with its own bindings and handlers), the status bar and
the footer, and routes: worker messages go to the view that shows them, and
app-wide state goes down to the widgets as attributes. Thread workers do the
work: the loader (imports PyTorch after the first paint, reads the settings,
the corpus and the checkpoint), the training run and saves here, completions
in the completions pane. They post batched messages (tui.messages).

Nothing imported here at module level may import PyTorch: importing it
takes seconds, and the first screen must appear at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.reactive import reactive, var
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_HISTORY
from minigpt.plumbing.runlog import tokens_seen
from minigpt.plumbing.runs import Sample, run_of_checkpoint
from tui.messages import (
    CheckpointSaved,
    CheckpointSaveFailed,
    Evaluated,
    LabUpdate,
    LoadProgress,
    RunHistory,
    RunLogFailed,
    SessionReady,
    SettingsLoaded,
    TrainingPaused,
    TrainingProgress,
)
from tui.options import Options, parse_options
from tui.preferences import read_keymap, read_theme, with_theme
from tui.screens.settings import SettingsResult, SettingsScreen
from tui.text import one_line
from tui.views.completions import CompletionsPane
from tui.views.inspect import InspectView
from tui.views.lab import LabView
from tui.views.log import LogView
from tui.views.samples import SamplesView
from tui.views.train import TrainView
from tui.widgets.footer import AppFooter
from tui.widgets.loss_chart import LossChart, RunScale
from tui.widgets.status_bar import Progress, RunInfo, StatusBar

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings
    from tui.training import TrainingRun


class MiniGPTApp(App[None]):
    TITLE = "MiniGPT"
    CSS_PATH = ["app.tcss", "screens.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        # One key, three actions: check_action enables the one that fits the state.
        Binding("t", "start_training", "Train", id="train", tooltip="Start training"),
        Binding("t", "pause_training", "Pause", id="pause", tooltip="Pause training"),
        Binding("t", "resume_training", "Resume", id="resume", tooltip="Resume training"),
        Binding("x", "stop_training", "Stop", id="stop", tooltip="Stop training and save a checkpoint"),
        Binding("s", "save", "Save", id="save", tooltip="Save a checkpoint now"),
        # Hidden from the Footer: the prompt's own line says it.
        Binding("slash", "focus_prompt", "Prompt", id="prompt", show=False, tooltip="Write a prompt"),
        Binding("comma", "settings", "Settings", id="settings", tooltip="Edit the sampling settings"),
        Binding("1", "show_view('train-view')", "Chart", id="view-train", show=False,
                tooltip="Show the loss chart and completions"),
        Binding("2", "show_view('log-view')", "Log", id="view-log", show=False, tooltip="Show the event log"),
        Binding("3", "inspect", "Inspect", id="view-inspect", show=False,
                tooltip="Inspect the model on the prompt, or else the last completion"),
        Binding("4", "show_view('samples-view')", "Samples", id="view-samples", show=False,
                tooltip="Show the samples of every evaluation, two side by side"),
        Binding("5", "show_view('lab-view')", "Lab", id="view-lab",
                tooltip="The Lab: experiments that answer a question with measurements"),
        Binding("question_mark,f1", "help", "Help", id="help", tooltip="Show help and every key"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="Quit (saving first while training)"),
    ]

    # State, shown by the status bar through data binding.
    run_state: reactive[str] = reactive("loading", bindings=True)  # one of status_bar.STATES
    generating: var[bool] = var(False)  # the completions pane is streaming (watched)
    load_message: var[str] = var("")
    progress: var[Progress] = var(Progress)
    run_info: var[RunInfo | None] = var(None)
    # What the views work on, passed down to them through data binding.
    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)  # None until the settings file is read

    chart: LossChart
    completions: CompletionsPane
    event_log: LogView
    inspector: InspectView
    samples: SamplesView
    lab: LabView

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.options = options
        self.settings_path = options.settings
        self.settings_document: dict = {}
        self.keymap: dict[str, str] = {}  # the user's [keymap], as applied
        self._run: TrainingRun | None = None
        self._quitting = False
        self._unsaved_error: str | None = None  # the last save failed with this message

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(id="views"):
            with TabPane("Train", id="train-view"):
                yield TrainView(id="train").data_bind(MiniGPTApp.session, MiniGPTApp.sampling)
            with TabPane("Log", id="log-view"):
                yield LogView(id="log")
            with TabPane("Inspect", id="inspect-view"):
                yield InspectView(id="inspect").data_bind(MiniGPTApp.session, MiniGPTApp.sampling,
                                                          MiniGPTApp.run_state)
            with TabPane("Samples", id="samples-view"):
                yield SamplesView(id="samples")
            with TabPane("Lab", id="lab-view"):
                yield LabView(id="lab")
        yield StatusBar(id="status").data_bind(state=MiniGPTApp.run_state, generating=MiniGPTApp.generating,
                                               message=MiniGPTApp.load_message, progress=MiniGPTApp.progress,
                                               info=MiniGPTApp.run_info)
        yield AppFooter(compact=True)

    def on_mount(self) -> None:
        # Kept rather than queried: worker messages may still arrive while the app closes.
        self.chart = self.query_one(LossChart)
        self.completions = self.query_one(CompletionsPane)
        self.event_log = self.query_one(LogView)
        self.inspector = self.query_one(InspectView)
        self.samples = self.query_one(SamplesView)
        self.lab = self.query_one(LabView)
        self.lab.folder = self.options.checkpoint.parent / "lab"
        self.completions.list.focus()
        self.watch(self.completions, "generating", self._completion_running, init=False)
        self.call_after_refresh(self._load)  # after the first paint: the loader spends seconds importing PyTorch
        self.call_after_refresh(self.completions.open_files, self.options.checkpoint, DEFAULT_HISTORY)
        self._quit_on_sigterm()

    def _quit_on_sigterm(self) -> None:
        """`kill` (SIGTERM) quits as Ctrl+Q does, saving first while training,
        instead of ending the process with the work since the last save lost
        and the terminal left in the app's mode."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.call_next, self.action_quit)
        except (NotImplementedError, RuntimeError):  # Windows, or an app run outside the main thread
            pass

    def log_line(self, text: str) -> None:
        self.event_log.add(text)

    # --- start-up ---------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="load", name="load")
    def _load(self) -> None:
        self.post_message(LoadProgress("importing PyTorch…"))
        from minigpt.plumbing.session import open_session
        from minigpt.plumbing.settings import load_settings, settings_path

        self.post_message(SettingsLoaded(load_settings(settings_path(self.options.settings))))
        options = self.options
        session = open_session(options.config, options.explicit_keys, options.data, options.checkpoint,
                               "scratch" if options.from_scratch else "auto",
                               lambda text: self.post_message(LoadProgress(text)))
        if session.resumed:
            self.post_message(RunHistory(*run_of_checkpoint(session.checkpoint)))
        self.post_message(SessionReady(session))

    def on_load_progress(self, message: LoadProgress) -> None:
        self.load_message = message.text

    def on_settings_loaded(self, message: SettingsLoaded) -> None:
        loaded = message.loaded
        self.sampling, self.settings_path, self.settings_document = loaded.sampling, loaded.path, loaded.document
        theme, theme_problems = read_theme(loaded.document, loaded.path, self.available_themes)
        binding_ids = [binding.id for _, binding in self.all_bindings()]
        keymap, keymap_problems = read_keymap(loaded.document, loaded.path, binding_ids)
        if theme:
            self.theme = theme
        self.keymap = keymap
        self.set_keymap(keymap)
        for problem in loaded.problems + theme_problems + keymap_problems:
            self.notify(problem, title="Settings file problem (file left as it is)", severity="warning", timeout=15)
            self.log_line(f"settings: {problem}")
        self.refresh_bindings()

    def on_run_history(self, message: RunHistory) -> None:
        if message.run:
            train, val = message.run.chart_points()
            self.chart.add_train_losses(train)
            for point in val:
                self.chart.add_val_loss(*point)
            self.samples.add_samples(message.run.samples())
        for warning in message.warnings:
            self.notify(warning, title="Metrics log", severity="warning", timeout=10)
            self.log_line(f"warning: {warning}")

    def on_session_ready(self, message: SessionReady) -> None:
        self.session = session = message.session
        trainer = session.trainer
        self.chart.scale = RunScale(tokens_seen(trainer, step=1), trainer.splits.train_chars_per_token,
                                    trainer.splits.val_chars_per_token)
        if session.resumed:
            checkpoint = f"{session.checkpoint} (loaded, step {trainer.step:,})"
            self.notify(f"Loaded {session.checkpoint} at step {trainer.step:,}", title="Checkpoint")
        else:
            checkpoint = f"{self.options.checkpoint} (new)"
        c = trainer.model_config
        shape = f"d_model {c.d_model} x {c.n_layers} layers" if session.shape_choice else ""
        self.run_info = RunInfo(trainer.device.type, trainer.num_parameters, checkpoint, session.corpus.name, shape)
        if session.shape_choice:
            self.notify(session.shape_choice, title="Model chosen for the time budget", timeout=10)
            self.log_line(f"time budget: {session.shape_choice}")
        best = trainer.best_val_loss if session.resumed and trainer.best_val_loss < float("inf") else None
        self.progress = Progress(trainer.step, trainer.config.max_iters, val_loss=best,
                                 time_budget=trainer.config.time_budget, time_used=trainer.time_spent)
        self.load_message = ""
        self.log_line(f"{'resumed ' + str(session.checkpoint) if session.resumed else 'new model'}: "
                      f"{trainer.num_parameters:,} parameters on {trainer.device.type}; corpus {session.corpus.name} "
                      f"({session.corpus.length:,} characters); {trainer.tokenizer.kind} tokenizer, "
                      f"{trainer.tokenizer.vocab_size:,} tokens, {trainer.splits.train_chars_per_token:.2f} "
                      "characters per token")
        for note in session.notes:
            self.notify(note, severity="warning", timeout=10)
            self.log_line(f"note: {note}")
        self.run_state = "idle"

    # --- training -----------------------------------------------------------------------------

    def action_start_training(self) -> None:
        assert self.session is not None  # check_action enables this only with a session
        if self.session.finished:
            self.notify(self.session.finished_note(), title="Training is finished", severity="warning")
            return
        from tui.training import TrainingRun

        self._run = TrainingRun(self.session, self.post_message)
        self.run_state = "training"
        self.log_line(f"training from step {self.session.trainer.step:,}")
        self._train(self._run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="train")
    def _train(self, run: TrainingRun) -> None:
        run.run(get_current_worker())

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
        from tui.training import save_events

        for message in save_events(session.trainer):
            self.post_message(message)

    def on_training_progress(self, message: TrainingProgress) -> None:
        self.chart.add_train_losses(message.losses)
        last = message.last
        self.progress = replace(self.progress, step=last.step, max_iters=last.max_iters, loss=last.loss,
                                tokens_per_sec=last.tokens_per_sec, eta=last.eta,
                                time_used=last.elapsed)

    def on_evaluated(self, message: Evaluated) -> None:
        event = message.event
        self.chart.add_val_loss(event.step, event.elapsed, event.val_loss)
        self.progress = replace(self.progress, val_loss=event.val_loss)
        self.completions.add_sample(event)
        self.samples.add_samples([Sample(event.step, event.val_loss, event.sample)])
        self.log_line(f"step {event.step:,}: train {event.train_loss:.4f}  val {event.val_loss:.4f}  "
                      f"({event.val_bpc:.3f} bits/char)")

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        self._unsaved_error = None
        self.log_line(f"saved {message.event.path} at step {message.event.step:,}")
        if self.run_info:
            saved = f"{self.options.checkpoint} (saved, step {message.event.step:,})"  # as the user wrote it
            self.run_info = replace(self.run_info, checkpoint=saved)

    def on_checkpoint_save_failed(self, message: CheckpointSaveFailed) -> None:
        self._unsaved_error = message.event.error
        self.notify(f"{message.event.error}; the previous checkpoint is intact", title="Checkpoint not saved",
                    severity="error", timeout=15)
        self.log_line(f"save failed: {message.event.error}")

    def on_run_log_failed(self, message: RunLogFailed) -> None:
        self.notify(message.text, title="Metrics log", severity="warning", timeout=15)
        self.log_line(f"warning: {message.text}")

    def on_training_paused(self, message: TrainingPaused) -> None:
        if message.paused and self.session:
            self.log_line(f"paused at step {self.session.trainer.step:,}")

    def _training_ended(self, worker: Worker) -> None:
        self._run = None
        self.run_state = "idle"
        lab, self.lab.running = self.lab.running, False
        if lab:
            self.load_message = ""
        if worker.state == WorkerState.ERROR:
            self._report(worker.error, "The Lab stopped" if lab else "Training stopped")
        elif self.session and not lab:
            self.log_line(f"training ended at step {self.session.trainer.step:,}")
        if self._quitting:
            self._finish_quitting()

    # --- the Lab: it runs in the training worker, so that only one thing trains at a time --------------

    def on_lab_view_start_requested(self, message: LabView.StartRequested) -> None:
        if self._run is not None:
            what = "The Lab is running an experiment" if self.lab.running else "The model is training"
            self.notify(f"{what}, and only one thing trains at a time: stop it with x first", title="Lab",
                        severity="warning")
            return
        if self.run_state != "idle":
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

    def on_lab_update(self, message: LabUpdate) -> None:
        from minigpt.plumbing.lab import ExperimentDone, ExperimentStopped, LabNote

        self.lab.show_events(message.events)
        self.load_message = self.lab.status
        for event in message.events:
            if isinstance(event, LabNote):
                self.notify(event.text, title="Lab", severity="warning", timeout=10)
                self.log_line(f"lab: {event.text}")
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

    def _variant_opened(self, worker: Worker) -> None:
        if worker.state == WorkerState.ERROR:
            self._report(worker.error, "Cannot open the variant")
            return
        session, name = worker.result
        self.inspector.model_name, self.inspector.session = name, session
        self.inspector.inspect("", "")
        self.action_show_view("inspect-view")
        self.notify(f"Inspecting the Lab's {name}, at step {session.trainer.step:,}; 3 goes back to this app's model",
                    title="Lab")

    # --- completions: the pane does the work; the status bar and the log hear of it ------------------

    def _completion_running(self, active: bool) -> None:
        self.generating = active

    def on_completions_pane_failed(self, message: CompletionsPane.Failed) -> None:
        self._report(message.error, "Completion failed")

    # --- views, settings, help -------------------------------------------------------------

    def action_focus_prompt(self) -> None:
        self.query_one(TabbedContent).active = "train-view"
        self.completions.focus_prompt()

    def action_show_view(self, view: str) -> None:
        self.query_one(TabbedContent).active = view
        # Focus something in the new view: a focused widget left in the hidden one would switch back to it.
        focused = {"log-view": self.event_log, "inspect-view": self.inspector, "samples-view": self.samples,
                   "lab-view": self.lab.table}
        focused.get(view, self.completions.list).focus()

    def action_inspect(self) -> None:
        """The Inspect view, on the prompt being written, or else on the selected (or last) completion."""
        self._inspect_own_model()
        prompt = self.completions.current_prompt()
        completion = self.completions.selected_completion
        if prompt or completion is None:
            self.inspector.inspect(prompt, "")
        else:
            self.inspector.inspect(completion.prompt, completion.text)
        self.action_show_view("inspect-view")

    def on_completions_pane_inspect_requested(self, message: CompletionsPane.InspectRequested) -> None:
        settings = message.settings
        if settings is not None and message.seed is not None:
            settings = replace(settings, seed=message.seed)  # the draws that made this completion
        self._inspect_own_model()
        self.inspector.inspect(message.prompt, message.text, settings)
        self.action_show_view("inspect-view")

    def _inspect_own_model(self) -> None:
        """Back from a Lab variant to the app's own model."""
        if self.inspector.model_name:
            self.inspector.model_name, self.inspector.session = "", self.session

    def action_settings(self) -> None:
        assert self.sampling is not None and self.settings_path is not None
        screen = SettingsScreen(self.sampling, str(self.settings_path), self.theme, sorted(self.available_themes))
        self.push_screen(screen, self._settings_closed)

    def _settings_closed(self, result: SettingsResult | None) -> None:
        if result is not None:
            self.sampling = result.sampling
            self._write_settings(result.sampling, with_theme(self.settings_document, result.theme))

    @work(thread=True, exit_on_error=False, group="settings", name="settings")
    def _write_settings(self, sampling: SamplingSettings, document: dict) -> dict:
        from minigpt.plumbing.settings import save_settings

        assert self.settings_path is not None
        save_settings(self.settings_path, sampling, document)
        return document

    def _settings_written(self, worker: Worker) -> None:
        if worker.state == WorkerState.SUCCESS:
            self.settings_document = worker.result
            self.notify(f"Saved to {self.settings_path}", title="Settings")
        else:
            self._report(worker.error, "Settings not saved (they apply until you quit)")

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        keys = [(self._key_display(b), b.tooltip or b.description, b.id) for _, b in self.all_bindings()]
        self.push_screen(HelpScreen(keys, str(self.settings_path or "minigpt.toml")))

    def _key_display(self, binding: Binding) -> str:
        """How the keys of binding look, after the user's keymap: e.g. "? / f1"."""
        keys = self.keymap.get(binding.id, binding.key).split(",")
        return " / ".join(self.get_key_display(replace(binding, key=key.strip())) for key in keys)

    def all_bindings(self) -> list[tuple[DOMNode, Binding]]:
        """Every binding of the app and its views, with the node whose action it runs (once per id:
        the completion list shows some of the pane's)."""
        nodes: list[DOMNode] = [self, self.query_one(TrainView), self.completions, self.completions.list,
                                self.inspector, self.samples, self.lab]
        found: dict[str | None, tuple[DOMNode, Binding]] = {}
        for node in nodes:
            for binding in node.BINDINGS:
                if isinstance(binding, Binding) and binding.id not in found:
                    found[binding.id] = (node, binding)
        return list(found.values())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the app and its views that can run now, and Textual's own (theme, keys...)."""
        for node, binding in self.all_bindings():
            action = binding.action.partition("(")[0]
            if binding.id != "quit" and node.check_action(action, ()):
                yield SystemCommand(binding.tooltip or binding.description,
                                    f"key: {self._key_display(binding)}  ·  id: {binding.id}",
                                    lambda a=binding.action, n=node: self.run_action(a, n))
        yield from super().get_system_commands(screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which keys (and palette commands) apply now: False hides, None greys out."""
        state, loaded = self.run_state, self.session is not None
        match action:
            case "start_training":
                return True if state == "idle" else None if state in ("loading", "saving") else False
            case "pause_training":
                return state == "training"
            case "resume_training":
                return state == "paused"
            case "stop_training":
                return state in ("training", "paused")
            case "save":
                return True if state in ("idle", "training", "paused") else None if loaded else False
            case "settings":
                return True if self.sampling is not None else None
        return True

    # --- workers, errors, quitting -----------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # event.state, not worker.state: by now the worker may have moved on, and
        # every state it passed through has its own message.
        worker, state = event.worker, event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if worker.group == "train":
            self._training_ended(worker)
        elif worker.group == "save":
            self.run_state = "idle"
        elif worker.group == "settings":
            self._settings_written(worker)
        elif worker.group == "variant":
            self._variant_opened(worker)
        elif state == WorkerState.ERROR and worker.group == "load":
            self.run_state = "error"
            self.load_message = f"could not load: {one_line(str(worker.error), 200)}"
            self._report(worker.error, "Could not load")

    def _report(self, error: BaseException | None, title: str) -> None:
        """An error from a worker, as a notification and a log line: never a traceback."""
        expected = isinstance(error, MiniGPTError)
        text = str(error) if expected else f"{type(error).__name__}: {error}"
        self.notify(text, title=title, severity="error", timeout=20)
        self.log_line(f"{title}: {text}")

    async def action_quit(self) -> None:
        """Quit; while training, stop it and save first (the app exits when the run has ended)."""
        if self._run is None or self._quitting:
            self.exit()
            return
        self._quitting = True
        self._run.stop()
        self.run_state = "stopping"
        self.notify("Saving a checkpoint before quitting… (ctrl+q again quits at once)", title="Quitting")

    def _finish_quitting(self) -> None:
        if self._unsaved_error is None:
            self.exit()
            return
        self._quitting = False
        self.notify(f"{self._unsaved_error}. Press ctrl+q again to quit without saving.",
                    title="Checkpoint not saved", severity="error", timeout=30)


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(argv)
    except MiniGPTError as e:
        print(f"minigpt-tui: error: {e}", file=sys.stderr)
        return 2
    MiniGPTApp(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
