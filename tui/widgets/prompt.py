"""The prompt: a text area that grows to a few lines.

Enter sends it (PromptInput.Submitted); Ctrl+J inserts a newline in every
terminal, Shift+Enter too where the terminal tells Shift+Enter from Enter
(kitty, WezTerm, foot, Ghostty...); pasted text keeps its lines. Up on the
first line and Down on the last walk the prompt history, as in a shell: the
text being written is kept, and comes back below the newest entry.
Escape typed just before another key (which arrives as alt+key, tui.keys)
posts LeftWithKey: the completions pane leaves the prompt, then the key acts.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea
from textual.widgets.text_area import EditResult

from tui.keys import key_after_escape


class PromptInput(TextArea):
    BINDINGS = [
        Binding("enter", "submit", "Complete", id="complete", tooltip="Complete the prompt"),
        Binding("ctrl+j,shift+enter", "newline", "Newline", id="newline",
                tooltip="Insert a newline in the prompt (Shift+Enter where the terminal reports it)"),
    ]

    class Submitted(Message):
        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptInput:
            return self.prompt

    class LeftWithKey(Message):
        """Escape, then key, typed at once: the prompt is to be left, and the key to act."""

        def __init__(self, prompt: PromptInput, key: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.key = key

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, compact=True, soft_wrap=True, show_line_numbers=False,
                         tab_behavior="focus")
        self.past_prompts: list[str] = []  # the prompt history, oldest first (the pane keeps it)
        self._walk: int | None = None  # index into history while walking it
        self._draft = ""  # what was being written when the walk began

    async def _on_key(self, event: events.Key) -> None:
        # The keys of BINDINGS are handled here, in the order they were typed: as bindings they
        # would run after the keys queued behind them (a fast typist's, or tmux send-keys),
        # or, with priority, before the keys typed just ahead. And TextArea would take Enter.
        if (key := key_after_escape(event)) is not None:  # Escape and a key typed at once (tui.keys)
            event.stop()
            event.prevent_default()
            self.post_message(self.LeftWithKey(self, key))
            return
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and event.key in binding.key.split(","):
                event.stop()
                event.prevent_default()
                await self.run_action(binding.action)
                return

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def clear(self) -> EditResult:
        """Empty the prompt, and end a walk through the history."""
        self._walk = None
        return super().clear()

    def action_cursor_up(self, select: bool = False) -> None:
        if select or not self.cursor_at_first_line or not self._step_history(-1):
            super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if select or not self.cursor_at_last_line or not self._step_history(1):
            super().action_cursor_down(select)

    def _step_history(self, step: int) -> bool:
        """Show the entry step away from the current one; False when there is none that way."""
        position = len(self.past_prompts) if self._walk is None else self._walk
        target = position + step
        if not 0 <= target <= len(self.past_prompts) or target == position:
            return False
        if self._walk is None:
            self._draft = self.text
        self._walk = None if target == len(self.past_prompts) else target
        self.load_text(self._draft if self._walk is None else self.past_prompts[target])
        self.move_cursor(self.document.end)
        return True
