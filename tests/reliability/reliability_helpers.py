"""Helpers for the reliability suite: run the real commands in a fresh folder
as a user would, and check that a failure is one clear line."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import Corpus
from minigpt.trainer import Trainer

HERE = Path(__file__).parent
# Kills per SIGKILL loop (a forked saver, a few ms each); raise it for a soak, e.g. MINIGPT_KILL_LOOPS=200.
KILL_LOOPS = int(os.environ.get("MINIGPT_KILL_LOOPS", "30"))

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 40


def command_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MINIGPT_SETTINGS", None)
    return env


def command(module: str, args: list[str], fault: dict | None = None) -> list[str]:
    """The command line of minigpt-train (train_cli) or minigpt-generate (generate_cli)."""
    if fault is None:
        return [sys.executable, "-m", module, *map(str, args)]
    return [sys.executable, str(HERE / "faultrun.py"), module, *map(str, args)]


def run(module: str, args: list[str], cwd: Path, fault: dict | None = None, timeout: float = 180,
        **kwargs) -> subprocess.CompletedProcess:
    env = command_env()
    if fault is not None:
        env["MINIGPT_FAULT"] = json.dumps(fault)
    return subprocess.run(command(module, args, fault), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def make_unreadable(path: Path) -> dict | None:
    """Take away read permission from path. Root reads it all the same, so
    for root also return the fault that makes a command's reads of it fail
    as they would for anyone else (pass it to run(), train() or generate())."""
    path.chmod(0)
    return {"kind": "unreadable", "path": str(path.resolve())} if os.geteuid() == 0 else None


def train(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return run("train_cli", args, cwd, **kwargs)


def generate(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return run("generate_cli", args, cwd, **kwargs)


def error_line(result: subprocess.CompletedProcess, program: str, *words: str, alone: bool = True) -> str:
    """The one-line error a command ended with: exit status 2, no traceback,
    every word present. alone: nothing else was printed to stderr."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith(f"{program}: error: "), result.stderr
    if alone:
        assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    return lines[-1]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread: on busy shared cores a second
    thread mostly waits, at milliseconds per operation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def tiny_trainer(checkpoint: Path | None = None, max_iters: int = 10, text: str = TEXT) -> Trainer:
    config = cfg.resolve("tiny", flags={"dtype": "float32", "device": "cpu", "max_iters": max_iters,
                                        "eval_interval": max_iters, "eval_iters": 1})
    return Trainer(config, Corpus.from_text(text, "input.txt"), checkpoint_path=checkpoint)
