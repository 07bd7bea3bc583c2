"""The completions and training samples, the newest at the bottom, the latest one streaming.

Up and Down in the list select a completion (click one, too); Escape lets
go. The actions on a completion are the pane's; the list shows their keys in
the Footer only while one is selected, so that the Footer of an 80-column
terminal keeps the app's own keys the rest of the time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from minigpt.plumbing.terminal import printable
from tui.text import TAB

if TYPE_CHECKING:
    from minigpt.plumbing.completions import StoredCompletion

MAX_COMPLETIONS = 50  # older ones are removed: the log stays the same size over a long run
PARAGRAPH_CHARS = 2000  # past this, text goes into a new Static at the next newline
PROMPT_SHOWN = 1000  # characters shown of a longer prompt, from its end (a 1 MB paste would take seconds to lay out)
LONGEST_PARAGRAPH = 8000  # a line longer than this is cut anyway: re-rendering it per update would crawl


class Completion(Vertical):
    """A title and the text of one completion or training sample.

    Streaming text is appended to the last paragraph only; once that grows
    long, the next newline starts a new one, so an update re-renders a few
    lines rather than the whole completion (which would be quadratic)."""

    def __init__(self, title: str, prompt: str = "", text: str = "", *, classes: str = "") -> None:
        super().__init__(classes=classes)
        self.title = title
        self.prompt = printable(prompt, TAB)  # whole, for copying
        self._shown_prompt = self.prompt if len(self.prompt) <= PROMPT_SHOWN else "…" + self.prompt[-PROMPT_SHOWN:]
        self.text = ""  # the generated text so far, without the prompt
        self._paragraph = self._first_paragraph = Static(classes="paragraph")  # the last one grows
        self._paragraph_text = ""
        self._initial = text
        self.record: StoredCompletion | None = None  # what the completions file keeps of it, once it has ended

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="title", markup=False)
        yield self._paragraph

    def on_mount(self) -> None:
        self.append(self._initial)

    def append(self, text: str) -> None:
        text = printable(text, TAB)
        self.text += text
        self._paragraph_text += text
        if len(self._paragraph_text) > PARAGRAPH_CHARS:
            self._start_paragraph()
        self._paragraph.update(self._render_paragraph(self._paragraph_text))

    def _start_paragraph(self) -> None:
        """Freeze the last paragraph up to its last newline and go on in a new one."""
        text = self._paragraph_text
        cut = text.rfind("\n")
        if cut <= 0:
            if len(text) <= LONGEST_PARAGRAPH:
                return
            cut = len(text)  # no newline: break the line here
        self._paragraph.update(self._render_paragraph(text[:cut]))
        self._paragraph, self._paragraph_text = Static(classes="paragraph"), text[cut + 1:]
        self.mount(self._paragraph)

    def _render_paragraph(self, text: str) -> Text:
        prompt = self._shown_prompt if self._paragraph is self._first_paragraph else ""
        return Text.assemble((prompt, "bold"), text)

    def finish(self, note: str) -> None:
        """Mark the completion as ended, e.g. 'cancelled' or '120 tokens, 45 tok/s'."""
        self.query_one(".title", Label).update(f"{self.title} · {note}")
        self.add_class("-done")


# The actions on a completion (run by the completions pane, which binds them too, hidden).
COMPLETION_ACTIONS = [
    Binding("c", "continue_completion", "Continue", id="continue", tooltip="Continue the completion with more tokens"),
    Binding("r", "regenerate_completion", "Regen", id="regenerate",
            tooltip="Regenerate the completion: the same prompt, a new seed"),
    Binding("y", "copy_completion", "Copy", id="copy",
            tooltip="Copy the completion (OSC 52, and to a file beside the checkpoint)"),
    Binding("i", "inspect_completion", "Inspect", id="inspect", tooltip="Inspect the completion"),
]


class CompletionList(VerticalScroll, can_focus=True):
    """Completions and samples, kept at the bottom while new text arrives
    unless the user has scrolled up to read (Widget.anchor)."""

    # Shown while a completion is selected. The list has no methods for these actions,
    # so Textual passes the key on to the pane's own binding, which runs it.
    BINDINGS = [
        *COMPLETION_ACTIONS,
        Binding("up", "select(-1)", "Select", id="select-up", show=False, tooltip="Select the completion above"),
        Binding("down", "select(1)", "Select", id="select-down", show=False, tooltip="Select the completion below"),
        Binding("escape", "unselect", "Unselect", id="unselect", show=False,
                tooltip="Let go of the selected completion"),
    ]

    selected: Completion | None = None

    def on_mount(self) -> None:
        self.anchor()

    def add_completion(self, completion: Completion) -> Completion:
        self.mount(completion)
        self._trim()
        return completion

    def add_earlier(self, completions: list[Completion]) -> None:
        """Completions from before this launch, above everything shown."""
        if completions:
            self.mount_all(completions, before=0 if self.children else None)
            self._trim()

    def _trim(self) -> None:
        excess = len(self.children) - MAX_COMPLETIONS
        if excess > 0:
            removed = list(self.children)[:excess]
            if self.selected in removed:
                self.select(None)
            self.remove_children(removed)

    def follow(self) -> None:
        """Scroll to the newest text and stay there (after the user asked for new text)."""
        self.anchor()

    @property
    def last_completion(self) -> Completion | None:
        completions = self.query(Completion)
        return completions.last() if completions else None

    @property
    def target(self) -> Completion | None:
        """What the actions act on: the selected completion, else the newest the user asked for, else
        the newest sample."""
        asked = self.query(".-prompt")
        return self.selected or (asked.last(Completion) if asked else self.last_completion)

    def select(self, completion: Completion | None) -> None:
        if self.selected is not None:
            self.selected.remove_class("-selected")
        self.selected = completion
        if completion is not None:
            completion.add_class("-selected")
            self.release_anchor()  # stay on it while new text arrives below
            self.scroll_to_widget(completion, animate=False, top=True)
        self.refresh_bindings()

    def action_select(self, offset: int) -> None:
        completions = list(self.query(Completion))
        if not completions:
            return
        if self.selected is None:
            index = len(completions) - 1 if offset < 0 else None  # Up picks the newest; Down, nothing
        else:
            index = completions.index(self.selected) + offset
            index = None if index >= len(completions) else max(index, 0)  # below the newest: let go
        self.select(None if index is None else completions[index])
        if index is None:
            self.follow()

    def action_unselect(self) -> None:
        self.select(None)
        self.follow()

    def on_click(self, event: events.Click) -> None:
        widget = event.widget
        while widget is not None and widget is not self and not isinstance(widget, Completion):
            widget = widget.parent
        if isinstance(widget, Completion):
            self.select(widget)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in {binding.action for binding in COMPLETION_ACTIONS} or action == "unselect":
            return self.selected is not None
        return True
