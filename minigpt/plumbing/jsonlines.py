"""Append-only JSON-lines files that survive what people and crashes do to them:
a run's metrics log (runlog, read back by runs), the completions beside a
checkpoint and the prompt history.

Each record is one JSON object on one line. Appending writes one whole line
and flushes it; when the file does not end with a newline (a write cut short
by a crash, or an editor), the new record starts on a new line, so the cut
line stays the only bad one. read_tail takes the newest lines from the end of
the file, a block at a time, so a file of any size opens in the time its
last lines take; read_lines takes them all, numbered, for messages that name
a line. A line that is not a JSON object is skipped and counted, never fatal,
and the file is never rewritten because of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from minigpt.plumbing.atomic import atomic_write_bytes

T = TypeVar("T")
BLOCK_BYTES = 64 * 1024
MAX_TAIL_BYTES = 64 * 1024 * 1024  # read no further back than this for the newest lines


class JsonLinesError(OSError):
    """The file cannot be written; the message names it and says why (reason)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: cannot be written ({reason})")
        self.reason = reason


@dataclass
class Tail:
    records: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    bad_lines: int = 0  # lines among the newest that were not JSON objects
    whole_file: bool = True  # False: the file holds older lines than these
    problem: str | None = None  # why the file could not be read at all


def read_tail(path: Path, count: int) -> Tail:
    """The newest `count` records of path (a missing file has none)."""
    try:
        with path.open("rb") as f:
            lines, whole_file = _last_lines(f, count)
    except FileNotFoundError:
        return Tail()
    except IsADirectoryError:
        return Tail(problem=f"{path}: is a directory, not a JSON-lines file")
    except OSError as e:
        return Tail(problem=f"{path}: cannot be read ({e.strerror or e})")
    tail = Tail(whole_file=whole_file)
    for line in lines:
        if record := _parse(line):
            tail.records.append(record)
        else:
            tail.bad_lines += 1
    return tail


@dataclass
class Line:
    number: int  # counted from 1, as an editor does
    record: dict[str, Any] | None  # None: not a JSON object
    cut: bool  # the file's last line, without a newline after it: a write cut short


def read_lines(path: Path) -> list[Line]:
    """Every non-empty line of path, in order; OSError when it cannot be read."""
    lines = path.read_bytes().split(b"\n")
    return [Line(number, _parse(line), number == len(lines))
            for number, line in enumerate(lines, start=1) if line.strip()]


def read_newest(path: Path, count: int, parse: Callable[[dict[str, Any]], T | None],
                what: str) -> tuple[list[T], str | None]:
    """The newest count records of path that parse returns an item for (oldest first), and one line
    about what could not be read: the file, and how many lines are not `what` (e.g. "completions")."""
    tail = read_tail(path, count)
    items = [item for item in map(parse, tail.records) if item is not None]
    bad = tail.bad_lines + len(tail.records) - len(items)
    if bad:
        return items, (f"{path}: {bad:,} of the newest {bad + len(items):,} lines are not {what} and were "
                       f"skipped (the file is left as it is; new {what} are appended)")
    return items, tail.problem


def now_utc() -> str:
    """The time now, as the files write it: ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_lines(f: Any, count: int) -> tuple[list[bytes], bool]:
    """The last count non-empty lines of the binary file f, and whether they are all it holds."""
    end = f.seek(0, os.SEEK_END)
    position, data = end, b""
    while position > 0 and data.count(b"\n") <= count and end - position < MAX_TAIL_BYTES:
        step = min(BLOCK_BYTES, position)
        position -= step
        f.seek(position)
        data = f.read(step) + data
    lines = data.split(b"\n")
    if position > 0:
        lines = lines[1:]  # the first one is only the end of a longer line
    lines = [line for line in lines if line.strip()]
    return lines[-count:] if count else [], position == 0 and len(lines) <= count


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append record as one line and flush it; raise JsonLinesError if the file cannot be written."""
    line = _encoded(record)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+b") as f:
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = b"\n" + line  # the last line was cut short: leave it alone, start a new one
            f.write(line + b"\n")
            f.flush()
    except OSError as e:
        raise JsonLinesError(path, e.strerror or str(e)) from None


def rewrite(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace the file with these records, atomically; JsonLinesError if it cannot be written."""
    try:
        atomic_write_bytes(path, b"".join(_encoded(record) + b"\n" for record in records))
    except OSError as e:
        raise JsonLinesError(path, e.strerror or str(e)) from None


def _encoded(record: dict[str, Any]) -> bytes:
    """One line of UTF-8 JSON."""
    try:
        return json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as a JSON escape
        return json.dumps(record).encode("ascii")
