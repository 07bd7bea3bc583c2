"""The completions file: every completion of a checkpoint, kept beside it.

    checkpoints/model.pt                   the model
    checkpoints/model.completions.jsonl    its completions, one JSON object a line, oldest first

A line holds what it takes to make the same text again (the prompt, the
checkpoint's step, the sampling settings with the seed actually used) and
what came of it:

    {"v": 1, "id": "5f0c9a1e", "time": "2026-12-01T21:30:05Z", "checkpoint": "checkpoints/model.pt",
     "step": 1200, "prompt": "ROMEO:\\n", "text": "What light...", "ended": "done",
     "settings": {"temperature": 0.8, "top_k": 0, "top_p": 0.95, "repetition_penalty": 1.0,
                  "max_new_tokens": 500, "seed": 8841, "stop": []},
     "continues": null}

`ended` is "done" (the model stopped or reached max_new_tokens) or
"cancelled" (the text is a prefix of what the settings make). `continues` is
the id of the completion whose prompt + text this one's prompt is. The file
is appended to (minigpt.plumbing.jsonlines), so a bad line never stops a reader and
never loses the lines around it. Export writes them as Markdown.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.jsonlines import JsonLinesError, append_record, now_utc, read_newest
from minigpt.plumbing.paths import COMPLETIONS_SUFFIX
from minigpt.plumbing.settings import SamplingSettingError, SamplingSettings

FORMAT_VERSION = 1
ENDINGS = ("done", "cancelled")


class CompletionsFileError(MiniGPTError):
    """A completions file or export cannot be written; the message names it and says why."""


@dataclass(frozen=True)
class StoredCompletion:
    prompt: str
    text: str
    step: int  # the checkpoint's training step when the weights were sampled
    settings: SamplingSettings  # with the concrete seed used, never -1
    checkpoint: str  # the checkpoint path, as the user gave it
    time: str  # when it was made, ISO 8601 in UTC
    id: str
    ended: str = "done"
    continues: str | None = None

    @property
    def seed(self) -> int:
        return self.settings.seed

    def to_record(self) -> dict[str, Any]:
        return {"v": FORMAT_VERSION, "id": self.id, "time": self.time, "checkpoint": self.checkpoint,
                "step": self.step, "prompt": self.prompt, "text": self.text, "ended": self.ended,
                "settings": self.settings.to_dict(), "continues": self.continues}


def new_completion(prompt: str, text: str, step: int, settings: SamplingSettings, checkpoint: str | Path,
                   ended: str = "done", continues: str | None = None) -> StoredCompletion:
    """A completion made now, with a fresh id. settings must hold the seed used (SamplingSettings.seeded())."""
    assert settings.seed >= 0, "store the seed that was used, not -1"
    return StoredCompletion(prompt, text, step, settings, str(checkpoint), now_utc(), secrets.token_hex(4), ended,
                            continues)


def from_record(record: dict[str, Any]) -> StoredCompletion | None:
    """The completion a line holds, or None when the line is not one (wrong types, bad settings)."""
    try:
        settings = SamplingSettings(**record["settings"])
        completion = StoredCompletion(record["prompt"], record["text"], record["step"], settings,
                                      record["checkpoint"], record["time"], record["id"], record.get("ended", "done"),
                                      record.get("continues"))
    except (KeyError, TypeError, SamplingSettingError):
        return None
    strings = (completion.prompt, completion.text, completion.checkpoint, completion.time, completion.id)
    if not all(isinstance(s, str) for s in strings) or type(completion.step) is not int or settings.seed < 0:
        return None
    if completion.ended not in ENDINGS or not isinstance(completion.continues, str | None):
        return None
    return completion


def completions_path(checkpoint: str | Path) -> Path:
    """checkpoints/model.pt -> checkpoints/model.completions.jsonl"""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + COMPLETIONS_SUFFIX)


def export_path(checkpoint: str | Path) -> Path:
    """checkpoints/model.pt -> checkpoints/model.completions.md"""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".completions.md")


@dataclass
class LoadedCompletions:
    completions: list[StoredCompletion]  # the newest, oldest first
    problem: str | None = None  # one line about what could not be read; the file is left as it is


def load_recent(path: Path, count: int) -> LoadedCompletions:
    """The newest count completions of path, reading only the end of the file."""
    return LoadedCompletions(*read_newest(path, count, from_record, "completions"))


def append_completion(path: Path, completion: StoredCompletion) -> None:
    try:
        append_record(path, completion.to_record())
    except JsonLinesError as e:
        raise CompletionsFileError(f"{e}; the completion is not kept") from None


def export_markdown(completions: Iterable[StoredCompletion], path: Path) -> int:
    """Write completions to path as Markdown, atomically; return how many."""
    sections = [_markdown(c) for c in completions]
    document = "# MiniGPT completions\n\n" + "\n".join(sections)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, document.encode("utf-8"))
    except OSError as e:
        raise CompletionsFileError(f"{path}: cannot be written ({e.strerror or e})") from None
    return len(sections)


def _markdown(c: StoredCompletion) -> str:
    s = c.settings
    heading = f"## {c.time} · step {c.step:,} · seed {c.seed}" + (" · cancelled" if c.ended == "cancelled" else "")
    detail = (f"`{c.checkpoint}`, temperature {s.temperature}, top-k {s.top_k}, top-p {s.top_p}, "
              f"repetition penalty {s.repetition_penalty}, max tokens {s.max_new_tokens}")
    fence = "`" * max(3, _longest_backtick_run(c.prompt + c.text) + 1)  # a fence the text cannot close
    return f"{heading}\n\n{detail}\n\n**Prompt**\n\n{fence}\n{c.prompt}\n{fence}\n\n**Completion**\n\n" \
           f"{fence}\n{c.text}\n{fence}\n"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest
