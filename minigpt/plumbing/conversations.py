"""The conversations file: every turn of every chat with a checkpoint, kept beside it.

    checkpoints/model.pt            the model
    checkpoints/model.chat.jsonl    its conversations, one turn a line, oldest first

A user's turn holds its words; a model's turn also the exact text the model
read (its prompt), the checkpoint's step and the sampling settings with the
seed drawn, so that the Inspect view can show what the model read and the
same settings make the same words again:

    {"v": 1, "conversation": "c81f09aa", "id": "1d2e3f4a", "time": "2026-12-01T21:30:01Z",
     "role": "user", "tag": "ROMEO:\\n", "text": "Is the day so young?"}
    {"v": 1, "conversation": "c81f09aa", "id": "5f0c9a1e", "time": "2026-12-01T21:30:05Z",
     "role": "model", "tag": "JULIET:\\n", "text": "But new struck nine.",
     "prompt": "ROMEO:\\nIs the day so young?\\n\\nJULIET:\\n", "checkpoint": "checkpoints/model.pt",
     "step": 1200, "settings": {"temperature": 0.8, ..., "seed": 8841, "stop": ["\\n\\n", "\\nROMEO:", ...]},
     "ended": "done", "replaces": null, "continues": null}

A regenerated turn `replaces` the one before it (same prompt, new seed); a
continued turn `continues` one (its prompt is that turn's prompt and words,
its text the words added). The file is appended to like the completions file
(minigpt.plumbing.jsonlines), so a bad line is skipped and never stops a reader.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minigpt.chat import name_in
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.jsonlines import JsonLinesError, append_record, now_utc, read_newest
from minigpt.plumbing.paths import CONVERSATIONS_SUFFIX
from minigpt.plumbing.settings import SamplingSettingError, SamplingSettings

FORMAT_VERSION = 1
ROLES = ("user", "model")
ENDINGS = ("done", "cancelled")
SUFFIX = CONVERSATIONS_SUFFIX
NEWEST_TURNS = 400  # lines read back at launch: the newest conversation's turns among them


class ConversationsFileError(MiniGPTError):
    """The conversations file cannot be written; the message names it and says why."""


@dataclass(frozen=True)
class StoredTurn:
    conversation: str  # the id of the conversation it belongs to
    id: str
    time: str  # when it was written, ISO 8601 in UTC
    role: str  # "user" or "model"
    tag: str  # the speaker's tag, as the template writes it: "ROMEO:\n", "Q: "
    text: str
    # A model's turn: how it was made.
    prompt: str = ""  # the exact text the model read
    checkpoint: str = ""  # as the user named it
    step: int = 0  # the training step of the weights sampled
    settings: SamplingSettings | None = None  # seeded, with the template's stop strings
    ended: str = "done"  # or "cancelled"
    replaces: str | None = None
    continues: str | None = None

    @property
    def speaker(self) -> str:
        """The name in the tag: "ROMEO:\\n" -> ROMEO."""
        return name_in(self.tag)

    def to_record(self) -> dict[str, Any]:
        record = {"v": FORMAT_VERSION, "conversation": self.conversation, "id": self.id, "time": self.time,
                  "role": self.role, "tag": self.tag, "text": self.text}
        if self.role == "model":
            assert self.settings is not None
            record |= {"prompt": self.prompt, "checkpoint": self.checkpoint, "step": self.step,
                       "settings": self.settings.to_dict(), "ended": self.ended, "replaces": self.replaces,
                       "continues": self.continues}
        return record


def user_turn(conversation: str, tag: str, text: str) -> StoredTurn:
    return StoredTurn(conversation, secrets.token_hex(4), now_utc(), "user", tag, text)


def model_turn(conversation: str, tag: str, text: str, prompt: str, step: int, settings: SamplingSettings,
               checkpoint: str | Path, ended: str = "done", replaces: str | None = None,
               continues: str | None = None) -> StoredTurn:
    """A turn the model wrote now. settings must hold the seed used (SamplingSettings.seeded())."""
    assert settings.seed >= 0, "store the seed that was used, not -1"
    return StoredTurn(conversation, secrets.token_hex(4), now_utc(), "model", tag, text, prompt, str(checkpoint),
                      step, settings, ended, replaces, continues)


def from_record(record: dict[str, Any]) -> StoredTurn | None:
    """The turn a line holds, or None when the line is not one (a missing key, a wrong type)."""
    try:
        common = [record[key] for key in ("conversation", "id", "time", "role", "tag", "text")]
        if record["role"] == "model":
            settings = SamplingSettings(**record["settings"])
            turn = StoredTurn(*common, record["prompt"], record["checkpoint"], record["step"], settings,
                              record["ended"], record.get("replaces"), record.get("continues"))
        else:
            turn = StoredTurn(*common)
    except (KeyError, TypeError, SamplingSettingError):
        return None
    strings = (turn.conversation, turn.id, turn.time, turn.tag, turn.text, turn.prompt, turn.checkpoint)
    links = (turn.replaces, turn.continues)
    if not all(isinstance(s, str) for s in strings) or not all(isinstance(s, str | None) for s in links):
        return None
    if turn.role not in ROLES or type(turn.step) is not int or turn.ended not in ENDINGS:
        return None
    if turn.settings is not None and turn.settings.seed < 0:
        return None
    return turn


def conversations_path(checkpoint: str | Path) -> Path:
    """checkpoints/model.pt -> checkpoints/model.chat.jsonl"""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + SUFFIX)


def append_turn(path: Path, turn: StoredTurn) -> None:
    try:
        append_record(path, turn.to_record())
    except JsonLinesError as e:
        raise ConversationsFileError(f"{e}; the turn is not kept") from None


@dataclass
class Conversation:
    """A conversation: its lines, as read back and appended, and its turns as they stand."""

    id: str = field(default_factory=lambda: secrets.token_hex(4))
    lines: list[StoredTurn] = field(default_factory=list)  # oldest first
    turns: list[StoredTurn] = field(default_factory=list)

    @property
    def roles(self) -> tuple[str, str] | None:
        """The names of the user and the model in their newest turns, if both have spoken."""
        users = [turn.speaker for turn in self.turns if turn.role == "user"]
        models = [turn.speaker for turn in self.turns if turn.role == "model"]
        return (users[-1], models[-1]) if users and models else None

    def add(self, turn: StoredTurn) -> StoredTurn:
        """Add a line; return the turn as it now stands (a continued turn: whole)."""
        self.lines.append(turn)
        self.turns = as_it_stands(self.lines)
        return next(t for t in self.turns if t.id == turn.id)


def load_newest(path: Path, count: int = NEWEST_TURNS) -> tuple[Conversation, str | None]:
    """The newest conversation in path, as far as its newest count lines hold it (a new one if there
    is none), and one line about what could not be read (the file is left as it is)."""
    lines, problem = read_newest(path, count, from_record, "chat turns")
    if not lines:
        return Conversation(), problem
    newest = lines[-1].conversation
    conversation = Conversation(newest)
    for line in lines:
        if line.conversation == newest:
            conversation.lines.append(line)
    conversation.turns = as_it_stands(conversation.lines)
    return conversation, problem


def as_it_stands(turns: list[StoredTurn]) -> list[StoredTurn]:
    """A conversation's lines, oldest first, as the conversation now reads: a regenerated turn in place
    of the one it replaces, a continued turn with the words added (and the id of the last addition).
    A line that refers to a turn not among these stands as a turn of its own."""
    standing: list[StoredTurn] = []
    where: dict[str, int] = {}  # a turn's id, and every id it has had, to its index in standing
    for turn in turns:
        earlier = turn.replaces or turn.continues
        if earlier in where:
            index = where[earlier]
            if turn.continues:
                turn = replace(standing[index], id=turn.id, text=standing[index].text + turn.text)
            standing[index] = turn
        else:
            index = len(standing)
            standing.append(turn)
        where[turn.id] = index
    return standing
