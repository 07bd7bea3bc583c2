"""Chat is completion with a template.

A language model only ever continues a text. To make it chat, lay the
conversation out as a text in a format the model has read many times, end
that text with the tag of the speaker the model plays, let it complete, and
stop where the next speaker would begin. Big chat models are tuned on such a
template; a small one trained on a play knows one already, because a play is
a conversation:

    ROMEO:
    Is the day so young?

    JULIET:
    But new struck nine.

    ROMEO:
    Ay me! sad hours seem long.

    JULIET:
    <the model writes from here, and its turn ends at a blank line>

Here: the speakers of a text and the way it writes a turn (find_speakers),
the template made of them or given in the settings (Template), the
conversation laid out for a model that reads at most a block of tokens,
whole turns dropped oldest first (lay_out), and where the model's turn ends
(Template.reply_settings). Nothing else is needed: the same sampler that
completes a prompt writes the model's turn.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.settings import SamplingSettings
from minigpt.tokenizer import Tokenizer

SCAN_CHARS = 4_000_000  # speakers are counted in the start of a text, at most this much of it
MIN_TURNS = 2  # a name must begin at least this many turns to be a speaker
MIN_SHARE = 0.02  # and the speakers' turns at least this share of the text's lines (a play: about 1 in 6)
OTHER_SPEAKERS = 20  # the model's turn also ends at the tags of this many other speakers
REPLY_SHARE = 4  # a quarter of the model's context is left for its reply

# A line that begins a turn: a capitalised name of a few words, then ":" or ".", then the
# end of the line ("ROMEO:") or the first words of the turn ("Q: What is...").
_TAG = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9' -]{0,30}?)(?<! )(?P<mark>[:.])(?:[ \t]*$|[ \t]+(?=\S))", re.M)


class NoTemplateError(MiniGPTError):
    """There is no template to lay a conversation out in; the message says what one is and how to set one."""


@dataclass(frozen=True)
class Style:
    """How a text writes a turn: the name and its mark alone on a line, the words
    below ("ROMEO:\\n"), or the words after it ("Q: "); a blank line between two
    turns, or a newline."""

    mark: str  # ":" or "."
    own_line: bool
    separator: str  # "\n\n" or "\n"

    def tag(self, name: str) -> str:
        return f"{name}{self.mark}" + ("\n" if self.own_line else " ")


def name_in(tag: str) -> str:
    """The speaker's name in a tag: "ROMEO:\n" -> "ROMEO", "Q: " -> "Q"."""
    return tag.strip().removesuffix(":").removesuffix(".").strip()


@dataclass(frozen=True)
class Speakers:
    ranked: list[tuple[str, int]]  # (name, turns it begins), most first
    style: Style | None  # None: the text has no speakers
    order: list[str]  # the names in the order of their first turn

    def default_roles(self) -> tuple[str, str]:
        """The user and the model: the two who speak most, the one who speaks first being the
        user (in a question-and-answer text, the one who asks)."""
        two = [name for name, _ in self.ranked[:2]]
        first, second = sorted(two, key=self.order.index)
        return first, second

    def template(self, user: str, model: str) -> Template:
        """The template of this text, the user speaking as user and the model as model."""
        if self.style is None:
            raise NoTemplateError("the text has no speakers")
        others = [self.style.tag(name) for name, _ in self.ranked if name not in (user, model)]
        return Template(self.style.tag(user), self.style.tag(model), self.style.separator,
                        others=tuple(others[:OTHER_SPEAKERS]))


def find_speakers(text: str) -> Speakers:
    """The speakers of text, ranked by the number of turns they begin, and the way it writes a turn.

    A turn begins with a line "NAME:" or "NAME." (the words below it), or "NAME: words" (the words
    after it). The way most turns are written is the text's style, and only the names written that
    way count. A text has speakers when at least two names begin MIN_TURNS turns each, and their
    turns make at least MIN_SHARE of its lines: a novel's "Chapter I." or a program's "Example:"
    do not make it a play."""
    text = text[:SCAN_CHARS].replace("\r\n", "\n")
    names: dict[tuple[str, bool], Counter[str]] = {}  # by (mark, own_line)
    after_blank: Counter[tuple[str, bool]] = Counter()
    for match in _TAG.finditer(text):
        name, mark = match["name"], match["mark"]
        own_line = not text[match.end():match.end() + 1].strip()
        if mark == "." and not own_line and not name.isupper():
            continue  # "Yes. I will." is a sentence; "ROMEO. I will." is a turn
        form = (mark, own_line)
        names.setdefault(form, Counter())[name] += 1
        after_blank[form] += match.start() == 0 or text.startswith("\n\n", match.start() - 2)
    if not names:
        return Speakers([], None, [])
    form = max(names, key=lambda f: sum(n for n in names[f].values() if n >= MIN_TURNS))
    ranked = [(name, n) for name, n in names[form].most_common() if n >= MIN_TURNS]
    turns = sum(n for _, n in ranked)
    if len(ranked) < 2 or turns < MIN_SHARE * (text.count("\n") + 1):
        return Speakers([], None, [])
    separator = "\n\n" if after_blank[form] > names[form].total() / 2 else "\n"
    return Speakers(ranked, Style(*form, separator), list(names[form]))


def speakers_of(corpus: Corpus) -> Speakers:
    """find_speakers on the start of a corpus, read a chunk at a time."""
    text = ""
    for chunk in corpus.chunks():
        text += chunk
        if len(text) >= SCAN_CHARS:
            break
    return find_speakers(text)


@dataclass(frozen=True)
class Template:
    """How a conversation is laid out as a text: each turn is a speaker's tag and
    words, the separator between two turns; the model's turn begins with its tag."""

    user: str  # the tag of the user's turns: "ROMEO:\n", "Q: "
    model: str  # the tag of the model's turns
    separator: str = "\n"  # between two turns ("\n\n": a blank line)
    stop: tuple[str, ...] = ()  # more strings that end the model's turn
    others: tuple[str, ...] = ()  # other speakers' tags: the model's turn ends at them too

    def stop_strings(self) -> tuple[str, ...]:
        """Where the model's turn ends: at a blank line, at a speaker's tag that begins a line
        (the next turn: the model would go on writing the play), or at a stop string."""
        tags = ("\n" + tag.strip() for tag in (self.user, self.model, *self.others))
        return tuple(dict.fromkeys(("\n\n", *tags, *self.stop)))

    def reply_settings(self, settings: SamplingSettings) -> SamplingSettings:
        """The sampling settings for the model's turn: settings, and the template's stop strings."""
        return replace(settings, stop=tuple(dict.fromkeys((*settings.stop, *self.stop_strings()))))


@dataclass(frozen=True)
class Turn:
    tag: str  # the speaker's tag, as the template writes it
    text: str  # the words, as they were written or sampled


@dataclass(frozen=True)
class Prompt:
    """What the model reads for its turn."""

    text: str  # the turns that fit, laid out, and the model's tag
    first: int  # the oldest turn in it: the turns before this one no longer fit
    tokens: int  # about how many tokens text holds (its pieces are counted apart)
    cut: bool  # even the newest turn does not fit: the model reads only the end of it


def lay_out(turns: Sequence[Turn], template: Template, context: int, count: Callable[[str], int]) -> Prompt:
    """The conversation as the model reads it, ending with the model's tag.

    The model sees at most `context` tokens, and its reply needs room too: whole turns are
    dropped, oldest first, until the rest fits in three quarters of the context. The newest
    turn always stays (the sampler reads its end if even that is too long). A turn's trailing
    white space is left out: the separator ends it. count gives a piece's tokens."""
    budget = context - context // REPLY_SHARE
    pieces = [turn.tag + turn.text.rstrip() for turn in turns]
    used, first = count(template.model), len(pieces)
    while first > 0:
        cost = count(pieces[first - 1]) + count(template.separator)
        if first < len(pieces) and used + cost > budget:
            break
        used, first = used + cost, first - 1
    text = template.separator.join([*pieces[first:], template.model])
    return Prompt(text, first, used, cut=used > context)


def first_window(prompt: str, reply: str, tokenizer: Tokenizer, context: int) -> str:
    """The start of reply that fits in one context after prompt: the model read prompt for it all (a longer
    reply was written reading less and less of the prompt, as the window slid on)."""
    room = max(context - len(tokenizer.encode(prompt)), 1)
    return tokenizer.decode(tokenizer.encode(reply)[:room])


class TokenCounter:
    """The tokens of each piece of text, encoded once: laying out a conversation again
    after a new turn encodes only that turn."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.known: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if (tokens := self.known.get(text)) is None:
            tokens = self.known[text] = len(self.tokenizer.encode(text))
        return tokens
