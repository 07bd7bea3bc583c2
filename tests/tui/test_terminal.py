"""minigpt-tui in a real pseudo-terminal, as a user (or a service manager) runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from tui_helpers import TINY, WAIT_LIMIT

from minigpt.plumbing.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"  # the last thing an app that restores the terminal writes


class Terminal:
    """A command running in a 100x30 pseudo-terminal, and all it has written."""

    def __init__(self, command: list[str], cwd) -> None:
        self.controller, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, cwd=cwd,
                                        start_new_session=True)
        os.close(child)
        self.output = b""

    def read_until(self, marker: bytes, what: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT
        while marker not in self.output:
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            if select.select([self.controller], [], [], 0.05)[0]:
                try:
                    self.output += os.read(self.controller, 65536)
                except OSError:  # the child has closed the terminal
                    assert marker in self.output, f"the app ended before {what}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.controller)


def test_sigterm_while_training_saves_quits_and_restores_the_terminal(workdir):
    terminal = Terminal([sys.executable, "-m", "tui.app", *TINY], workdir)
    try:
        terminal.read_until(b"idle", "the model to load")
        os.write(terminal.controller, b"t")
        terminal.read_until(b"training", "training to start")
        terminal.read_until(b"tok/s", "the first steps")
        terminal.process.send_signal(signal.SIGTERM)
        terminal.read_until(LEAVE_ALTERNATE_SCREEN, "the terminal to be restored")
        assert terminal.process.wait(timeout=WAIT_LIMIT) == 0
    finally:
        terminal.close()
    assert load_checkpoint(workdir / "checkpoints/model.pt").step > 0
