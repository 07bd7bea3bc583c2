"""Hostile checkpoints: cut short, flipped bytes, empty, booby-trapped pickles,
other programs' files, future versions, directories, and resuming onto a corpus
or shape the checkpoint does not fit. Each is one clear line; none is changed."""

from __future__ import annotations

import hashlib
import io
import pickle
import random

import pytest
import torch
from reliability_helpers import TEXT, error_line, generate, train

from minigpt.plumbing.checkpoint import _HEADER, FORMAT_VERSION, MAGIC, CheckpointError, load_checkpoint


def wrapped(payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    """payload behind a valid header and checksum."""
    return _HEADER.pack(MAGIC, version, hashlib.sha256(payload).digest()) + payload


def saved(content) -> bytes:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


class Trap:
    """Unpickling this would create the file 'pwned' in the working directory."""

    def __reduce__(self):
        return (open, ("pwned", "w"))


def bad_files(good: bytes) -> dict[str, tuple[bytes, list[str]]]:
    """name -> (content, words the error must hold)."""
    cut = ["not a MiniGPT checkpoint", "use a file written by minigpt-train"]
    corrupt = ["checkpoint is corrupt or cut short", "restore a copy or train a new model with --from-scratch"]
    rng = random.Random(0)
    flipped = bytearray(good)
    for offset in rng.sample(range(12, len(good)), 5):  # in the checksum and the payload
        flipped[offset] ^= 0xFF
    content = torch.load(io.BytesIO(good[_HEADER.size:]), weights_only=True)
    misfit = dict(content, model_config=dict(content["model_config"], d_model=64, n_heads=2))
    return {
        "empty.pt": (b"", cut),
        "cut-in-magic.pt": (good[:5], cut),
        "cut-in-header.pt": (good[:30], cut),
        "cut-after-header.pt": (good[:_HEADER.size], corrupt),
        "cut-in-half.pt": (good[: len(good) // 2], corrupt),
        "cut-last-byte.pt": (good[:-1], corrupt),
        "flipped.pt": (bytes(flipped), corrupt),
        "raw-pickle.pt": (pickle.dumps({"model": Trap()}), cut),
        "trapped.pt": (wrapped(saved({"model": Trap()})), ["payload cannot be read", "nothing in it was run"]),
        "other-program.pt": (saved({"model": content["model"], "iter_num": 5}), cut),
        "misfit.pt": (wrapped(saved(misfit)), ["weights do not fit the model", "minigpt-train"]),
        "future.pt": (wrapped(good[_HEADER.size:], version=FORMAT_VERSION + 1), ["newer than this MiniGPT reads",
                                                                                  "upgrade MiniGPT"]),
    }


CASE_NAMES = [
    "empty.pt", "cut-in-magic.pt", "cut-in-header.pt", "cut-after-header.pt", "cut-in-half.pt", "cut-last-byte.pt",
    "flipped.pt", "raw-pickle.pt", "trapped.pt", "other-program.pt", "misfit.pt", "future.pt"]


@pytest.fixture(scope="module")
def cases(trained):
    files = bad_files(trained.read_bytes())
    assert list(files) == CASE_NAMES
    return files


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_checkpoint_is_one_clear_line_and_runs_nothing(tmp_path, cases, name):
    content, words = cases[name]
    (tmp_path / name).write_bytes(content)
    result = generate(["--checkpoint", name, "--prompt", "First"], tmp_path)
    error_line(result, "minigpt-generate", f"{name}: ", *words)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["cut-in-half.pt", "flipped.pt", "trapped.pt"])
def test_training_never_overwrites_a_bad_checkpoint(workdir, cases, name):
    content, words = cases[name]
    (workdir / "checkpoints/model.pt").write_bytes(content)
    result = train(["--preset", "tiny", "--max-iters", "20"], workdir)
    error_line(result, "minigpt-train", "checkpoints/model.pt: ", *words)
    assert (workdir / "checkpoints/model.pt").read_bytes() == content
    assert not (workdir / "pwned").exists()


def test_every_truncation_point_is_caught(trained, tmp_path):
    good = trained.read_bytes()
    for keep in sorted(random.Random(1).sample(range(len(good)), 40)):
        (tmp_path / "cut.pt").write_bytes(good[:keep])
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / "cut.pt")


def test_a_directory_is_refused(workdir):
    (workdir / "models").mkdir()
    error_line(generate(["--checkpoint", "models"], workdir), "minigpt-generate", "models: is a directory")
    error_line(train(["--preset", "tiny", "--out", "models"], workdir), "minigpt-train", "models: is a directory")
    result = train(["--preset", "tiny", "--out", "models", "--from-scratch"], workdir)
    error_line(result, "minigpt-train", "models: is a directory", "--out", "models/model.pt", alone=False)


def test_resuming_onto_a_corpus_with_other_characters_is_refused(workdir):
    before = (workdir / "checkpoints/model.pt").read_bytes()
    (workdir / "data/input.txt").write_text(TEXT + "Zounds! Quoth the raven: 42%\n")
    result = train(["--preset", "tiny", "--max-iters", "20"], workdir)
    error_line(result, "minigpt-train", "not in the model's vocabulary", "'Z'", "'%'", "data/input.txt uses them",
               "--from-scratch", "another --out", alone=False)
    assert (workdir / "checkpoints/model.pt").read_bytes() == before
    fresh = train(["--preset", "tiny", "--max-iters", "5", "--out", "checkpoints/new.pt"], workdir)
    assert fresh.returncode == 0, fresh.stderr


def test_resuming_with_another_shape_keeps_the_checkpoints_and_says_so(workdir):
    (workdir / "run.toml").write_text("n_layers = 3\n")
    result = train(["--preset", "tiny", "--max-iters", "12", "--set", "d_model=64", "--config", "run.toml",
                    "--no-sample"], workdir)
    assert result.returncode == 0, result.stderr
    assert "note: the model shape and tokenizer come from checkpoints/model.pt; ignoring" in result.stderr
    assert "n_layers = 3" in result.stderr and "d_model = 64" in result.stderr and "--from-scratch" in result.stderr
    resumed = load_checkpoint(workdir / "checkpoints/model.pt")
    assert resumed.step == 12 and resumed.model_config.d_model == 32 and resumed.model_config.n_layers == 2
