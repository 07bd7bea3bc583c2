"""Ctrl+C (or SIGTERM) during training: one checkpoint save, a clean exit
(status 130, or 143, no traceback), and more Ctrl+C during that save neither
interrupt nor corrupt it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from reliability_helpers import command, command_env

from minigpt.plumbing.checkpoint import load_checkpoint

ARGS = ["--preset", "tiny", "--max-iters", "1000000", "--set", "eval_interval=1000000", "--no-sample"]


def start_training(folder: Path, fault: dict) -> subprocess.Popen:
    env = {**command_env(), "MINIGPT_FAULT": json.dumps(fault)}
    process = subprocess.Popen(command("train_cli", ARGS, fault), cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    log = folder / "checkpoints/model.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text()):  # training is under way once a step is logged
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    return process


def check_one_clean_save(folder: Path, process: subprocess.Popen, stderr: str, status: int = 130) -> None:
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    stopped = re.search(r"stopped at step (\d+); checkpoint saved to checkpoints/model.pt", stderr)
    assert stopped, stderr
    assert (folder / "saves.txt").read_text().split() == ["1"]  # saved exactly once
    assert load_checkpoint(folder / "checkpoints/model.pt").step == int(stopped.group(1))
    assert [p.name for p in (folder / "checkpoints").iterdir() if p.suffix == ".tmp"] == []


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/input.txt").write_text("To be, or not to be, that is the question.\n" * 300)
    return tmp_path


def test_ctrl_c_pressed_again_and_again_saves_once_and_exits_cleanly(folder):
    process = start_training(folder, {"kind": "record", "record": str(folder / "saves.txt")})
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:  # a user hammering Ctrl+C
        os.kill(process.pid, signal.SIGINT)
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=60)
    check_one_clean_save(folder, process, stderr)


def test_ctrl_c_in_the_middle_of_the_save_does_not_corrupt_it(folder):
    fault = {"kind": "sigint_in_save", "count": 5, "record": str(folder / "saves.txt")}
    process = start_training(folder, fault)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    check_one_clean_save(folder, process, stderr)


def test_sigterm_saves_once_and_exits_with_143(folder):
    process = start_training(folder, {"kind": "record", "record": str(folder / "saves.txt")})
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert "SIGTERM: stopping after this step and saving" in stderr
    check_one_clean_save(folder, process, stderr, status=143)
