"""Training under torchrun with DistributedDataParallel, on the CPU with gloo:
2 processes of 1 thread each, the tiny preset, a few steps, fixed seeds.

Each torchrun launch costs seconds (three interpreters import PyTorch), so
each test launches once (the two-node test twice, side by side) and checks
several things of the run it made.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from distributed_worker import GRAD_ACCUMS, STEPS, tiny_config

from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import load_checkpoint, save_checkpoint
from minigpt.plumbing.config import ConfigError
from minigpt.plumbing.corpus import open_corpus
from minigpt.plumbing.distributed import DistributedError, from_environment, timeout_seconds
from minigpt.trainer import StepEvent, Trainer, micro_steps

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
WORKER = Path(__file__).with_name("distributed_worker.py")
LAUNCH_TIMEOUT = 180  # seconds; a run takes a few
CLI_ARGS = ["-m", "train_cli", "--preset", "tiny", "--dtype", "float32", "--device", "cpu", "--no-sample",
            "--data", "corpus.txt", "--out", "m.pt", "--grad-accum", "2", "--batch-size", "4"]

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="PyTorch built without distributed")


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MINIGPT_DIST_TIMEOUT": "60"}


def launch(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(TORCHRUN + args, cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """Wait for a launch to end; its exit status and what it wrote."""
    try:
        stdout, stderr = process.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"torchrun did not end in {LAUNCH_TIMEOUT} s:\n{stderr[-3000:]}")
    return process.returncode, stdout + stderr


def free_port() -> int:
    """A port no one listens on now (the OS picks it), so that tests running side by side do not collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes() -> list[str]:
    """torchrun's flags for one of two "machines" (1 process each) meeting by c10d rendezvous on this one."""
    port = free_port()
    return ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
            f"--rdzv_id=minigpt-test-{port}"]


def unbroken_run(corpus: Path, grad_accum: int, steps: int) -> tuple[Trainer, list[float]]:
    """The same training in this process alone, with grad_accum micro-batches a step."""
    trainer = Trainer(replace(tiny_config(grad_accum), max_iters=steps), open_corpus(corpus))
    return trainer, [e.loss for e in trainer.run() if isinstance(e, StepEvent)]


def assert_close(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(state[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture
def corpus_file(tmp_path, corpus_text) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text)
    return path


def test_two_ranks_hold_one_model_equal_to_one_process_with_accumulation(tmp_path, corpus_file):
    status, output = finish(launch(["--standalone", "--nproc_per_node=2", str(WORKER), str(corpus_file),
                                    str(tmp_path)], tmp_path))
    assert status == 0, output[-3000:]
    exchanged = {}
    for grad_accum in GRAD_ACCUMS:
        ranks = [torch.load(tmp_path / f"rank{r}-accum{grad_accum}.pt", weights_only=True) for r in (0, 1)]
        for name, tensor in ranks[0]["weights"].items():  # the same weights everywhere, to the bit
            assert torch.equal(ranks[1]["weights"][name], tensor), name
        assert ranks[0]["losses"] == ranks[1]["losses"]  # each logs the mean over the ranks
        # 2 ranks x batch b x grad_accum/2 each == 1 process x batch b x grad_accum, to float tolerance.
        alone, losses = unbroken_run(corpus_file, grad_accum, STEPS)
        assert ranks[0]["losses"] == pytest.approx(losses, rel=1e-5)
        assert_close(ranks[0]["weights"], alone.model.state_dict())
        exchanged[grad_accum] = ranks[0]["exchanged"]
    # One gradient exchange a step (of every bucket), on its last micro-batch, even with two micro-batches per rank.
    buckets = exchanged[2][0]
    assert buckets >= 1 and exchanged[2] == [buckets * (step + 1) for step in range(STEPS)]
    assert exchanged[4] == exchanged[2]


def test_two_nodes_on_localhost_train_once_and_resume_in_one_process(tmp_path, corpus_file):
    args = two_nodes() + CLI_ARGS + ["--max-iters", "4", "--set", "eval_interval=2"]
    nodes = [launch(args, tmp_path) for _ in range(2)]
    results = [finish(process) for process in nodes]
    for status, output in results:
        assert status == 0, output[-3000:]
    # Rank 0 alone presents: one node shows the run, the other only torchrun's own lines.
    shown = [output for _, output in results if "done: step 4" in output]
    assert len(shown) == 1 and shown[0].count("step 2: train") == 1
    log = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "eval"] == [2, 4]  # written once, not once per rank
    assert [r["step"] for r in log if r["event"] == "step"] == [4]
    assert not list(tmp_path.glob(".m.pt.*"))  # no save left half-done

    # The checkpoint is plain: one process loads it, and resumes exactly where the two left off.
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert checkpoint.step == 4 and not any(name.startswith("module.") for name in checkpoint.model_state)
    assert len(checkpoint.rng_state["batch_streams"]) == 2  # each rank's batch sampler
    resumed = Trainer(replace(tiny_config(2), max_iters=6), open_corpus(corpus_file), resume=checkpoint)
    resumed_losses = [e.loss for e in resumed.run() if isinstance(e, StepEvent)]
    alone, losses = unbroken_run(corpus_file, 2, 6)
    assert resumed_losses == pytest.approx(losses[4:], rel=1e-5)
    assert_close(resumed.model.state_dict(), alone.model.state_dict())


def test_two_ranks_train_the_model_of_every_switch_as_one_process_does(tmp_path, corpus_file):
    """rope, RMSNorm, SwiGLU, QK-norm, an untied zero-initialised head, the embedding norm and x0
    mixing, all at once: under DDP as in one process (their dropout would differ: each rank has its own)."""
    switches = dict(rope=True, norm="rmsnorm", activation="swiglu", qk_norm=True, tie_head=False, zero_init=True,
                    embed_norm=True, x0_mix=True)
    assignments = [f"--set={key}={json.dumps(value)}" for key, value in switches.items()]
    status, output = finish(launch(["--standalone", "--nproc_per_node=2"] + CLI_ARGS + ["--max-iters", "4"]
                                   + assignments, tmp_path))
    assert status == 0, output[-3000:]
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert all(getattr(checkpoint.model_config, key) == value for key, value in switches.items())
    alone = Trainer(replace(tiny_config(2), max_iters=4, **switches), open_corpus(corpus_file))
    list(alone.run())
    assert_close(checkpoint.model_state, alone.model.state_dict())


def test_ranks_that_read_different_corpora_stop_with_one_clear_error(tmp_path, corpus_file, corpus_text):
    (tmp_path / "other.txt").write_text(corpus_text + "more")
    node = two_nodes()
    nodes = [launch(node + CLI_ARGS + ["--max-iters", "4"] + data, tmp_path) for data in ([], ["--data", "other.txt"])]
    for status, output in (finish(process) for process in nodes):
        assert status != 0
        errors = [line for line in output.splitlines() if "error:" in line and line.startswith("minigpt-train")]
        assert len(errors) == 1 and "the ranks disagree on the corpus's length in characters" in errors[0], output
    assert not (tmp_path / "m.pt").exists()


def test_a_killed_rank_ends_the_run_with_one_clear_error_and_a_loadable_checkpoint(tmp_path, corpus_file):
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the rank's process through /proc (Linux)")
    # A checkpoint of one process resumes under torchrun (the other way round from the test above).
    alone, _ = unbroken_run(corpus_file, 2, 2)
    save_checkpoint(tmp_path / "m.pt", alone.checkpoint())
    args = ["--standalone", "--nproc_per_node=2"] + CLI_ARGS + ["--max-iters", "1000000", "--set", "eval_interval=2"]
    process = launch(args, tmp_path, start_new_session=True)
    try:
        wait_for_saves(tmp_path / "m.jsonl", process, after_step=4)
        os.kill(rank_pid(process.pid, rank=1), signal.SIGKILL)
        status, output = finish(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert status != 0
    errors = [line for line in output.splitlines() if line.startswith("minigpt-train: error:")]
    assert len(errors) == 1, output[-3000:]
    assert "rank 0 lost contact with the other processes of the run" in errors[0]
    assert "m.pt keeps its last good weights" in errors[0]
    kept = load_checkpoint(tmp_path / "m.pt")
    assert kept.step >= 4 and kept.step % 2 == 0  # one of the saves, whole


def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step_with_one_save(tmp_path, corpus_file):
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the rank's process through /proc (Linux)")
    args = ["--standalone", "--nproc_per_node=2"] + CLI_ARGS + ["--max-iters", "1000000", "--set", "eval_interval=50"]
    process = launch(args, tmp_path, start_new_session=True)
    try:
        wait_for(tmp_path / "m.jsonl", process, lambda record: record["event"] == "step")
        os.kill(rank_pid(process.pid, rank=1), signal.SIGTERM)  # not rank 0: the collective must tell it
        _, output = finish(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "error:" not in output, output[-3000:]
    stopped = re.findall(r"stopped at step (\d+); checkpoint saved to m.pt", output)
    assert len(stopped) == 1, output[-3000:]  # rank 0 says it, once
    kept = load_checkpoint(tmp_path / "m.pt")
    assert kept.step == int(stopped[0]) and len(kept.rng_state["batch_streams"]) == 2


def wait_for_saves(log: Path, process: subprocess.Popen, after_step: int) -> None:
    """Wait until the metrics log shows an evaluation (and so a save) past after_step."""
    wait_for(log, process, lambda record: record["event"] == "eval" and record["step"] > after_step)


def wait_for(log: Path, process: subprocess.Popen, wanted: Callable[[dict], bool]) -> None:
    """Wait until the metrics log holds a record that is wanted."""
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while not any(wanted(record) for record in logged(log)):
        assert process.poll() is None, finish(process)[1][-3000:]
        assert time.monotonic() < deadline, "the run did not get that far"
        time.sleep(0.05)


def logged(log: Path) -> list[dict]:
    """The records of the metrics log written so far (a line being written is left for later)."""
    text = log.read_text() if log.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def rank_pid(torchrun_pid: int, rank: int) -> int:
    """The process id of one rank: the child of torchrun whose environment says RANK=rank."""
    children = Path(f"/proc/{torchrun_pid}/task/{torchrun_pid}/children").read_text().split()
    for child in children:
        variables = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in variables:
            return int(child)
    raise AssertionError(f"no rank {rank} among torchrun's children {children}")


# In this process, without torchrun: the rules that need no second rank.

def test_grad_accum_must_be_shared_evenly_among_the_processes():
    assert micro_steps(8, 4) == 2 and micro_steps(3, 1) == 3
    with pytest.raises(ConfigError, match=r"grad_accum = 3 must be a multiple of the 2 processes.*--grad-accum 2"):
        micro_steps(3, 2)
    with pytest.raises(ConfigError, match="grad_accum = 0: expected a value from 1"):
        cfg.resolve("tiny", assignments=["grad_accum=0"])


@pytest.mark.parametrize("variables, message", [
    ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK='one', WORLD_SIZE='2': expected integers"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 with WORLD_SIZE=2: expected 0 <= RANK < WORLD_SIZE"),
    ({"RANK": "0", "WORLD_SIZE": "2", "MINIGPT_DIST_TIMEOUT": "soon"},
     "MINIGPT_DIST_TIMEOUT='soon': expected a positive number of seconds"),
])
def test_a_bad_torchrun_environment_is_one_clear_error(monkeypatch, variables, message):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DistributedError, match=re.escape(message)):
        from_environment()
        timeout_seconds()


def test_outside_torchrun_there_is_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert from_environment() is None


def test_a_resume_with_another_grad_accum_keeps_the_streams_it_has_and_says_so(tmp_path, corpus_file):
    first, _ = unbroken_run(corpus_file, 1, 3)
    save_checkpoint(tmp_path / "one.pt", first.checkpoint())
    resumed = Trainer(tiny_config(2), open_corpus(corpus_file), resume=load_checkpoint(tmp_path / "one.pt"))
    assert resumed.notes == ["the checkpoint holds 1 batch stream(s) and grad_accum is 2: the new ones start from "
                             "their seed, so the data order differs from an unbroken run's"]
    assert torch.equal(resumed.streams[0].generator.get_state(), first.streams[0].generator.get_state())
    fresh = Trainer(tiny_config(2), open_corpus(corpus_file))
    assert torch.equal(resumed.streams[1].generator.get_state(), fresh.streams[1].generator.get_state())
