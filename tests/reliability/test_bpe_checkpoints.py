"""Every checkpoint guarantee holds for BPE checkpoints too: cut short,
flipped bytes, booby-trapped pickles and other programs' files are refused
in one clear line, and so are merges that make no sense and a tokenizer
whose vocabulary does not match the model's."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from reliability_helpers import TEXT, error_line, generate, one_torch_thread, tiny_trainer
from test_checkpoint_input import CASE_NAMES, bad_files, saved, wrapped

from minigpt.plumbing.checkpoint import _HEADER, CheckpointError, load_checkpoint
from minigpt.plumbing.corpus import Corpus
from minigpt.trainer import Trainer


@pytest.fixture(scope="module")
def bpe_trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "model.pt"
    config = replace(tiny_trainer().config, tokenizer="bpe", vocab_size=280)
    with one_torch_thread():
        list(Trainer(config, Corpus.from_text(TEXT, "input.txt"), checkpoint_path=path).run())
    return path


def with_tokenizer(good: bytes, tokenizer: dict) -> bytes:
    content = torch.load(io.BytesIO(good[_HEADER.size:]), weights_only=True)
    return wrapped(saved(dict(content, tokenizer=tokenizer)))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_a_bad_bpe_checkpoint_is_refused_with_the_same_clear_errors(tmp_path, bpe_trained, name):
    content, words = bad_files(bpe_trained.read_bytes())[name]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / name)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / name}: ") and "\n" not in message
    assert all(word in message for word in words), (words, message)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("merges, words", [
    ([[1, 2], [999, 3]], ["bad model description", "999"]),  # a token that does not exist (yet)
    ("not a list", ["bad model description"]),
    ([[1, 2, 3]], ["bad model description"]),
])
def test_merges_that_make_no_sense_are_refused(tmp_path, bpe_trained, merges, words):
    path = tmp_path / "m.pt"
    path.write_bytes(with_tokenizer(bpe_trained.read_bytes(), {"kind": "bpe", "merges": merges}))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_a_vocabulary_that_does_not_match_the_model_is_one_clear_line(tmp_path, bpe_trained):
    saved_merges = load_checkpoint(bpe_trained).tokenizer.to_dict()["merges"]
    (tmp_path / "m.pt").write_bytes(with_tokenizer(bpe_trained.read_bytes(),
                                                   {"kind": "bpe", "merges": saved_merges[:-4]}))
    result = generate(["--checkpoint", "m.pt", "--prompt", "First"], tmp_path)
    error_line(result, "minigpt-generate", "m.pt: ", "tokenizer has 276 tokens, model expects 280")


def test_a_good_bpe_checkpoint_completes_any_prompt(tmp_path, bpe_trained):
    result = generate(["--checkpoint", str(bpe_trained), "--prompt", "Première 🙂", "--max-new-tokens", "5"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Première 🙂")
