"""Run a MiniGPT command with a fault injected: the reliability tests' way to
make a save fail, be interrupted or be killed at a chosen moment.

    MINIGPT_FAULT='{"kind": "disk_full", "saves": [2]}' python faultrun.py train_cli ARGS...

Every checkpoint save goes through minigpt.plumbing.checkpoint.atomic_write; the fault
wraps it. Saves are counted from 1, and each one's step is appended to the
file named by "record" (if given), so a test can tell how many saves happened.

kinds:
  record         no fault: only record the saves
  disk_full      saves listed in "saves" (or every one from "from_save" on) fail
                 half-way through writing with ENOSPC
  read_only      the same saves fail to create their temporary file with EROFS
  sigint_in_save during every save, half-way through writing, send this process
                 SIGINT "count" times (a user pressing Ctrl+C again and again)
  kill_in_save   during save number "save", SIGKILL this process after writing
                 "byte" bytes of the file (clamped to its size)
  unreadable     reading the file "path" fails with EACCES, as a file without
                 read permission does for anyone but root
"""

from __future__ import annotations

import errno
import json
import os
import runpy
import signal
import sys


def install(fault: dict) -> None:
    import minigpt.plumbing.atomic
    import minigpt.plumbing.checkpoint

    if fault["kind"] == "unreadable":
        import pathlib

        pathlib.Path.read_bytes = denying_read_bytes(fault["path"])

    real_atomic_write = minigpt.plumbing.checkpoint.atomic_write
    count = 0

    def failing(number: int) -> bool:
        return number in fault.get("saves", ()) or number >= fault.get("from_save", float("inf"))

    def atomic_write(path, write):
        nonlocal count
        count += 1
        number = count
        if fault.get("record"):
            with open(fault["record"], "a") as f:
                f.write(f"{number}\n")
        if fault["kind"] == "read_only" and failing(number):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

        def faulty_write(f):
            data = _captured(write)
            middle = len(data) // 2
            if fault["kind"] == "kill_in_save" and number == fault["save"]:
                cut = min(fault["byte"], len(data))
                f.write(data[:cut])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            f.write(data[:middle])
            if fault["kind"] == "disk_full" and failing(number):
                raise OSError(errno.ENOSPC, "No space left on device")
            if fault["kind"] == "sigint_in_save":
                for _ in range(fault.get("count", 3)):
                    os.kill(os.getpid(), signal.SIGINT)
            f.write(data[middle:])

        real_atomic_write(path, faulty_write)

    minigpt.plumbing.checkpoint.atomic_write = atomic_write


def denying_read_bytes(path: str):
    """A Path.read_bytes (how MiniGPT reads its TOML files) that fails with
    EACCES for path and reads every other file."""
    import pathlib

    real_read_bytes = pathlib.Path.read_bytes
    denied = pathlib.Path(path).resolve()

    def read_bytes(self):
        if self.resolve() == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_bytes(self)

    return read_bytes


def _captured(write) -> bytes:
    """What write() would put in the file."""
    import io

    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


if __name__ == "__main__":
    install(json.loads(os.environ["MINIGPT_FAULT"]))
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
