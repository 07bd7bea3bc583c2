"""minigpt-lab as a learner uses it: list, run (stopped by Ctrl+C and resumed), show and report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import lab_cli
from minigpt.plumbing.experiments import BUILTINS
from minigpt.plumbing.lab_record import load_record

TINY = ["--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "block_size=8",
        "--set", "batch_size=2", "--set", "eval_iters=1", "--set", "dtype=float32", "--set", "device=cpu"]
EXPERIMENT = 'question = "Narrow or wide?"\ncompare = "scale"\n[variants.narrow]\nd_model = 8\n[variants.wide]\n' \
             'd_model = 24\n'


@pytest.fixture(autouse=True)
def one_thread():
    """Models this small run faster on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def project(tmp_path, monkeypatch, corpus_text) -> Path:
    """A project folder, as the current directory, with a text and an experiment file."""
    (tmp_path / "text.txt").write_text(corpus_text)
    (tmp_path / "narrow-or-wide.toml").write_text(EXPERIMENT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lab(*args: str) -> int:
    return lab_cli.main(list(args))


def test_list_names_every_builtin_and_the_experiments_run_here(project, capsys):
    assert lab("list") == 0
    out = capsys.readouterr().out
    assert "width" in out and "At equal time, what does a wider model buy?" in out and "Run here" not in out
    assert lab("run", "narrow-or-wide.toml", "--steps", "4", "--data", "text.txt", *TINY) == 0
    capsys.readouterr()
    assert lab("list") == 0
    assert "narrow-or-wide     2/2 variants done, 4 steps per variant, on text.txt" in capsys.readouterr().out


def test_run_trains_each_variant_then_shows_the_table_and_the_conclusion(project, capsys):
    assert lab("run", "narrow-or-wide.toml", "--steps", "4", "--data", "text.txt", *TINY) == 0
    out, err = capsys.readouterr()
    assert "narrow-or-wide: Narrow or wide?" in err and "2 variants, 4 steps per variant" in err
    assert "done: " in err and "bits/char" in err
    table = out.splitlines()
    header = next(line for line in table if line.startswith("variant"))
    assert header.split() == ["variant", "parameters", "tokens", "seen", "steps", "time", "val", "loss", "bits/char",
                              "state"]
    assert any(line.startswith("narrow") and line.endswith("done") for line in table)
    assert "Conclusion: " in out and "did best" in out or "within the noise" in out
    assert (project / "checkpoints/lab/narrow-or-wide/wide.pt").exists()


def test_show_and_report_give_the_table_curves_samples_and_conclusion(project, capsys):
    lab("run", "narrow-or-wide.toml", "--steps", "4", "--data", "text.txt", *TINY)
    capsys.readouterr()
    assert lab("show", "narrow-or-wide") == 0
    shown = capsys.readouterr().out
    assert "validation: val bits per character by step" in shown  # the curves, as minigpt-runs draws them
    assert "Sample of narrow (step 4):" in shown and "Sample of wide (step 4):" in shown
    assert "Conclusion: " in shown
    assert lab("report", "narrow-or-wide.toml") == 0
    report = capsys.readouterr().out
    assert report.startswith("# narrow-or-wide: Narrow or wide?")
    assert "command: `minigpt-lab run narrow-or-wide.toml --steps 4 --data text.txt`" in report
    assert "| variant | parameters | tokens seen | steps | time | val loss | bits/char | state |" in report
    assert "```text\n" in report and "**Conclusion.** " in report


def test_show_of_a_part_done_experiment_says_what_is_left(project, capsys):
    (project / "checkpoints/lab/narrow-or-wide").mkdir(parents=True)
    lab("run", "narrow-or-wide.toml", "--steps", "4", "--data", "text.txt", *TINY)
    record = load_record(project / "checkpoints/lab/narrow-or-wide")
    path = project / "checkpoints/lab/narrow-or-wide/experiment.json"
    data = json.loads(path.read_text())
    data["done"], data["started"] = ["narrow"], ["narrow", "wide"]
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert lab("show", "narrow-or-wide") == 0
    out = capsys.readouterr().out
    assert "1 of 2 variants done: `minigpt-lab run narrow-or-wide.toml --steps 4 --data text.txt` runs the rest" in out
    assert "Conclusion" not in out and record is not None


@pytest.mark.parametrize("args, message", [
    (["run", "widht"], "no experiment named 'widht' (did you mean 'width'?)"),
    (["run", "width", "--time", "soon"], "--time 'soon': expected a duration such as 30s, 1m or 2.5m"),
    (["run", "width", "--time", "5s"], "--time 5s: each variant needs at least 10s"),
    (["run", "width", "--steps", "0"], "--steps 0: expected a number of steps, 1 or more"),
    (["run", "width", "--set", "time_budget=5"], "--set time_budget: every variant gets the same time"),
    (["run", "width", "--set", "lr=2"], "--set: lr = 2: expected a number from 0 to 1"),
    (["run", "width", "--data", "missing.txt"], "missing.txt: no such file"),
    (["run", "missing.toml"], "missing.toml: no such experiment file"),
    (["run", "then-and-now"], "then-and-now needs the config keys"),
    (["show", "width"], "checkpoints/lab/width: no results yet; run the experiment first"),
])
def test_bad_input_is_one_clear_line(project, capsys, args, message):
    if "then-and-now" in args and not BUILTINS["then-and-now"].missing_keys():
        pytest.skip("then-and-now runs: its keys have landed")
    assert lab(*args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("minigpt-lab: error: ") and len(err.strip().splitlines()) == 1


def test_ctrl_c_saves_the_variant_in_progress_and_run_resumes_it(project):
    """As a user would: minigpt-lab in its own process, Ctrl+C part-way through the first variant."""
    command = [sys.executable, "-m", "lab_cli", "run", "narrow-or-wide.toml", "--steps", "250", "--data", "text.txt",
               *TINY, "--set", "eval_interval=1000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    log = project / "checkpoints/lab/narrow-or-wide/narrow.jsonl"
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not (log.exists() and '"event": "step"' in log.read_text()) and process.poll() is None:
        assert time.monotonic() < deadline, "the first variant never logged a step"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopping after this step and saving" in err and "resumes it" in err
    record = load_record(project / "checkpoints/lab/narrow-or-wide")
    (in_progress,) = set(record.started) - set(record.done)  # the first variant, unless a fast machine finished it

    again = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{in_progress}: resumed at step " in again.stderr and "Conclusion: " in again.stdout
    assert load_record(project / "checkpoints/lab/narrow-or-wide").done == ("narrow", "wide")
