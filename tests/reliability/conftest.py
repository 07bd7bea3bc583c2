"""Fixtures for the reliability suite (helpers are in reliability_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_helpers import TEXT, one_torch_thread, tiny_trainer


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A checkpoint of a tiny model trained for a few steps on TEXT (made once)."""
    path = tmp_path_factory.mktemp("trained") / "model.pt"
    with one_torch_thread():
        for _ in tiny_trainer(path).run():
            pass
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture
def workdir(tmp_path, trained) -> Path:
    """A fresh folder laid out as a user's: data/input.txt and checkpoints/model.pt."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/input.txt").write_text(TEXT)
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(trained, tmp_path / "checkpoints/model.pt")
    return tmp_path
