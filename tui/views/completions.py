"""The completions pane: completions and training samples above, the prompt
below. Enter completes the prompt in a thread worker, from a snapshot of
the weights, while training goes on; Escape cancels; y copies the last one.

The app binds `session` and `sampling` (attributes down) and hands over each
evaluation's sample; it watches `generating`, and the pane posts Failed when
a completion breaks (messages up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker

from minigpt.tokenizer import UnknownCharactersError
from tui.messages import CompletionEnded, CompletionText
from tui.text import format_loss
from tui.widgets.completion_list import Completion, CompletionList

if TYPE_CHECKING:  # these import PyTorch, which the app loads after its first paint
    from minigpt.session import TrainingSession
    from minigpt.settings import SamplingSettings
    from minigpt.trainer import EvalEvent


class CompletionsPane(Vertical):
    BINDINGS = [
        Binding("escape", "cancel_completion", "Cancel", id="cancel", tooltip="Cancel the completion"),
        Binding("escape", "leave_prompt", "Leave prompt", id="leave-prompt", show=False,
                tooltip="Leave the prompt, so that keys are commands again"),
        Binding("y", "copy_completion", "Copy", id="copy", show=False,
                tooltip="Copy the last completion to the clipboard"),
    ]

    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)  # None until the settings file is read
    generating: reactive[bool] = reactive(False, bindings=True)  # a completion is streaming

    class Failed(Message):
        def __init__(self, error: BaseException | None) -> None:
            super().__init__()
            self.error = error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._completion: tuple[int, Completion] | None = None  # the streaming one and its tag
        self._next_tag = 0

    def compose(self) -> ComposeResult:
        yield CompletionList(id="completion-list")
        yield Input(placeholder="› prompt: press / to type, Enter to complete", id="prompt", compact=True,
                    select_on_focus=False)

    def on_mount(self) -> None:
        # Kept rather than queried: worker messages may still arrive while the app closes.
        self.list = self.query_one(CompletionList)
        self.list.border_title = "completions"

    def add_sample(self, event: EvalEvent) -> None:
        title = f"sample at step {event.step:,} · val loss {format_loss(event.val_loss)}"
        self.list.add_completion(Completion(title, text=event.sample, classes="-sample"))

    def current_prompt(self) -> str:
        return self.query_one("#prompt", Input).value

    def focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    # --- one completion at a time ----------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def complete_prompt(self, event: Input.Submitted) -> None:
        if self.session is None or self.sampling is None:
            self.notify("The model is still loading", severity="warning")
            return
        if unknown := self.session.trainer.tokenizer.unknown_characters(event.value):
            self.notify(str(UnknownCharactersError(unknown)), title="Cannot complete this prompt", severity="error")
            return
        self.action_cancel_completion()
        self._next_tag += 1
        title = f"completion at step {self.session.trainer.step:,}"
        completion = self.list.add_completion(Completion(title, prompt=event.value, classes="-prompt"))
        self.list.follow()
        self._completion = (self._next_tag, completion)
        self.generating = True
        self._generate(self._next_tag, event.value, self.sampling)
        event.input.clear()

    @work(thread=True, exclusive=True, exit_on_error=False, group="generate", name="generate")
    def _generate(self, tag: int, prompt: str, settings: SamplingSettings) -> None:
        from tui.generation import stream_completion

        assert self.session is not None
        stream_completion(self.session.trainer, prompt, settings, tag, self.post_message, get_current_worker())

    def _current(self, tag: int) -> Completion | None:
        """The completion for tag, or None when tag is stale (a cancelled one)."""
        return self._completion[1] if self._completion and self._completion[0] == tag else None

    def on_completion_text(self, message: CompletionText) -> None:
        if completion := self._current(message.tag):
            completion.append(message.text)

    def on_completion_ended(self, message: CompletionEnded) -> None:
        if self._current(message.tag):
            rate = message.tokens / message.seconds if message.seconds else 0.0
            self._end_completion(f"{message.tokens} tokens, {rate:.0f} tok/s")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()  # the pane's own workers: the app need not hear of them
        if event.state == WorkerState.ERROR:
            self._end_completion("failed")
            self.post_message(self.Failed(event.worker.error))

    def _end_completion(self, note: str) -> None:
        if self._completion:
            self._completion[1].finish(note)
        self._completion = None
        self.generating = False

    # --- actions ---------------------------------------------------------------------------

    def action_cancel_completion(self) -> None:
        if self._completion:
            self.workers.cancel_group(self, "generate")
            self._end_completion("cancelled")

    def action_leave_prompt(self) -> None:
        self.list.focus()

    def action_copy_completion(self) -> None:
        completion = self.list.last_completion
        if completion is None:
            self.notify("Nothing to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(completion.prompt + completion.text)
        self.notify(f"Copied {len(completion.prompt + completion.text):,} characters "
                    "(if your terminal allows apps to set the clipboard)")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        match action:
            case "cancel_completion":
                return self._completion is not None
            case "leave_prompt":
                return self._completion is None and self.screen.focused is self.query_one("#prompt")
        return True
