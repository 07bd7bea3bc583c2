"""minigpt-tui: train a MiniGPT model live and complete prompts in a terminal app.

The app only presents what the library emits. It composes the views (each
a module of tui.views, with its own bindings and handlers) under a bar that
names them with their keys, the status bar and the footer, and routes:
worker messages go to the view that shows them, and app-wide state goes down
to the widgets as attributes. Thread workers do the work: the loader (imports
PyTorch after the first paint, reads the settings, the corpus and the
checkpoint) here, the training run and saves in tui.run_control, completions
in the completions pane. They post batched messages (tui.messages). The keys
of every view, the help screen and the palette are tui.keys'.

Nothing imported here at module level may import PyTorch: importing it
takes seconds, and the first screen must appear at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import Notify, SeverityLevel
from textual.reactive import reactive, var
from textual.widgets import ContentSwitcher
from textual.worker import Worker, WorkerState

from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_HISTORY
from minigpt.plumbing.runlog import tokens_seen
from minigpt.plumbing.runs import run_of_checkpoint
from tui.keys import AppKeys, read_escape_digits_as_alt
from tui.lab_control import LabControl
from tui.messages import LoadProgress, RunHistory, SessionReady, SettingsLoaded
from tui.narration import session_lines, uniform_loss
from tui.options import Options, parse_options
from tui.run_control import RunControl
from tui.settings_control import SettingsControl
from tui.text import one_line
from tui.views.chat import ChatView
from tui.views.completions import CompletionsPane
from tui.views.inspect import InspectView
from tui.views.lab import LabView
from tui.views.log import LogView
from tui.views.samples import SamplesView
from tui.views.train import TrainView
from tui.widgets.footer import AppFooter
from tui.widgets.loss_chart import LossChart, RunScale
from tui.widgets.status_bar import Progress, RunInfo, StatusBar
from tui.widgets.view_bar import ViewBar, ViewTab

if TYPE_CHECKING:
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings
    from tui.stepped_run import SteppedRun

MAX_TOASTS = 3  # more would cover the status bar and the prompt; every notification is in the Log too
# The views, in the view bar's order: (binding id, view id, title).
VIEWS = (("view-train", "train-view", "Train"), ("view-log", "log-view", "Log"),
         ("view-inspect", "inspect-view", "Inspect"), ("view-samples", "samples-view", "Samples"),
         ("view-lab", "lab-view", "Lab"), ("chat", "chat-view", "Chat"))


class MiniGPTApp(RunControl, LabControl, SettingsControl, AppKeys):
    TITLE = "MiniGPT"
    HELP_GROUPS = {"MiniGPTApp": "Everywhere", "TrainView": "Chart (view 1)", "CompletionsPane": "Completions (view 1)",
                   "CompletionList": "Completions (view 1)", "PromptInput": "Prompt (/ to write one)",
                   "InspectView": "Inspect (view 3)", "SamplesView": "Samples (view 4)",
                   "LabView": "Lab (view 5)", "ChatView": "Chat (m)"}
    CSS_PATH = ["app.tcss", "screens.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        # One key, three actions: check_action enables the one that fits the state.
        Binding("t", "start_training", "Train", id="train", tooltip="Start training"),
        Binding("t", "pause_training", "Pause", id="pause", tooltip="Pause training"),
        Binding("t", "resume_training", "Resume", id="resume", tooltip="Resume training"),
        Binding("t", "finished_hint", "Train", id="train-finished", show=False,
                tooltip="Say how a finished run trains further"),
        Binding("plus", "add_time", "5 more min", id="add-time", key_display="+",
                tooltip="Train 5 more minutes (a finished run goes on)"),
        Binding("x", "stop_training", "Stop", id="stop", tooltip="Stop training and save a checkpoint"),
        Binding("s", "save", "Save", id="save", tooltip="Save a checkpoint now"),
        # Hidden from the Footer: the prompt's own line says it.
        Binding("slash", "focus_prompt", "Prompt", id="prompt", show=False, tooltip="Write a prompt"),
        Binding("comma", "settings", "Settings", id="settings", tooltip="Edit the sampling settings"),
        # Hidden from the Footer: the view bar shows them.
        Binding("1", "show_view('train-view')", "Chart", id="view-train", show=False,
                tooltip="Show the loss chart and completions"),
        Binding("2", "show_view('log-view')", "Log", id="view-log", show=False, tooltip="Show the event log"),
        Binding("3", "inspect", "Inspect", id="view-inspect", show=False,
                tooltip="Inspect the model on the prompt, or else the last completion"),
        Binding("4", "show_view('samples-view')", "Samples", id="view-samples", show=False,
                tooltip="Show the samples of every evaluation, two side by side"),
        # The Lab and the chat are in the Footer too: they are what a learner comes back for.
        Binding("5", "show_view('lab-view')", "Lab", id="view-lab",
                tooltip="The Lab: experiments that answer a question with measurements"),
        Binding("m", "toggle_chat", "Chat", id="chat",
                tooltip="Talk with the model as a character of its text (m again goes back)"),
        # Hidden from the Footer: the view bar ends with it.
        Binding("question_mark,f1", "help", "Help", id="help", show=False, tooltip="Show help and every key"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="Quit (saving first while training)"),
    ]

    # State, shown by the status bar through data binding.
    run_state: reactive[str] = reactive("loading", bindings=True)  # one of status_bar.STATES
    current_view: reactive[str] = reactive("train-view")
    generating: var[bool] = var(False)  # the completions pane is streaming (watched)
    load_message: var[str] = var("")
    progress: var[Progress] = var(Progress)
    run_info: var[RunInfo | None] = var(None)
    # What the views work on, passed down to them through data binding.
    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)  # None until the settings file is read

    chart: LossChart
    completions: CompletionsPane
    chat: ChatView
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
        self._run: SteppedRun | None = None  # a training session or a Lab experiment
        self._quitting = False
        self._unsaved_error: str | None = None  # the last save failed with this message
        read_escape_digits_as_alt()

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ViewBar(id="view-bar")
        with ContentSwitcher(initial="train-view", id="views"):
            yield TrainView(id="train-view").data_bind(MiniGPTApp.session, MiniGPTApp.sampling)
            yield LogView(id="log-view")
            yield InspectView(id="inspect-view").data_bind(MiniGPTApp.session, MiniGPTApp.sampling,
                                                           MiniGPTApp.run_state)
            yield SamplesView(id="samples-view")
            yield LabView(id="lab-view")
            yield ChatView(self.options.checkpoint, id="chat-view").data_bind(MiniGPTApp.session, MiniGPTApp.sampling)
        yield StatusBar(id="status").data_bind(state=MiniGPTApp.run_state, generating=MiniGPTApp.generating,
                                               message=MiniGPTApp.load_message, progress=MiniGPTApp.progress,
                                               info=MiniGPTApp.run_info)
        yield AppFooter(compact=True, show_command_palette=False)  # the view bar shows its key

    def on_mount(self) -> None:
        # Kept rather than queried: worker messages may still arrive while the app closes.
        self.chart = self.query_one(LossChart)
        self.completions = self.query_one(CompletionsPane)
        self.event_log = self.query_one(LogView)
        self.inspector = self.query_one(InspectView)
        self.samples = self.query_one(SamplesView)
        self.chat = self.query_one(ChatView)
        self.lab = self.query_one(LabView)
        self.lab.folder = self.options.checkpoint.parent / "lab"
        self.completions.list.focus()
        self.watch(self.completions, "generating", self._completion_running, init=False)
        self.watch(self.chat, "generating", self._completion_running, init=False)
        self._show_view_keys()
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

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text: most carry a file's name, a setting or the
        model's text, whose brackets ([sampling]) Textual would read as markup and drop."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _on_notify(self, event: Notify) -> None:
        """Show the newest MAX_TOASTS notifications, and keep every one in the Log."""
        super()._on_notify(event)
        notification = event.notification
        self.log_line(f"{notification.title}: {notification.message}" if notification.title else notification.message)
        for old in list(self._notifications)[:-MAX_TOASTS]:
            self._unnotify(old)

    # --- start-up ---------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="load", name="load")
    def _load(self) -> None:
        self.post_message(LoadProgress("importing PyTorch…"))
        from minigpt.plumbing.session import open_session
        from minigpt.plumbing.settings import load_settings, settings_path

        self.post_message(SettingsLoaded(load_settings(settings_path(self.options.settings))))
        options = self.options
        session = open_session(options.config, options.explicit_keys, options.data, options.checkpoint,
                               options.start,
                               lambda text: self.post_message(LoadProgress(text)), retime=options.retime)
        if session.resumed:
            self.post_message(RunHistory(*run_of_checkpoint(session.checkpoint)))
        self.post_message(SessionReady(session))

    def on_load_progress(self, message: LoadProgress) -> None:
        self.load_message = message.text

    def on_run_history(self, message: RunHistory) -> None:
        if message.run:
            train, val = message.run.chart_points()
            self.chart.add_train_losses(train)
            for point in val:
                self.chart.add_val_loss(*point)
            self.samples.add_samples(message.run.samples())
            if val:  # where the run left off, and its whole-split score if it reached its end
                self.progress = replace(self.progress, val_loss=val[-1][2], final_val_loss=message.run.final_val_loss)
        for warning in message.warnings:
            self.notify(warning, title="Metrics log", severity="warning", timeout=10)

    def on_session_ready(self, message: SessionReady) -> None:
        self.session = session = message.session
        trainer = session.trainer
        self.chart.scale = RunScale(tokens_seen(trainer, step=1), trainer.splits.train_chars_per_token,
                                    trainer.splits.val_chars_per_token, uniform_loss(trainer.tokenizer.vocab_size))
        if session.resumed:
            saved = f"loaded, step {trainer.step:,}"
            self.notify(f"Loaded {session.checkpoint} at step {trainer.step:,}", title="Checkpoint")
        else:
            saved = "new"
        c = trainer.model_config
        self.run_info = RunInfo(trainer.device.type, trainer.num_parameters, str(self.options.checkpoint), saved,
                                session.corpus.name, f"d_model {c.d_model} x {c.n_layers} layers")
        for line in session_lines(session):
            self.log_line(line)
        if session.shape_choice:
            self.notify(session.shape_choice, title="Model chosen for the time budget", timeout=10)
        best = trainer.best_val_loss if session.resumed and trainer.best_val_loss < float("inf") else None
        self.progress = Progress(trainer.step, trainer.config.max_iters, val_loss=self.progress.val_loss or best,
                                 best_val_loss=best, time_budget=trainer.config.time_budget,
                                 time_used=trainer.time_spent, final_val_loss=self.progress.final_val_loss)
        self.load_message = ""
        for note in session.notes:
            self.notify(note, severity="warning", timeout=10)
        self.run_state = "finished" if session.finished else "idle"

    # --- completions: the pane does the work; the status bar and the log hear of it ------------------

    def _completion_running(self) -> None:
        self.generating = self.completions.generating or self.chat.generating

    def on_completions_pane_failed(self, message: CompletionsPane.Failed) -> None:
        self._report(message.error, "Completion failed")

    # --- views, settings, help -------------------------------------------------------------

    def action_focus_prompt(self) -> None:
        self.current_view = "train-view"
        self.completions.focus_prompt()

    def action_show_view(self, view: str) -> None:
        self.current_view = view
        # Focus something in the new view: its keys then work, and none of the hidden one's.
        if view == "chat-view":
            self.chat.open()  # it focuses its input
            return
        focused = {"log-view": self.event_log, "inspect-view": self.inspector, "samples-view": self.samples,
                   "lab-view": self.lab.table}
        focused.get(view, self.completions.list).focus()

    def action_toggle_chat(self) -> None:
        self.action_show_view("train-view" if self.current_view == "chat-view" else "chat-view")

    def on_chat_view_inspect_requested(self, message: ChatView.InspectRequested) -> None:
        self.inspect_own_model()
        self.inspector.inspect(message.prompt, message.text, message.settings)
        self.action_show_view("inspect-view")

    def watch_current_view(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        self.query_one(ViewBar).current = view
        self.refresh_bindings()

    def on_view_bar_selected(self, message: ViewBar.Selected) -> None:
        self.action_show_view(message.view)

    def _show_view_keys(self) -> None:
        """The view bar names each view with its key, and the keys for help and the palette, after the
        user's keymap."""
        bar = self.query_one(ViewBar)
        bar.tabs = tuple(ViewTab(view, title, self.key_display(self.get_binding(binding_id)))
                         for binding_id, view, title in VIEWS)
        palette = self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, ""))
        bar.hints = f"{self.key_display(self.get_binding('help')).split(' / ')[0]} keys  {palette} commands"

    def action_inspect(self) -> None:
        """The Inspect view, on the prompt being written, or else on the selected (or last) completion."""
        self.inspect_own_model()
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
        self.inspect_own_model()
        self.inspector.inspect(message.prompt, message.text, settings)
        self.action_show_view("inspect-view")

    def binding_nodes(self) -> list[DOMNode]:
        return [self, self.query_one(TrainView), self.completions, self.completions.list, self.completions.prompt,
                self.inspector, self.samples, self.lab, self.chat]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which keys (and palette commands) apply now: False hides, None greys out."""
        state, loaded = self.run_state, self.session is not None
        match action:
            case "start_training":
                return True if state == "idle" else None if state in ("loading", "saving") else False
            case "finished_hint":
                return state == "finished"
            case "add_time":
                return state == "finished"
            case "pause_training":
                return state == "training"
            case "resume_training":
                return state == "paused"
            case "stop_training":
                return state in ("training", "paused")
            case "save":
                return True if state in ("idle", "training", "paused", "finished") else None if loaded else False
            case "settings":
                return True if self.sampling is not None else None
            case "show_view":  # the view shown needs no key in the Footer (at 80 columns the Lab's keys fill it)
                return parameters[0] != self.current_view
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
            self.run_state = "finished" if self.session and self.session.finished else "idle"
        elif worker.group == "settings":
            self.settings_written(worker)
        elif worker.group == "variant":
            self.variant_opened(worker)
        elif state == WorkerState.ERROR and worker.group == "load":
            self.run_state = "error"
            self.load_message = f"could not load: {one_line(str(worker.error), 200)}"
            self._report(worker.error, "Could not load")

    def _report(self, error: BaseException | None, title: str) -> None:
        """An error from a worker, as a notification and a log line: never a traceback."""
        expected = isinstance(error, MiniGPTError)
        text = str(error) if expected else f"{type(error).__name__}: {error}"
        self.notify(text, title=title, severity="error", timeout=20)

    async def action_quit(self) -> None:
        """Quit; while training, stop it and save first (the app exits when the run has ended).
        A completion streaming is kept as Escape keeps it, cancelled."""
        if problem := self.completions.keep_streaming():
            self.notify(f"{problem}. Press ctrl+q again to quit.", title="Completion not kept", severity="error")
            return
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
