"""The BPE tokenizer inside a run: training, bits per character, checkpoints,
resume, streaming generation with characters split across tokens, and
minigpt-tokenize."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from minigpt.bpe import BPETokenizer
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.session import open_session
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import _pieces, generate
from minigpt.trainer import EvalEvent, StepEvent, Trainer
from tokenize_cli import main as tokenize_main

# Accents, CJK and emoji: characters of two, three and four bytes, which BPE tokens can split.
WORLDLY = ("Où est la bibliothèque ? Ça va très bien, merci. 東京は大きな都市です。"
           "Let's meet at the café 🙂 and talk about naïve résumés. 🚀🌍 ") * 30


@pytest.fixture
def bpe_config(tiny_config):
    return replace(tiny_config, tokenizer="bpe", vocab_size=300)


@pytest.fixture
def worldly() -> Corpus:
    return Corpus.from_text(WORLDLY, "worldly")


def test_a_bpe_run_trains_saves_and_resumes_exactly(tmp_path, bpe_config, worldly):
    unbroken = Trainer(replace(bpe_config, max_iters=20), worldly)
    losses = [e.loss for e in unbroken.run() if isinstance(e, StepEvent)]
    assert isinstance(unbroken.tokenizer, BPETokenizer) and unbroken.model_config.vocab_size == 300
    assert unbroken.splits.train_chars_per_token > 1, "merges make tokens longer than a character"

    first = Trainer(replace(bpe_config, max_iters=10), worldly, checkpoint_path=tmp_path / "m.pt")
    list(first.run())
    saved = load_checkpoint(tmp_path / "m.pt")  # weights_only: the merges are plain lists
    assert saved.tokenizer.to_dict() == first.tokenizer.to_dict()
    second = Trainer(replace(bpe_config, max_iters=20), worldly, resume=saved)
    resumed = [e.loss for e in second.run() if isinstance(e, StepEvent)]
    assert resumed == losses[10:], "a resumed BPE run continues exactly as an unbroken one"


def test_bits_per_character_uses_each_splits_characters_per_token(bpe_config, worldly):
    trainer = Trainer(bpe_config, worldly)
    evaluation = next(e for e in trainer.run() if isinstance(e, EvalEvent))
    splits = trainer.splits
    assert evaluation.val_bpc == pytest.approx(evaluation.val_loss / math.log(2) / splits.val_chars_per_token)
    assert evaluation.train_bpc == pytest.approx(evaluation.train_loss / math.log(2) / splits.train_chars_per_token)
    assert len(splits.val) < int(worldly.length * bpe_config.val_fraction), "fewer tokens than characters"


def test_the_merges_are_learned_from_the_training_split_only(bpe_config):
    val_only = "zyzzyva " * 50  # a word that appears only in the held-out end (a tenth of the text)
    corpus = Corpus.from_text(WORLDLY * 2 + val_only, "two parts")
    assert len(val_only) < corpus.length * 0.1
    tokenizer = Trainer(replace(bpe_config, val_fraction=0.1), corpus).tokenizer
    assert tokenizer.encode("zyzzyva") == list(b"zyzzyva"), "no merge was spent on text the model is judged on"


def test_a_character_split_across_tokens_is_shown_once_whole():
    bytes_only = BPETokenizer([])  # no merges: every byte is a token, so "🙂" is four tokens
    tokens = iter(bytes_only.encode("é🙂!"))
    pieces = [p.text for p in _pieces(tokens, bytes_only, SamplingSettings(max_new_tokens=100), None)]
    assert pieces == ["", "é", "", "", "", "🙂", "!"]


def test_generation_shows_every_byte_once_and_never_half_a_character(bpe_config, worldly):
    trainer = Trainer(replace(bpe_config, max_iters=30), worldly)
    list(trainer.run())
    model, tokenizer = trainer.snapshot(), trainer.tokenizer
    for seed in range(4):
        pieces = list(generate(model, tokenizer, "東京", SamplingSettings(max_new_tokens=60, seed=seed)))
        assert "".join(p.text for p in pieces) == tokenizer.decode([p.token for p in pieces])


def test_bytes_that_are_not_utf8_become_a_replacement_character():
    bytes_only = BPETokenizer([])
    tokens = iter([0xE6, 0x9D, ord("a"), 0xFF])  # a cut-short character, a letter, a byte UTF-8 never uses
    text = "".join(p.text for p in _pieces(tokens, bytes_only, SamplingSettings(max_new_tokens=4), None))
    assert text == "\ufffda\ufffd"


def test_a_character_the_corpus_never_had_is_its_bytes(bpe_config, worldly):
    trainer = Trainer(bpe_config, worldly)
    model, tokenizer = trainer.snapshot(), trainer.tokenizer
    prompt = "Ωμέγα ☃ 𝄞"  # none of these characters is in the corpus
    assert tokenizer.decode(tokenizer.encode(prompt)) == prompt
    text = "".join(p.text for p in generate(model, tokenizer, prompt, SamplingSettings(max_new_tokens=20, seed=0)))
    assert isinstance(text, str)


def test_stop_strings_still_stop_a_bpe_generation(bpe_config, worldly):
    trainer = Trainer(replace(bpe_config, max_iters=40), worldly)
    list(trainer.run())
    model, tokenizer = trainer.snapshot(), trainer.tokenizer
    free = "".join(p.text for p in generate(model, tokenizer, "Où", SamplingSettings(max_new_tokens=80, seed=1)))
    stop = next(c for c in free if c.strip())  # a character that does come out
    text = "".join(p.text for p in generate(model, tokenizer, "Où",
                                            SamplingSettings(max_new_tokens=80, seed=1, stop=(stop,))))
    assert stop not in text and free.startswith(text)


def test_a_resumed_model_keeps_its_tokenizer_and_says_so(tmp_path, bpe_config):
    data = tmp_path / "input.txt"
    data.write_text(WORLDLY)
    session = open_session(bpe_config, {"tokenizer", "vocab_size"}, data, tmp_path / "m.pt")
    list(session.trainer.run())
    again = open_session(replace(bpe_config, tokenizer="char"), {"tokenizer"}, data, tmp_path / "m.pt")
    assert again.trainer.tokenizer.kind == "bpe"
    assert "ignoring tokenizer = char" in again.notes[0]
    bigger = open_session(replace(bpe_config, vocab_size=512), {"vocab_size"}, data, tmp_path / "m.pt")
    assert bigger.trainer.tokenizer.vocab_size == 300 and "ignoring vocab_size = 512" in bigger.notes[0]


def test_minigpt_tokenize_shows_the_split_and_the_compression(tmp_path, capsys):
    data = tmp_path / "input.txt"
    data.write_text(WORLDLY)
    text = "café 🙂 東京"
    assert tokenize_main(["--data", str(data), "--tokenizer", "bpe", "--vocab-size", "300", "--text", text]) == 0
    out = capsys.readouterr().out
    assert "byte-level BPE tokenizer" in out and "300 tokens (256 bytes + 44 merges)" in out
    shown = out.replace("│", "").replace("‹", "").replace("›", "")  # the marks between and around tokens
    assert "characters per token" in out and "ids: " in out and "café 🙂 東京" in shown, "whole characters shown"
    ids = [int(i) for i in out.split("ids: ")[1].split()]
    tokenizer = BPETokenizer.train(WORLDLY[: int(len(WORLDLY) * 0.9)], 300)
    assert ids == tokenizer.encode("café 🙂 東京"), "the same merges as training would learn"


def test_minigpt_tokenize_refuses_bad_input_in_one_line(tmp_path, capsys):
    data = tmp_path / "input.txt"
    data.write_text(WORLDLY)
    assert tokenize_main(["--data", str(data), "--vocab-size", "99999", "--text", "x"]) == 2
    assert "vocab_size = 99999" in capsys.readouterr().err
    assert tokenize_main(["--data", str(data), "--text", "¿qué?"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'¿'" in err and "--tokenizer bpe" in err and len(err.splitlines()) == 1


def test_learning_the_merges_reports_progress_to_both_front_ends(tmp_path, bpe_config):
    data = tmp_path / "input.txt"
    data.write_text(WORLDLY)
    messages = []
    open_session(bpe_config, set(), data, tmp_path / "m.pt", progress=messages.append)
    learning = [m for m in messages if m.startswith("learning the tokenizer")]
    assert learning and learning[-1].endswith("44/44 merges") and "░" not in learning[-1], "ends full"
