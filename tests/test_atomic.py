"""Crash-safe writes (minigpt.plumbing.atomic) give a file the mode a plain write would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from minigpt.plumbing.atomic import atomic_write, atomic_write_bytes
from minigpt.plumbing.checkpoint import save_checkpoint
from minigpt.plumbing.completions import export_markdown
from minigpt.plumbing.jsonlines import append_record
from minigpt.plumbing.training_state import capture
from minigpt.trainer import Trainer


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_its_mode_from_the_umask_as_a_plain_write_would(tmp_path, umask, tiny_config, corpus):
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    expected = 0o666 & ~umask
    assert mode(plain) == expected
    atomic_write_bytes(tmp_path / "copied.txt", b"text")  # as the app's .copied.txt
    save_checkpoint(tmp_path / "model.pt", capture(Trainer(tiny_config, corpus)))
    export_markdown([], tmp_path / "model.completions.md")
    append_record(tmp_path / "model.jsonl", {"event": "step"})
    for name in ("copied.txt", "model.pt", "model.completions.md", "model.jsonl"):
        assert mode(tmp_path / name) == expected, name
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left"


def test_writing_over_a_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "settings.toml"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
