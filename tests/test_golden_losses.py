"""A fixed-seed run logs the same losses today as on the day they were recorded.

The losses in data/golden_losses.json were recorded from the code as it was before
the training loop and the package were reorganised (issue 20): a refactor that
changes what the model computes, the batches it draws or the order of the
optimizer's work shows up here as a different loss at some step.

The run is in float64, so that the figures do not depend on the CPU's SIMD
width (float32 matmuls sum in a different order on AVX2 and AVX-512, and 200
steps of training grow that rounding past 1e-6). Regenerate the file only for
a change that is meant to alter training:
    python -m tests.test_golden_losses
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import Corpus
from minigpt.trainer import StepEvent, Trainer

GOLDEN = Path(__file__).parent / "data" / "golden_losses.json"
WORDS = ("the", "king", "shall", "speak", "and", "we", "hear", "him", "now", "love", "is", "not", "a", "fool",
         "to", "die", "for", "my", "lord", "sweet")


def golden_text(characters: int = 20_000) -> str:
    """Made-up lines of words, the same on every machine and Python (a small LCG, not random)."""
    state, words = 12345, []
    while sum(len(w) + 1 for w in words) < characters:
        state = (1103515245 * state + 12345) % 2**31
        word = WORDS[state % len(WORDS)]
        words.append(word + (",\n" if state % 7 == 0 else "." if state % 11 == 0 else ""))
    return " ".join(words)[:characters]


def golden_run(tokenizer: str) -> list[float]:
    """The step losses of `--preset tiny` (200 steps) on golden_text, in float64."""
    overrides = {"dtype": "float32", "device": "cpu", "tokenizer": tokenizer}
    if tokenizer == "bpe":
        overrides["vocab_size"] = 300
    config = cfg.resolve("tiny", flags=overrides)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        trainer = Trainer(config, Corpus.from_text(golden_text(), "golden"))
        return [event.loss for event in trainer.run() if isinstance(event, StepEvent)]
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_a_fixed_seed_run_logs_the_recorded_losses(tokenizer):
    recorded = json.loads(GOLDEN.read_text())[tokenizer]
    losses = golden_run(tokenizer)
    assert len(losses) == len(recorded) == 200
    worst = max(range(200), key=lambda i: abs(losses[i] - recorded[i]))
    assert losses == pytest.approx(recorded, abs=1e-6, rel=0), \
        f"step {worst + 1}: {losses[worst]!r} now, {recorded[worst]!r} recorded"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({kind: golden_run(kind) for kind in ("char", "bpe")}, indent=0) + "\n")
    print(f"wrote {GOLDEN}")
