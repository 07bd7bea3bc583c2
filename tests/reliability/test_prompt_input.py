"""Hostile prompts for minigpt-generate: empty, far longer than the context,
outside the vocabulary, full of control characters, a 1 MB paste."""

from __future__ import annotations

import pytest
import torch
from reliability_helpers import TEXT, error_line, generate

from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate as generate_pieces
from minigpt.tokenizer import CharTokenizer

CONTROL = "\x1b[2J\r\x08\x07"  # escape sequence (clear the screen), carriage return, backspace, bell
CONTROL_CHARACTERS = "\x1b\r\x08\x07"


def greedy(checkpoint, prompt: str, n: int) -> str:
    model = load_checkpoint(checkpoint).build_model().eval()
    settings = SamplingSettings(temperature=0, max_new_tokens=n)
    return "".join(p.text for p in generate_pieces(model, load_checkpoint(checkpoint).tokenizer, prompt, settings))


def test_empty_prompt_starts_from_a_newline(trained, tmp_path):
    result = generate(["--checkpoint", trained, "--prompt", "", "--max-new-tokens", "20", "--seed", "1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "generated 20 tokens" in result.stderr


def test_prompt_many_blocks_long_uses_its_last_block(trained, tmp_path):
    block = load_checkpoint(trained).model_config.block_size
    prompt = (TEXT * 3)[: block * 50]
    result = generate(["--checkpoint", trained, "--prompt", prompt, "--temperature", "0",
                       "--max-new-tokens", "30"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(prompt)
    assert result.stdout[len(prompt):].rstrip("\n") == greedy(trained, prompt[-block:], 30).rstrip("\n")


def test_characters_outside_the_vocabulary_are_listed(trained, tmp_path):
    result = generate(["--checkpoint", trained, "--prompt", "Quiz: 5 €"], tmp_path)
    unknown = load_checkpoint(trained).tokenizer.unknown_characters("Quiz: 5 €")
    assert "€" in unknown
    error_line(result, "minigpt-generate", "not in the model's vocabulary", *map(repr, unknown),
               "leave them out of the prompt")
    assert result.stdout == ""


def test_control_characters_in_a_prompt_are_named_never_sent_to_the_terminal(trained, tmp_path):
    result = generate(["--checkpoint", trained, "--prompt", f"hear{CONTROL}me"], tmp_path)
    line = error_line(result, "minigpt-generate", r"'\x1b'", r"'\r'", r"'\x08'", r"'\x07'")
    assert not any(c in line for c in CONTROL_CHARACTERS)


@pytest.fixture
def control_checkpoint(tmp_path):
    """A model whose vocabulary holds control characters, with random weights: it emits them."""
    torch.manual_seed(0)
    tokenizer = CharTokenizer("ab\n" + CONTROL)
    model = GPT(ModelConfig(vocab_size=tokenizer.vocab_size, block_size=16, d_model=16, n_heads=2, n_layers=1))
    path = tmp_path / "control.pt"
    save_checkpoint(path, Checkpoint(model.state_dict(), model.config, tokenizer, step=0, train_config={}))
    return path


def test_completions_and_prompts_cannot_inject_escape_codes(control_checkpoint, tmp_path):
    args = ["--checkpoint", control_checkpoint, "--prompt", "a\x1b[2Jb", "--temperature", "100",
            "--max-new-tokens", "300", "--seed", "3"]
    raw = "".join(p.text for p in generate_pieces(
        load_checkpoint(control_checkpoint).build_model().eval(), load_checkpoint(control_checkpoint).tokenizer,
        "a\x1b[2Jb", SamplingSettings(temperature=100, max_new_tokens=300, seed=3)))
    assert "\x1b" in raw and "\r" in raw  # the model does emit them
    result = generate(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a[2Jb")
    assert not any(c in result.stdout for c in CONTROL_CHARACTERS)
    assert "generated 300 tokens" in result.stderr


def test_a_one_megabyte_paste_is_cut_to_the_context(trained):
    checkpoint = load_checkpoint(trained)
    model, tokenizer = checkpoint.build_model().eval(), checkpoint.tokenizer
    paste = (TEXT * (2**20 // len(TEXT) + 1))[: 2**20]
    settings = SamplingSettings(temperature=0, max_new_tokens=20)
    pieces = generate_pieces(model, tokenizer, paste, settings)
    first = next(pieces).text
    tail = paste[-checkpoint.model_config.block_size:]
    assert first + "".join(p.text for p in pieces) == "".join(p.text for p in generate_pieces(model, tokenizer, tail,
                                                                                              settings))


def test_the_longest_command_line_prompt_works(trained, tmp_path):
    paste = (TEXT * 200)[: 120_000]  # Linux caps one argument at 128 KiB
    result = generate(["--checkpoint", trained, "--prompt", paste, "--max-new-tokens", "5"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(paste) and "generated 5 tokens" in result.stderr
