"""The loss or the weights become NaN or inf: training stops with a clear
message, and the last good checkpoint is kept, never overwritten by them."""

from __future__ import annotations

import math
import re

import pytest
import torch
from reliability_helpers import error_line, tiny_trainer, train

from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.trainer import TrainingDiverged

ABSURD = ["--set", "lr=1", "--set", "weight_decay=10", "--set", "warmup_iters=0", "--set", "grad_clip=0",
          "--set", "eval_interval=1", "--set", "dtype=float32", "--max-iters", "300", "--no-sample"]


def finite(checkpoint) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in checkpoint.model_state.values())


def test_an_absurd_learning_rate_stops_training_and_keeps_finite_weights(workdir):
    # AdamW's decoupled decay multiplies every weight by 1 - lr * weight_decay = -9 per step: overflow in ~40 steps.
    result = train(["--preset", "tiny", *ABSURD], workdir)
    line = error_line(result, "minigpt-train", "try a lower lr", "checkpoints/model.pt keeps its last good weights",
                      alone=False)
    assert re.search(r"(loss|weights) became .*(nan|inf)", line, re.IGNORECASE), line
    diverged_at = int(re.search(r"at step (\d+)", line).group(1))
    kept = load_checkpoint(workdir / "checkpoints/model.pt")
    assert finite(kept) and 10 <= kept.step < diverged_at


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_nan_or_inf_loss_stops_before_the_update(tmp_path, value):
    trainer = tiny_trainer(tmp_path / "m.pt")
    list(trainer.run())
    good = (tmp_path / "m.pt").read_bytes()
    trainer.forward_model = lambda x, y: (None, torch.tensor(value, requires_grad=True))
    trainer.config = trainer.config.__class__(**{**trainer.config.to_dict(), "max_iters": 20})
    with pytest.raises(TrainingDiverged, match=f"loss became {value} at step 11"):
        list(trainer.run())
    assert (tmp_path / "m.pt").read_bytes() == good


def test_weights_that_overflow_just_before_an_evaluation_are_never_saved(tmp_path):
    trainer = tiny_trainer(tmp_path / "m.pt")
    list(trainer.run())  # a good checkpoint at step 10
    good = (tmp_path / "m.pt").read_bytes()
    step = trainer.optimizer.step

    def overflowing_step(*args, **kwargs):
        step(*args, **kwargs)
        if trainer.step == 19:  # this update ends step 20, which evaluates and saves
            trainer.model.head.weight.data[0, 0] = math.inf

    trainer.optimizer.step = overflowing_step
    trainer.config = trainer.config.__class__(**{**trainer.config.to_dict(), "max_iters": 20})
    with pytest.raises(TrainingDiverged, match="weights became inf or NaN at step 20"):
        list(trainer.run())
    assert (tmp_path / "m.pt").read_bytes() == good


def test_a_stop_request_never_saves_non_finite_weights(tmp_path):
    trainer = tiny_trainer(tmp_path / "m.pt")
    list(trainer.run())
    good = (tmp_path / "m.pt").read_bytes()
    with torch.no_grad():
        trainer.model.token_embedding.weight[3] = math.nan
    with pytest.raises(TrainingDiverged, match="m.pt keeps its last good weights"):
        list(trainer.save())  # what Ctrl+C between evaluations does
    assert (tmp_path / "m.pt").read_bytes() == good
