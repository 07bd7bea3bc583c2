"""The prompt history of a project, like a shell's history file.

    minigpt-history.jsonl    in the project folder, one JSON object a line, oldest first:
    {"prompt": "ROMEO:\\n", "time": "2026-12-01T21:30:05Z"}

Each prompt sent is appended (minigpt.plumbing.jsonlines: one whole line, flushed).
Reading keeps the newest LIMIT distinct prompts, the newest copy of a
repeated prompt only. When the file has grown past twice the limit it is
rewritten, atomically, with just those; a file with lines that cannot be
read is never rewritten, so nothing in it is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minigpt.plumbing.jsonlines import JsonLinesError, append_record, now_utc, read_tail, rewrite

LIMIT = 1000  # prompts kept


@dataclass
class PromptHistory:
    path: Path
    prompts: list[str] = field(default_factory=list)  # oldest first, each once
    problem: str | None = None  # one line about what could not be read

    def add(self, prompt: str) -> None:
        """Make prompt the newest entry and append it to the file (JsonLinesError if it cannot be)."""
        if not prompt.strip():
            return
        if prompt in self.prompts:
            self.prompts.remove(prompt)
        self.prompts = [*self.prompts[-(LIMIT - 1):], prompt]
        append_record(self.path, {"prompt": prompt, "time": now_utc()})


def load_history(path: Path) -> PromptHistory:
    """The history in path (empty when missing), compacting a healthy file that has grown past 2 x LIMIT."""
    tail = read_tail(path, 2 * LIMIT)
    prompts = [r["prompt"] for r in tail.records if isinstance(r.get("prompt"), str)]
    bad = tail.bad_lines + len(tail.records) - len(prompts)
    history = PromptHistory(path, _newest_distinct(prompts), tail.problem)
    if bad:
        history.problem = (f"{path}: {bad:,} lines are not prompts and were skipped "
                           "(the file is left as it is; new prompts are appended)")
    elif not tail.whole_file:
        _compact(history)
    return history


def _newest_distinct(prompts: list[str]) -> list[str]:
    """prompts without repeats, each where it last appeared, at most LIMIT of them."""
    newest_first = list(dict.fromkeys(reversed(prompts)))
    return newest_first[:LIMIT][::-1]


def _compact(history: PromptHistory) -> None:
    try:
        rewrite(history.path, ({"prompt": p, "time": now_utc()} for p in history.prompts))
    except JsonLinesError as e:
        history.problem = f"{history.path}: could not be shortened ({e.reason}); it is left as it is"
