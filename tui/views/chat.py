"""The chat view (key m): talk with the model as a character of its text.

The lesson is the view: the model only completes a text. Each turn, the
conversation so far is laid out in the text's own format (minigpt.chat) and
ended with the model's tag; the model completes it and stops at the next
speaker. `i` shows the exact text it read in the Inspect view; a line marks
where its memory begins when whole turns no longer fit its context.

At the first opening a worker finds the speakers of the training text and
reads the settings' [chat] table and the newest conversation kept beside the
checkpoint (minigpt.plumbing.conversations), where every turn is appended.
`w` changes who is who; on the newest model turn c continues it and r makes it
again with a new seed; y copies a turn. The app binds `session` and
`sampling`, sets `settings`, and hears InspectRequested (messages up).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import Label, Static
from textual.worker import Worker, WorkerState, get_current_worker

from minigpt.chat import (
    NoTemplateError,
    Prompt,
    Speakers,
    Template,
    TokenCounter,
    Turn,
    first_window,
    lay_out,
    name_in,
    speakers_of,
)
from minigpt.plumbing.chat_settings import ChatSettings, read_chat_settings
from minigpt.plumbing.conversations import (
    Conversation,
    StoredTurn,
    append_turn,
    conversations_path,
    load_newest,
    model_turn,
    user_turn,
)
from minigpt.plumbing.terminal import unescape
from minigpt.tokenizer import UnknownCharactersError
from tui.clipboard import copy_out, copy_path
from tui.messages import CompletionEnded, CompletionText
from tui.widgets.chat_turn import TurnCard, TurnList, turn_card
from tui.widgets.completion_list import COMPLETION_ACTIONS
from tui.widgets.prompt import PromptInput

if TYPE_CHECKING:  # these import PyTorch, which the app loads after its first paint
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings

LESSON = "The lesson: a chat is a text the model completes · i shows the text it read"


@dataclass
class _Reply:
    """The model's turn being sampled: what it will be stored with."""

    tag: int
    card: TurnCard
    speaker: str  # the model's tag
    prompt: str  # the text the model reads
    settings: SamplingSettings  # seeded, with the template's stop strings
    step: int
    replaces: str | None = None
    continues: str | None = None
    pieces: list[str] = field(default_factory=list)


class Prepared(Message, bubble=False):
    def __init__(self, speakers: Speakers, chat: ChatSettings, conversation: Conversation, problems: list[str]):
        super().__init__()
        self.speakers, self.chat, self.conversation, self.problems = speakers, chat, conversation, problems


class ChatView(Vertical):
    BINDINGS = [
        Binding("escape", "cancel_reply", "Cancel", id="chat-cancel", tooltip="Stop the model's turn"),
        Binding("escape", "leave_input", "Leave", id="chat-leave", show=False,
                tooltip="Leave the chat input, so that keys are commands again"),
        Binding("slash", "write", "Write", id="chat-write", tooltip="Write your turn in the chat"),
        Binding("w", "pick_roles", "Who", id="chat-who", tooltip="Choose who you are and whom the model plays"),
        Binding("n", "new_conversation", "New", id="chat-new", tooltip="Start a new conversation"),
        # Hidden here: the list shows them while a turn is selected; they act on the newest otherwise.
        *(replace(binding, show=False) for binding in COMPLETION_ACTIONS),
    ]

    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)
    generating: reactive[bool] = reactive(False, bindings=True)  # the model's turn is streaming

    class InspectRequested(Message):
        """Show the text the model read for a turn (prompt) and what it wrote (text), under settings."""

        def __init__(self, prompt: str, text: str, settings: SamplingSettings | None) -> None:
            super().__init__()
            self.prompt, self.text, self.settings = prompt, text, settings

    def __init__(self, checkpoint: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._checkpoint = checkpoint  # as the user wrote it, for the records
        self._file = conversations_path(checkpoint).absolute()
        self._copy_file = copy_path(checkpoint)
        self.settings: dict[str, Any] | None = None  # the settings file as read (the app sets it)
        self.settings_file = "minigpt.toml"
        self._opened = self._preparing = False
        self._speakers: Speakers | None = None
        self._chat = ChatSettings()
        self.roles = ("", "")  # the names of the user and the model (a corpus template)
        self.template: Template | None = None
        self.conversation = Conversation()
        self._counter: TokenCounter | None = None
        self._reply: _Reply | None = None
        self._next_tag = 0

    def compose(self) -> ComposeResult:
        yield Label(LESSON, id="chat-lesson", markup=False)
        yield Label("", id="chat-roles", markup=False)
        yield Static("The model is still loading…", id="chat-message", markup=False)
        yield TurnList(id="chat-turns")
        yield PromptInput(placeholder="› your turn: Enter sends, ctrl+j new line", id="chat-input")

    def on_mount(self) -> None:
        self.list = self.query_one(TurnList)
        self.input = self.query_one(PromptInput)
        self.list.border_title = "conversation"
        self._show_state()

    # --- getting ready ---------------------------------------------------------------------

    def open(self) -> None:
        """The view is shown (by m, or its tab): find the speakers and read the conversation, once; focus
        the input."""
        self._opened = True
        self._prepare()
        (self.input if self.template else self.list).focus()

    def watch_session(self) -> None:
        if self._opened:
            self._prepare()

    def _prepare(self) -> None:
        if self._preparing or self.session is None or self.settings is None:
            return
        self._preparing = True
        self.query_one("#chat-message", Static).update("Finding the speakers of the text…")
        self._read(self.session, self.settings, self.settings_file)

    @work(thread=True, exit_on_error=False, group="chat-files", name="find speakers")
    def _read(self, session: TrainingSession, document: dict[str, Any], path: str) -> None:
        chat, problems = read_chat_settings(document, path)
        conversation, problem = load_newest(self._file)
        problems += [problem] if problem else []
        self.post_message(Prepared(speakers_of(session.corpus), chat, conversation, problems))

    def on_prepared(self, message: Prepared) -> None:
        assert self.session is not None
        self._speakers, self._chat = message.speakers, message.chat
        self._counter = TokenCounter(self.session.trainer.tokenizer)
        for problem in message.problems:
            self.notify(problem, title="Chat", severity="warning", timeout=15)
        self.conversation = message.conversation
        if self.conversation.roles:
            self.roles = self.conversation.roles
        elif message.speakers.style is not None:
            self.roles = message.speakers.default_roles()
        self._use_roles(*self.roles)
        self.list.add_earlier([turn_card(turn) for turn in self.turns])
        self._show_memory()
        if self.template and self.screen.focused in (None, self.list):  # not if the user has gone elsewhere
            self.input.focus()

    def _use_roles(self, user: str, model: str) -> None:
        """Chat as user with model, in the settings' template or else the text's; say what is wrong if neither."""
        assert self._speakers is not None and self.session is not None
        try:
            template = self._chat.template(self._speakers, user, model, self.session.corpus.name, self.settings_file)
        except NoTemplateError as e:
            self.template = None
            self.query_one("#chat-message", Static).update(str(e))
            self._show_state()
            return
        if unknown := self.session.trainer.tokenizer.unknown_characters(template.user + template.model):
            problem = f"{UnknownCharactersError(unknown)}: w chooses other names"
            self.query_one("#chat-message", Static).update(problem)
            self.notify(problem, title="Chat", severity="error")
            return  # the roles that worked stay
        self.template, self.roles = template, (user, model)
        self._show_state()

    def _show_state(self) -> None:
        ready = self.template is not None
        self.query_one("#chat-message").display = not ready
        self.list.display = self.input.display = ready
        roles = self.query_one("#chat-roles", Label)
        roles.display = ready
        if self.template is None:
            return
        you, it = name_in(self.template.user), name_in(self.template.model)
        roles.update(f"You: {you} · the model: {it} · w: who is who · n: new chat")
        source = "the [chat] table of the settings" if self._chat.fixed_roles else "the speakers of the text"
        self.list.border_subtitle = f"template: {source}"
        self.input.placeholder = f"› your turn as {you}: Enter sends, ctrl+j new line"

    # --- a turn ----------------------------------------------------------------------------

    @on(PromptInput.Submitted, "#chat-input")
    def send(self, event: PromptInput.Submitted) -> None:
        text = unescape(event.text)
        if not text.strip():
            return
        if self.template is None or self.session is None or self.sampling is None:
            self.notify("The chat is not ready yet", severity="warning")
            return
        if unknown := self.session.trainer.tokenizer.unknown_characters(text):
            self.notify(str(UnknownCharactersError(unknown)), title="Cannot send this turn", severity="error")
            return
        self.action_cancel_reply()
        self.input.clear()
        self.list.add_completion(turn_card(self._keep(user_turn(self.conversation.id, self.template.user, text))))
        prompt = self._laid_out(self.turns)
        self._show_memory(prompt)
        self._start(prompt.text, self.template.model)

    def _start(self, prompt: str, speaker: str, *, replaces: str | None = None, continues: str | None = None,
               card: TurnCard | None = None) -> None:
        """Sample the model's turn after prompt: in a new card at the end, or going on in card. A turn that
        replaces another is drawn with a new seed."""
        assert self.session is not None and self.sampling is not None and self.template is not None
        self._next_tag += 1
        step = self.session.trainer.step
        if card is None:
            card = self.list.add_completion(TurnCard(f"{name_in(speaker)} · step {step:,}", role="model"))
        self.list.select(None)
        self.list.follow()
        sampling = replace(self.sampling, seed=-1) if replaces else self.sampling
        settings = self.template.reply_settings(sampling).seeded()
        self._reply = _Reply(self._next_tag, card, speaker, prompt, settings, step, replaces, continues)
        self.generating = True
        self._generate(self._next_tag, prompt, settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-generate", name="chat reply")
    def _generate(self, tag: int, prompt: str, settings: SamplingSettings) -> None:
        from tui.generation import stream_completion

        assert self.session is not None
        stream_completion(self.session.trainer, prompt, settings, tag, self.post_message, get_current_worker())

    def on_completion_text(self, message: CompletionText) -> None:
        if self._reply and self._reply.tag == message.tag:
            self._reply.pieces.append(message.text)
            self._reply.card.append(message.text)

    def on_completion_ended(self, message: CompletionEnded) -> None:
        if self._reply and self._reply.tag == message.tag:
            rate = message.tokens / message.seconds if message.seconds else 0.0
            self._end_reply(f"{message.tokens} tokens, {rate:.0f} tok/s", "done")

    def _end_reply(self, note: str, ended: str | None) -> None:
        """End the model's turn; keep it unless it failed (ended None)."""
        reply, self._reply = self._reply, None
        self.generating = False
        if reply is None:
            return
        reply.card.finish(note)
        if ended is None:
            return
        reply.card.turn = self._keep(model_turn(self.conversation.id, reply.speaker, "".join(reply.pieces),
                                                reply.prompt, reply.step, reply.settings, self._checkpoint, ended,
                                                reply.replaces, reply.continues))

    @property
    def turns(self) -> list[StoredTurn]:
        return self.conversation.turns

    def _keep(self, turn: StoredTurn) -> StoredTurn:
        """Add turn to the conversation and append it to the file; return it as it stands (continued: whole)."""
        self._append(self._file, turn)
        return self.conversation.add(turn)

    @work(thread=True, exit_on_error=False, group="chat-files", name="append a turn")
    def _append(self, file: Path, turn: StoredTurn) -> None:
        append_turn(file, turn)

    def _laid_out(self, turns: list[StoredTurn]) -> Prompt:
        """turns as the model reads them for its next turn: those that fit, and its tag."""
        assert self.template is not None and self._counter is not None and self.session is not None
        context = self.session.trainer.model_config.block_size
        return lay_out([Turn(t.tag, t.text) for t in turns], self.template, context, self._counter)

    def _show_memory(self, prompt: Prompt | None = None) -> None:
        """Mark where the model's memory begins in prompt (by default, where it began for the model's last turn,
        or would begin for its next)."""
        if prompt is None:
            if self.template is None or self._counter is None or not self.turns:
                return
            prompt = self._laid_out(self.turns[:-1] if self.turns[-1].role == "model" else self.turns)
        assert self.session is not None
        self.list.show_memory(self.turns, prompt, self.session.trainer.model_config.block_size)

    # --- actions on a turn -----------------------------------------------------------------

    @property
    def target(self) -> TurnCard | None:
        """The turn the actions act on: the selected one, else the newest."""
        return self.list.target if self.is_mounted else None

    def _newest_model_turn(self) -> tuple[TurnCard, StoredTurn] | None:
        """The target, when it is the conversation's last turn, the model's, and has ended."""
        target = self.target
        if target is None or target.turn is None or not self.turns or target.turn.id != self.turns[-1].id:
            return None
        return (target, target.turn) if target.turn.role == "model" else None

    def action_continue_completion(self) -> None:
        newest = self._newest_model_turn()
        assert newest is not None and self.template is not None
        card, turn = newest
        self.action_cancel_reply()
        self._start(turn.prompt + turn.text, turn.tag, continues=turn.id, card=card)

    def action_regenerate_completion(self) -> None:
        newest = self._newest_model_turn()
        assert newest is not None
        card, turn = newest
        self.action_cancel_reply()
        card.remove()
        self._start(turn.prompt, turn.tag, replaces=turn.id)

    def action_copy_completion(self) -> None:
        target = self.target
        assert target is not None
        copy_out(self, (target.turn.tag if target.turn else "") + target.text, self._copy_file)

    def action_inspect_completion(self) -> None:
        """Inspect the text the model read for the turn, and as much of its words as fit beside it."""
        target = self.target
        assert target is not None and target.turn is not None and self.session is not None
        turn, trainer = target.turn, self.session.trainer
        text = first_window(turn.prompt, turn.text, trainer.tokenizer, trainer.model_config.block_size)
        self.post_message(self.InspectRequested(turn.prompt, text, turn.settings))

    def action_cancel_reply(self) -> None:
        if self._reply:
            self.workers.cancel_group(self, "chat-generate")
            self._end_reply("cancelled", "cancelled")

    def action_leave_input(self) -> None:
        self.list.focus()

    def action_write(self) -> None:
        self.input.focus()

    def action_pick_roles(self) -> None:
        from tui.screens.roles import RolesScreen

        assert self._speakers is not None
        self.app.push_screen(RolesScreen(self._speakers.ranked, *self.roles), self._roles_picked)

    def _roles_picked(self, roles: tuple[str, str] | None) -> None:
        if roles is not None:
            self._use_roles(*roles)
        self.input.focus()

    def action_new_conversation(self) -> None:
        self.action_cancel_reply()
        self.conversation = Conversation()
        self.list.select(None)
        self.list.remove_children()
        self.input.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        target = self.target
        match action:
            case "cancel_reply":
                return self._reply is not None
            case "leave_input":
                return self._reply is None and self.screen.focused is self.input
            case "pick_roles":
                return bool(self._speakers and self._speakers.style) and not self._chat.fixed_roles
            case "new_conversation" | "write":
                return self.template is not None
            case "continue_completion" | "regenerate_completion":
                return self._newest_model_turn() is not None and self._reply is None
            case "inspect_completion":
                return target is not None and target.turn is not None and target.turn.role == "model"
            case "copy_completion":
                return target is not None
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()  # the view's own workers: the app need not hear of them
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "chat-generate":
            self._end_reply("failed", None)
            self.notify(str(event.worker.error), title="The model's turn failed", severity="error", timeout=20)
        else:
            self._preparing = self._speakers is not None  # reading may be tried again
            self.notify(str(event.worker.error), title="Chat file problem", severity="warning", timeout=15)

