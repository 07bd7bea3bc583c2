"""Crash-safe file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

NEW_FILE_MODE = 0o666  # what open() asks for: the umask then takes away what the user does not want shared


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, fsync it, then rename
    it over path. A crash at any moment leaves the previous file intact. The
    file gets the mode a plain write would give it: an existing file's own, a
    new one's from the umask."""
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            _copy_mode(path, tmp)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside path, .NAME.RANDOM.tmp. Not tempfile.mkstemp: it makes
    every file 0600 whatever the umask, and the rename would keep that mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free name for a temporary file beside {path.name}")


def _copy_mode(path: Path, tmp: Path) -> None:
    """Give the new file the permissions of the one it replaces, as writing over that one would keep them."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # no file there yet: the umask decided, as for any new file
        return
    os.chmod(tmp, mode)


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself durable; not every platform allows it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
