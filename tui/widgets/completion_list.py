"""The completions and training samples, the newest at the bottom, the latest one streaming."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from minigpt.terminal import printable
from tui.text import TAB

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


class CompletionList(VerticalScroll, can_focus=True):
    """Completions and samples, kept at the bottom while new text arrives
    unless the user has scrolled up to read (Widget.anchor)."""

    def on_mount(self) -> None:
        self.anchor()

    def add_completion(self, completion: Completion) -> Completion:
        self.mount(completion)
        excess = len(self.children) - MAX_COMPLETIONS
        if excess > 0:
            self.remove_children(list(self.children)[:excess])
        return completion

    def follow(self) -> None:
        """Scroll to the newest text and stay there (after the user asked for new text)."""
        self.anchor()

    @property
    def last_completion(self) -> Completion | None:
        completions = self.query(Completion)
        return completions.last() if completions else None
