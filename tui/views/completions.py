"""The completions pane: completions and training samples above, the prompt
below. Enter completes the prompt in a thread worker, from a snapshot of
the weights, while training goes on; Escape cancels. On a completion (the
one selected in the list, else the newest): c continues it, r makes it
again with a new seed, y copies it, i asks to inspect it; e exports them
all to Markdown.

Every completion that ends (or is cancelled) is appended to the completions
file beside the checkpoint (minigpt.plumbing.completions), and every prompt sent to
the project's prompt history (minigpt.plumbing.history). Both are read after the
first paint, in a worker, from the end of the file: the newest completions
show again, and Up in the prompt walks the history.

The app binds `session` and `sampling` (attributes down), hands over each
evaluation's sample and, once, the files (open_files); it watches
`generating`, and the pane posts Failed when a completion breaks and
InspectRequested for the inspect action (messages up)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.worker import Worker, WorkerState, get_current_worker

from minigpt.plumbing.completions import (
    CompletionsFileError,
    StoredCompletion,
    append_completion,
    completions_path,
    export_markdown,
    export_path,
    load_recent,
    new_completion,
)
from minigpt.plumbing.corpus import default_prompt
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.history import PromptHistory, load_history
from minigpt.plumbing.jsonlines import JsonLinesError
from minigpt.plumbing.terminal import unescape
from minigpt.tokenizer import UnknownCharactersError
from tui.clipboard import copy_out, copy_path
from tui.messages import CompletionEnded, CompletionText
from tui.text import format_loss
from tui.widgets.completion_list import COMPLETION_ACTIONS, Completion, CompletionList
from tui.widgets.prompt import PromptInput

if TYPE_CHECKING:  # these import PyTorch, which the app loads after its first paint
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings
    from minigpt.trainer import EvalEvent

EVERY_COMPLETION = 10**9  # for the export: all that the file holds
EARLIER_SHOWN = 20  # completions from earlier launches shown at start: Textual mounts one in about 20 ms


@dataclass
class _Streaming:
    """The completion being sampled: what it will be stored with."""

    tag: int
    widget: Completion
    prompt: str
    settings: SamplingSettings  # seeded
    step: int
    continues: str | None
    pieces: list[str] = field(default_factory=list)  # the text as sampled (the widget shows it made printable)


class EarlierLoaded(Message, bubble=False):
    def __init__(self, completions: list[StoredCompletion], history: PromptHistory, problems: list[str]) -> None:
        super().__init__()
        self.completions = completions
        self.history = history
        self.problems = problems


class CompletionsPane(Vertical):
    BINDINGS = [
        Binding("escape", "cancel_completion", "Cancel", id="cancel", tooltip="Cancel the completion"),
        Binding("escape", "leave_prompt", "Leave prompt", id="leave-prompt", show=False,
                tooltip="Leave the prompt, so that keys are commands again"),
        # Hidden here: the list shows them while a completion is selected.
        *(replace(binding, show=False) for binding in COMPLETION_ACTIONS),
        Binding("e", "export_completions", "Export", id="export", show=False,
                tooltip="Export every completion of this checkpoint to Markdown"),
    ]

    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)  # None until the settings file is read
    generating: reactive[bool] = reactive(False, bindings=True)  # a completion is streaming

    class Failed(Message):
        def __init__(self, error: BaseException | None) -> None:
            super().__init__()
            self.error = error

    class InspectRequested(Message):
        """The user asked to inspect a completion (settings and seed are None for a training sample)."""

        def __init__(self, prompt: str, text: str, settings: SamplingSettings | None, seed: int | None) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text
            self.settings = settings
            self.seed = seed

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._streaming: _Streaming | None = None
        self._next_tag = 0
        self._checkpoint = Path()  # as the user wrote it, for the records
        # Absolute: files go where the app started, whatever the working directory later.
        self._file: Path | None = None  # the completions file
        self._copy_file = Path()  # the copy fallback
        self._export_file = Path()
        self._history: PromptHistory | None = None

    def compose(self) -> ComposeResult:
        yield CompletionList(id="completion-list")
        yield PromptInput(placeholder=placeholder(None), id="prompt")

    def on_mount(self) -> None:
        # Kept rather than queried: worker messages may still arrive while the app closes.
        self.list = self.query_one(CompletionList)
        self.prompt = self.query_one(PromptInput)
        self.list.border_title = "completions"

    def open_files(self, checkpoint: Path, history: Path) -> None:
        """Read the checkpoint's completions and the prompt history, in a worker, and keep adding to them."""
        self._checkpoint = checkpoint
        self._file = completions_path(checkpoint).absolute()
        self._copy_file = copy_path(checkpoint)
        self._export_file = export_path(checkpoint).absolute()
        self._load_earlier(self._file, history.absolute())

    @work(thread=True, exit_on_error=False, group="files", name="load completions")
    def _load_earlier(self, file: Path, history_file: Path) -> None:
        loaded, history = load_recent(file, EARLIER_SHOWN), load_history(history_file)
        problems = [p for p in (loaded.problem, history.problem) if p]
        self.post_message(EarlierLoaded(loaded.completions, history, problems))

    def on_earlier_loaded(self, message: EarlierLoaded) -> None:
        self._history = message.history
        self.prompt.past_prompts = message.history.prompts
        self.list.add_earlier([_earlier_widget(c) for c in message.completions])
        for problem in message.problems:
            self.notify(problem, title="File problem", severity="warning", timeout=15)

    def add_sample(self, event: EvalEvent) -> None:
        title = f"sample at step {event.step:,} · val loss {format_loss(event.val_loss)}"
        self.list.add_completion(Completion(title, text=event.sample, classes="-sample"))

    def focus_prompt(self) -> None:
        self.prompt.focus()

    def current_prompt(self) -> str:
        """The prompt as it would be completed: a typed \\n is a newline, as on the command line."""
        return unescape(self.prompt.text)

    @property
    def selected_completion(self) -> Completion | None:
        """The completion the actions act on: the selected one, else the newest."""
        return self.list.target

    # --- one completion at a time ----------------------------------------------------------

    @on(PromptInput.Submitted, "#prompt")
    def complete_prompt(self, event: PromptInput.Submitted) -> None:
        prompt = self.current_prompt() or (default_prompt(self.session.corpus) if self.session else "")
        if self._start(prompt, "completion"):
            self._remember(event.text)
            self.prompt.clear()

    @on(PromptInput.LeftWithKey)
    def leave_with_key(self, event: PromptInput.LeftWithKey) -> None:
        """Escape, then a key, typed at once: stop a completion streaming (as Escape would),
        leave the prompt, and let the key act as it does outside it (e.g. 4 shows view 4)."""
        self.action_cancel_completion()
        self.screen.set_focus(self.list)  # at once: the key must not reach the prompt
        self.app.call_later(self.app.simulate_key, event.key)  # sent by the app: a message never returns to its sender

    def watch_session(self) -> None:
        self.query_one(PromptInput).placeholder = placeholder(self.session)

    def _start(self, prompt: str, kind: str, settings: SamplingSettings | None = None,
               continues: str | None = None) -> bool:
        """Start completing prompt (with settings, else the current ones); False when it cannot be."""
        if self.session is None or self.sampling is None:
            self.notify("The model is still loading", severity="warning")
            return False
        if unknown := self.session.trainer.tokenizer.unknown_characters(prompt):
            self.notify(str(UnknownCharactersError(unknown)), title="Cannot complete this prompt", severity="error")
            return False
        self.action_cancel_completion()
        self._next_tag += 1
        step = self.session.trainer.step
        widget = self.list.add_completion(Completion(f"{kind} at step {step:,}", prompt=prompt, classes="-prompt"))
        self.list.select(None)
        self.list.follow()
        settings = (settings or self.sampling).seeded()
        self._streaming = _Streaming(self._next_tag, widget, prompt, settings, step, continues)
        self.generating = True
        self._generate(self._next_tag, prompt, settings)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="generate", name="generate")
    def _generate(self, tag: int, prompt: str, settings: SamplingSettings) -> None:
        from tui.generation import stream_completion

        assert self.session is not None
        stream_completion(self.session.trainer, prompt, settings, tag, self.post_message, get_current_worker())

    def _current(self, tag: int) -> _Streaming | None:
        """The streaming completion for tag, or None when tag is stale (a cancelled one)."""
        return self._streaming if self._streaming and self._streaming.tag == tag else None

    def on_completion_text(self, message: CompletionText) -> None:
        if streaming := self._current(message.tag):
            streaming.pieces.append(message.text)
            streaming.widget.append(message.text)

    def on_completion_ended(self, message: CompletionEnded) -> None:
        if self._current(message.tag):
            rate = message.tokens / message.seconds if message.seconds else 0.0
            self._keep(self._end_completion(f"{message.tokens} tokens, {rate:.0f} tok/s", "done"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()  # the pane's own workers: the app need not hear of them
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "generate":
            self._end_completion("failed", None)
            self.post_message(self.Failed(event.worker.error))
        else:  # a file could not be read or written: the completions go on
            self.notify(str(event.worker.error), title="File problem", severity="warning", timeout=15)

    def _end_completion(self, note: str, ended: str | None) -> StoredCompletion | None:
        """End the streaming completion; keep it in the file unless it failed (ended None).
        Returns the record, if there is one to keep."""
        streaming, self._streaming = self._streaming, None
        self.generating = False
        if streaming is None:
            return None
        streaming.widget.finish(note)
        if not (ended and self._file):
            return None
        record = new_completion(streaming.prompt, "".join(streaming.pieces), streaming.step, streaming.settings,
                                self._checkpoint, ended, streaming.continues)
        streaming.widget.record = record
        return record

    def _keep(self, record: StoredCompletion | None) -> None:
        if record is not None and self._file:
            self._append(self._file, record)

    @work(thread=True, exit_on_error=False, group="files", name="append completion")
    def _append(self, file: Path, record: StoredCompletion) -> None:
        append_completion(file, record)

    def keep_streaming(self) -> str | None:
        """The app is quitting: cancel the completion streaming, if one is, and keep it in the
        file as Escape does, now (a worker would not run once the app has gone). Returns
        why it could not be kept, or None."""
        if self._streaming is None:
            return None
        self.workers.cancel_group(self, "generate")
        record = self._end_completion("cancelled", "cancelled")
        try:
            if record is not None and self._file:
                append_completion(self._file, record)
        except CompletionsFileError as e:
            return str(e)
        return None

    def _remember(self, prompt: str) -> None:
        if self._history is not None:
            self._add_to_history(self._history, prompt)

    @work(thread=True, exit_on_error=False, group="files", name="add to history")
    def _add_to_history(self, history: PromptHistory, prompt: str) -> None:
        try:
            history.add(prompt)
        except JsonLinesError as e:
            raise MiniGPTError(f"{e}; the prompt is not kept in the history") from None
        self.prompt.past_prompts = history.prompts  # a new list: the UI thread never sees one half-changed

    # --- actions ---------------------------------------------------------------------------

    def action_cancel_completion(self) -> None:
        if self._streaming:
            self.workers.cancel_group(self, "generate")
            self._keep(self._end_completion("cancelled", "cancelled"))

    def action_leave_prompt(self) -> None:
        self.list.focus()

    def action_continue_completion(self) -> None:
        target = self.list.target
        assert target is not None  # check_action enables the action only then
        record = target.record  # None for a training sample, or one still streaming
        prompt = record.prompt + record.text if record else target.prompt + target.text
        self._start(prompt, "continuation", continues=record.id if record else None)

    def action_regenerate_completion(self) -> None:
        record = self.list.target.record if self.list.target else None
        assert record is not None and self.sampling is not None
        self._start(record.prompt, "completion", replace(self.sampling, seed=-1))

    def action_copy_completion(self) -> None:
        target = self.list.target
        assert target is not None
        copy_out(self, target.prompt + target.text, self._copy_file)

    def action_inspect_completion(self) -> None:
        target = self.list.target
        assert target is not None
        record = target.record
        self.post_message(self.InspectRequested(record.prompt if record else target.prompt,
                                                record.text if record else target.text,
                                                record.settings if record else None,
                                                record.seed if record else None))

    def action_export_completions(self) -> None:
        assert self._file is not None
        self._export(self._file, self._export_file)

    @work(thread=True, exit_on_error=False, group="files", name="export")
    def _export(self, file: Path, path: Path) -> None:
        loaded = load_recent(file, EVERY_COMPLETION)
        if not loaded.completions:
            self.notify(f"No completions to export yet ({file} has none)", severity="warning")
            return
        count = export_markdown(loaded.completions, path)
        self.notify(f"Exported {count:,} completions to {path}", title="Export")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        target = self.list.target if self.is_mounted else None
        match action:
            case "cancel_completion":
                return self._streaming is not None
            case "leave_prompt":
                return self._streaming is None and self.screen.focused is self.prompt
            case "continue_completion" | "copy_completion" | "inspect_completion":
                return target is not None
            case "regenerate_completion":
                return target is not None and target.record is not None and self.sampling is not None
            case "export_completions":
                return self._file is not None
        return True


def placeholder(session: TrainingSession | None) -> str:
    """The empty prompt's text: how to use it, and where an empty one starts, if not at a newline
    (the Footer shows the prompt's other keys while it has the focus)."""
    start = default_prompt(session.corpus) if session else ""
    return f"› prompt: / to type, Enter completes{f' (empty: {start!r})' if start else ''}"


def _earlier_widget(completion: StoredCompletion) -> Completion:
    """A completion from the file, as the list shows it."""
    made = completion.time.replace("T", " ")[:16] + " UTC"
    kind = "continuation" if completion.continues else "completion"
    ended = " · cancelled" if completion.ended == "cancelled" else ""
    widget = Completion(f"{kind} at step {completion.step:,} · {made}{ended}",
                        prompt=completion.prompt, text=completion.text, classes="-prompt -done -earlier")
    widget.record = completion
    return widget
