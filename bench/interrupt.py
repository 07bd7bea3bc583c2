"""Ending a benchmark on SIGINT (Ctrl+C) or SIGTERM (`kill`, `timeout`): at
once, cleanly, with the exit status 128 + the signal's number (130, 143).

Not run by itself: `python -m bench` handles the signals around every
subcommand. Synchronous code is interrupted by an exception, Interrupted,
so that `finally` blocks and context managers kill child processes and
remove temporary folders on the way out. Under asyncio, where an exception
raised from a signal handler would land anywhere in the event loop, the
signal instead cancels the benchmark's task (run_async), whose cleanup runs
just as well, and Interrupted is raised when it has. Further signals are
ignored, as minigpt-train ignores them while it saves: the cleanup they would
break takes a second or so (a training step and a save), and one request
often comes as two signals (`timeout` signals the process, then its group).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # the first signal, once one has come
_task: asyncio.Task | None = None  # what a signal cancels while run_async runs


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, as KeyboardInterrupt is, so
    that no `except Exception` of a benchmark swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM raise Interrupted; the handlers before are restored after."""
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def received() -> bool:
    return bool(_received)


def _interrupt(signum: int, frame: object) -> None:
    if not _received:
        _received.append(signum)
        raise Interrupted(signum)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), where SIGINT and SIGTERM cancel main and then raise Interrupted."""
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    try:
        result = asyncio.run(_cancelled_by_signals(main))
    finally:  # asyncio resets the handlers it installed to the defaults: put back those before
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if _received:  # came as asyncio was closing, after main had ended
        raise Interrupted(_received[0])
    return result


async def _cancelled_by_signals(main: Coroutine[Any, Any, T]) -> T:
    global _task
    _task = asyncio.current_task()
    claim_signals()
    try:
        return await main
    except asyncio.CancelledError:
        if _received:
            raise Interrupted(_received[0]) from None
        raise
    except Exception as error:  # raised by main's cleanup after a signal: the signal is why it ended
        if _received:
            raise Interrupted(_received[0]) from error
        raise
    finally:
        _task = None


def claim_signals() -> None:
    """Handle SIGINT and SIGTERM on the running loop by cancelling the benchmark's task,
    again: call it after something else installed handlers of its own (minigpt-tui quits
    on SIGTERM, and would leave the benchmark waiting for an app that has gone)."""
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, _cancel, signum)


def _cancel(signum: int) -> None:
    if not _received:
        _received.append(signum)
        if _task is not None:
            _task.cancel()
