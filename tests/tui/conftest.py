"""Fixtures for the TUI tests: a temporary project folder with a small corpus
and its own settings file."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest
from textual._wait import wait_for_idle

WORDS = "the quick brown fox jumps over a lazy dog while the cat sat on the mat and sang".split()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with data/input.txt, as the current directory, with
    MINIGPT_SETTINGS pointing at its minigpt.toml."""
    rng = random.Random(0)
    lines = (" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(300))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINIGPT_SETTINGS", "minigpt.toml")  # relative: the same text in every snapshot
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """PyTorch's two threads, on two cores shared with other work, wait for each other at every
    small operation: an evaluation's 200-token sample took 2 to 7 s instead of 0.3 s on a busy
    machine, and tests waiting for evaluations timed out (two of test_samples_and_runs, before
    and after issue 19's changes). One thread is as fast for these tiny models, and steady; the
    other tests that run PyTorch in a subprocess set OMP_NUM_THREADS=1 likewise."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def quick_key_presses(monkeypatch: pytest.MonkeyPatch) -> None:
    """After each key, Pilot waits up to a second for the process to look idle
    (CPU time against wall time). With a training thread busy it never does,
    so every key would cost seconds; the tests wait for what they need instead."""
    quick = functools.partial(wait_for_idle, max_sleep=0.05)
    monkeypatch.setattr("textual.app.wait_for_idle", quick)
    monkeypatch.setattr("textual.pilot.wait_for_idle", quick)
