"""Where the training text comes from: the user's file, a built-in corpus that
needs no download, or Tiny Shakespeare fetched on request."""

from __future__ import annotations

import hashlib
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

from minigpt.atomic import atomic_write_bytes
from minigpt.errors import MiniGPTError

DEFAULT_PATH = Path("data/input.txt")
BUILTIN_NAME = "built-in: Python standard library source"
BUILTIN_CHARS = 1_000_000

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class CorpusError(MiniGPTError, ValueError):
    """The corpus cannot be used; the message names the file and the problem."""


def read_corpus(path: str | Path) -> str:
    """Read a UTF-8 text file, with a clear error for each way it can fail."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CorpusError(f"{path}: is a directory, expected a text file") from None
    except PermissionError:
        raise CorpusError(f"{path}: cannot be read (permission denied)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    if not text:
        raise CorpusError(f"{path}: the file is empty")
    if "\x00" in text:
        raise CorpusError(f"{path}: holds NUL bytes (offset {text.index(chr(0))}); is it a binary file?")
    return text


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


def load_corpus(path: str | Path | None) -> tuple[str, str]:
    """The text to train on and a name for it. With no path, use data/input.txt
    when it exists, else the built-in corpus. A path that was named must exist."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return builtin_corpus(), BUILTIN_NAME
        path = DEFAULT_PATH
    return read_corpus(path), str(path)


def download_shakespeare(dest: str | Path = DEFAULT_PATH, timeout: float = 30.0) -> Path:
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
