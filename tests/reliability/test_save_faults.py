"""A full disk or a read-only folder during a save: a warning, the previous
checkpoint intact, training goes on; if the last save fails too, one clear
error line. The OSError is injected into the real command (faultrun.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import error_line, train

from minigpt.plumbing.checkpoint import load_checkpoint

ARGS = ["--preset", "tiny", "--max-iters", "30", "--set", "eval_interval=10", "--set", "eval_iters=1", "--no-sample"]
STRERROR = {"disk_full": "No space left on device", "read_only": "Read-only file system"}


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("kind", ["disk_full", "read_only"])
def test_one_failed_save_is_a_warning_and_training_goes_on(workdir, kind):
    result = train(ARGS + ["--from-scratch"], workdir, fault={"kind": kind, "saves": [2]})
    assert result.returncode == 0, result.stderr
    assert f"warning: could not save checkpoints/model.pt: {STRERROR[kind]}" in result.stderr
    assert "the previous checkpoint is intact and training goes on" in result.stderr
    assert load_checkpoint(workdir / "checkpoints/model.pt").step == 30
    assert leftovers(workdir / "checkpoints") == []


@pytest.mark.parametrize("kind", ["disk_full", "read_only"])
def test_when_every_later_save_fails_the_run_ends_in_one_clear_error(workdir, kind):
    record = workdir / "saves.txt"
    result = train(ARGS + ["--from-scratch"], workdir, fault={"kind": kind, "from_save": 2, "record": str(record)})
    error_line(result, "minigpt-train", f"could not save checkpoints/model.pt: {STRERROR[kind]}",
               "earlier checkpoint there is intact", "free some space or pass another --out", alone=False)
    assert record.read_text().split() == ["1", "2", "3"]  # it kept training and trying
    assert load_checkpoint(workdir / "checkpoints/model.pt").step == 10  # the last good save
    assert leftovers(workdir / "checkpoints") == []


def test_a_full_disk_for_the_metrics_log_does_not_stop_training(workdir):
    result = train(ARGS + ["--from-scratch", "--log", "/dev/full"], workdir)  # every write: ENOSPC
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot write the metrics log /dev/full (No space left on device)") == 1
    assert load_checkpoint(workdir / "checkpoints/model.pt").step == 30


def test_an_unwritable_out_folder_is_refused_before_training(workdir):
    (workdir / "blocker").write_text("a file where a folder should be")
    result = train(ARGS + ["--out", "blocker/model.pt"], workdir)
    error_line(result, "minigpt-train", "blocker: cannot write a checkpoint there", "--out", alone=False)
    assert "step 10" not in result.stderr  # it did not train first
