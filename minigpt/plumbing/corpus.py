"""Where the training text comes from: the user's file, a built-in corpus that
needs no download, or Tiny Shakespeare fetched on request; and reading a
small text whole (a prompt, a text to tokenize), with the same care."""

from __future__ import annotations

import codecs
import hashlib
import sys
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_DATA

BUILTIN_NAME = "built-in: Python standard library source"
BUILTIN_CHARS = 1_000_000
BUILTIN_PROMPT = "def "  # where an empty prompt starts on the built-in corpus: see default_prompt
CHUNK_BYTES = 1 << 20  # a corpus file is read and encoded this much at a time
CHUNK_CHARS = 1 << 20

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class CorpusError(MiniGPTError, ValueError):
    """The corpus cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Corpus:
    """A training text that never has to be held whole as a string: its name,
    length and vocabulary, and its text again, chunk by chunk, on demand."""

    name: str
    length: int  # in characters
    characters: str  # the distinct characters, sorted
    chunks: Callable[[], Iterator[str]]

    @classmethod
    def from_text(cls, text: str, name: str = "corpus") -> Corpus:
        if not text:
            raise CorpusError(f"{name}: the text is empty")

        def chunks() -> Iterator[str]:
            for start in range(0, len(text), CHUNK_CHARS):
                yield text[start:start + CHUNK_CHARS]

        return cls(name, len(text), "".join(sorted(set(text))), chunks)


def open_corpus(path: str | Path) -> Corpus:
    """Check a UTF-8 text file in one streaming pass, counting its characters
    and collecting its vocabulary, without reading it all into memory."""
    path = Path(path)
    length, seen = 0, set()
    for chunk in _read_chunks(path):
        length += len(chunk)
        seen.update(chunk)
    if not length:
        raise CorpusError(f"{path}: the file is empty; put some UTF-8 text in it or choose another file")
    return Corpus(str(path), length, "".join(sorted(seen)), lambda: _read_chunks(path))


def _read_chunks(path: Path) -> Iterator[str]:
    """The text of a file, about CHUNK_BYTES at a time, with a clear error for
    each way it can fail. A character split between two reads is decoded
    whole by the incremental decoder."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file; check the path, or pass --data with a UTF-8 text file") from None
    except IsADirectoryError:
        raise CorpusError(f"{path}: is a directory; pass --data with a UTF-8 text file inside it") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read ({e.strerror or e})") from None
    decoder = codecs.getincrementaldecoder("utf-8")()
    read = decoded = 0  # bytes read, characters decoded
    with file:
        while True:
            block = file.read(CHUNK_BYTES)
            start = read - len(decoder.getstate()[0])  # file offset of the decoder's first undecoded byte
            read += len(block)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                raise CorpusError(
                    f"{path}: not UTF-8 text (invalid byte 0x{e.object[e.start]:02x} at offset {start + e.start}); "
                    "is it a binary file? Convert it to UTF-8 or choose a text file") from None
            if "\x00" in text:
                raise CorpusError(f"{path}: holds NUL bytes (character {decoded + text.index(chr(0))}); "
                                  "is it a binary file? Choose a UTF-8 text file")
            decoded += len(text)
            if text:
                yield text
            if not block:
                return


def read_text(path: str | Path, flag: str) -> str:
    """The text of a UTF-8 file, whole, or of standard input for -. flag names
    where the path was given, for the message of one that cannot be read."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file ({flag})") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read ({e.strerror or e}) ({flag})") from None
    name = "standard input" if str(path) == "-" else str(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{name}: not UTF-8 text (invalid byte 0x{data[e.start]:02x} at offset {e.start}) "
                          f"({flag})") from None


def builtin_corpus() -> str:
    """Source code of Python's standard library: on every machine, no download.

    The top-level modules are read in name order and pure-ASCII ones kept
    until BUILTIN_CHARS characters, so a given Python install always yields
    the same text."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pieces, total = [], 0
    for module in sorted(stdlib.glob("*.py")):
        try:
            text = module.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text.isascii():
            continue
        pieces.append(text)
        total += len(text)
        if total >= BUILTIN_CHARS:
            break
    return "".join(pieces)[:BUILTIN_CHARS]


def default_prompt(corpus: Corpus) -> str:
    """What an empty prompt is completed from ("": a newline). In Python's source 94%
    of the lines after a newline are indented or blank, and a third of the text is
    spaces, so on the built-in corpus a completion from a newline was mostly
    whitespace; from "def " the model writes a function."""
    return BUILTIN_PROMPT if corpus.name == BUILTIN_NAME else ""


def choose_corpus(path: str | Path | None) -> Corpus:
    """The corpus to train on. With no path, data/input.txt when it exists,
    else the built-in corpus. A path that was named must exist."""
    if path is None:
        if not DEFAULT_DATA.exists():
            return Corpus.from_text(builtin_corpus(), BUILTIN_NAME)
        path = DEFAULT_DATA
    return open_corpus(path)


def download_shakespeare(dest: str | Path = DEFAULT_DATA, timeout: float = 30.0) -> Path:
    """Fetch Tiny Shakespeare, check its SHA-256 and write it atomically to dest."""
    dest = Path(dest)
    try:
        with urllib.request.urlopen(SHAKESPEARE_URL, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CorpusError(
            f"could not download Tiny Shakespeare from {SHAKESPEARE_URL} ({reason}); "
            f"are you offline? Put any UTF-8 text at {dest} instead"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise CorpusError(f"downloaded Tiny Shakespeare has SHA-256 {digest}, expected {SHAKESPEARE_SHA256}; not saved")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)
    return dest
