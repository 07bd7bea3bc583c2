"""SIGKILL at random moments while saving a checkpoint or the settings file:
afterwards the file on disk is always a whole earlier save, never a mix or a stub.

Each loop forks a child that saves again and again, waits until it starts its
first, second or third save, sleeps a random part of one save's duration and
kills it. MINIGPT_KILL_LOOPS sets the number of kills (default 30, about a
second; e.g. 200 for a soak), and a fifteenth of it (at least 2) the kills of
minigpt-train itself, each a second or two."""

from __future__ import annotations

import itertools
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from reliability_helpers import KILL_LOOPS, train

from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minigpt.plumbing.settings import SamplingSettings, load_settings, save_settings
from minigpt.tokenizer import CharTokenizer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def save_duration(save: Callable[[int], None]) -> float:
    times = []
    for number in range(1, 6):
        started = time.perf_counter()
        save(number)
        times.append(time.perf_counter() - started)
    return sorted(times)[2]


def kill_while_saving(save: Callable[[int], None], saved_number: Callable[[], int], loops: int) -> None:
    """Kill a child that keeps calling save(n), save(n + 1), ... at random
    moments. After each kill the file must load (saved_number() reads it and
    checks it is whole) and hold a save no older than the last one seen and
    no newer than the last one begun."""
    duration = save_duration(save)
    save(0)  # the previous file the first kill must leave intact
    rng = random.Random(2024)
    seen = begun = 0
    for _ in range(loops):
        first = begun + 1
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: announce each save, then make it; never returns
            try:
                os.close(read_end)
                for number in itertools.count(first):
                    os.write(write_end, b".")
                    save(number)
            finally:
                os._exit(1)
        os.close(write_end)
        announced = len(b"".join(os.read(read_end, 1) for _ in range(rng.randint(1, 3))))
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        announced += len(os.read(read_end, 4096))  # saves begun before the kill landed
        os.close(read_end)
        assert announced > 0, "the child never started saving"
        begun = first + announced - 1
        number = saved_number()
        assert seen <= number <= begun
        seen = number


def checkpoints(folder: Path) -> Callable[[int], None]:
    """save(n) writes a ~3 MB checkpoint at step n whose every weight equals n."""
    tokenizer = CharTokenizer("".join(chr(32 + i) for i in range(64)))
    model = GPT(ModelConfig(vocab_size=64, block_size=64, d_model=128, n_heads=4, n_layers=4))
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    # Built before forking: the child only serialises and writes.
    states = [{name: torch.full(shape, float(n)) for name, shape in shapes.items()} for n in range(4)]

    def save(number: int) -> None:
        state = states[number % 4]
        save_checkpoint(folder / "model.pt", Checkpoint(state, model.config, tokenizer, step=number, train_config={}))

    return save


def test_sigkill_while_saving_a_checkpoint_keeps_a_whole_one(tmp_path):
    def saved_number() -> int:
        loaded = load_checkpoint(tmp_path / "model.pt")  # raises if torn
        assert all(bool((t == loaded.step % 4).all()) for t in loaded.model_state.values())  # not a mix
        return loaded.step

    kill_while_saving(checkpoints(tmp_path), saved_number, KILL_LOOPS)


def test_sigkill_while_saving_settings_keeps_the_whole_file(tmp_path):
    path = tmp_path / "minigpt.toml"
    document = {"keymap": {"quit": "ctrl+q"}, "tui": {"theme": "nord", "colors": {"accent": "#ff8800"}}}

    def save(number: int) -> None:
        save_settings(path, SamplingSettings(top_k=number, stop=("\n\n",)), document)

    def saved_number() -> int:
        loaded = load_settings(path)
        assert loaded.problems == [] and loaded.sampling.stop == ("\n\n",)
        assert loaded.document["keymap"] == document["keymap"] and loaded.document["tui"] == document["tui"]
        return loaded.sampling.top_k

    kill_while_saving(save, saved_number, KILL_LOOPS)


def test_minigpt_train_killed_mid_save_resumes_from_the_previous_checkpoint(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/input.txt").write_text("It was the best of times, it was the worst of times.\n" * 200)
    args = ["--preset", "tiny", "--max-iters", "30", "--set", "eval_interval=10", "--set", "eval_iters=1",
            "--no-sample"]
    rng = random.Random(7)
    for _ in range(max(2, KILL_LOOPS // 15)):
        byte = rng.randrange(0, 200_000)  # somewhere in the file (clamped to its size)
        result = train(args + ["--from-scratch"], tmp_path, fault={"kind": "kill_in_save", "save": 2, "byte": byte})
        assert result.returncode == -signal.SIGKILL, result.stderr
        assert load_checkpoint(tmp_path / "checkpoints/model.pt").step == 10  # the first save, whole
    resumed = train(args + ["--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming checkpoints/model.pt at step 10" in resumed.stderr
    assert load_checkpoint(tmp_path / "checkpoints/model.pt").step == 30
