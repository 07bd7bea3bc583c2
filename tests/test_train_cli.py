"""The minigpt-train command end to end, run as a user would in a fresh folder."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minigpt.plumbing.checkpoint import load_checkpoint

TRAIN = [sys.executable, "-m", "train_cli"]


def run(args, cwd, **kwargs):
    return subprocess.run(TRAIN + args, cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def test_trains_on_the_builtin_corpus_then_resumes(tmp_path):
    first = run(["--preset", "tiny", "--max-iters", "30", "--set", "eval_interval=15"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "built-in" in first.stderr and "step 30" in first.stderr
    done = first.stderr.strip().splitlines()[-1]
    assert done.startswith("done: step 30, final val loss ") and "bits/char, the whole validation split" in done
    assert load_checkpoint(tmp_path / "checkpoints/model.pt").step == 30
    log = [json.loads(line) for line in (tmp_path / "checkpoints/model.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "eval"] == [0, 15, 30]

    again = run(["--preset", "tiny", "--max-iters", "40"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming checkpoints/model.pt at step 30" in again.stderr
    assert load_checkpoint(tmp_path / "checkpoints/model.pt").step == 40


def test_trains_on_a_given_file(tmp_path, corpus_text):
    (tmp_path / "words.txt").write_text(corpus_text)
    result = run(["--preset", "tiny", "--max-iters", "10", "--data", "words.txt", "--out", "w.pt"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "words.txt" in result.stderr
    assert load_checkpoint(tmp_path / "w.pt").step == 10


@pytest.mark.parametrize("args, message", [
    (["--set", "lr=-1"], "minigpt-train: error: --set: lr = -1: expected a number from 0 to 1"),
    (["--set", "lrate=1"], "unknown key 'lrate'"),
    (["--data", "missing.txt"], "missing.txt: no such file"),
    (["--resume", "--out", "none.pt"], "none.pt: no checkpoint to resume from"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    result = run(["--preset", "tiny", *args], tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_documents_every_hyperparameter(tmp_path):
    from minigpt.plumbing.config import field_specs

    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for name, spec in field_specs().items():
        assert (spec.metadata["flag"] or "--" + name.replace("_", "-")) in result.stdout
    assert "--time DURATION" in result.stdout


def test_ctrl_c_saves_once_and_exits_cleanly(tmp_path):
    process = subprocess.Popen(TRAIN + ["--preset", "tiny", "--max-iters", "100000", "--set", "eval_interval=100000"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    log = tmp_path / "checkpoints/model.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text()):  # training is under way once a step is logged
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # a second Ctrl+C must not break the save
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "checkpoint saved to checkpoints/model.pt" in stderr
    assert load_checkpoint(tmp_path / "checkpoints/model.pt").step > 0
