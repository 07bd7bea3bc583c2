"""Timing a piece of work a few times: the median, steadier than the mean on a noisy
machine, or the fastest, where a busy moment must not count (a machine's peak)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    return statistics.median(_times(work, repeats))


def fastest_seconds(work: Callable[[], object], repeats: int) -> float:
    return min(_times(work, repeats))


def _times(work: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def wait_for(device: torch.device) -> None:
    """Wait until the device has done the work queued on it: a GPU runs ahead of Python, and a timing must
    include its work."""
    if device.type == "cuda":
        torch.cuda.synchronize()
