"""The evaluations: fixed windows during a run, the whole validation split at its end."""

from __future__ import annotations

import math

import pytest
import torch

from minigpt.evaluate import FixedWindows, bits_per_character, score_batches, score_split, window_plan
from minigpt.model import GPT, ModelConfig

CPU, FLOAT32 = torch.device("cpu"), torch.float32


@pytest.fixture
def tiny_model() -> GPT:
    """A small model in float64, so that a token-by-token reference agrees with a batched pass to 1e-9."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=11, block_size=8, d_model=16, n_heads=2, n_layers=2)).double()
    with torch.no_grad():  # weights far from their tiny initial values: the predictions depend on the context
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def split(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(11, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def token_by_token(model: GPT, data: torch.Tensor, context_start) -> float:
    """The mean loss, one forward pass per token: token p is predicted from data[context_start(p):p]."""
    losses = []
    for p in range(1, len(data)):
        context = data[context_start(p):p].long()[None]
        logits, _ = model(context)
        losses.append(-torch.log_softmax(logits[0, -1], dim=-1)[int(data[p])].item())
    return sum(losses) / len(losses)


@pytest.mark.parametrize(("n", "block", "stride"), [
    (9, 8, 4),  # a single window
    (10, 8, 4),
    (100, 8, 4),
    (101, 8, 3),  # the strides do not reach the end exactly
    (57, 8, 8),  # windows side by side
    (40, 8, 1),  # a window a token
    (1000, 64, 32),
])
def test_every_token_after_the_first_is_scored_once_with_context(n, block, stride):
    plan = window_plan(n, block, stride)
    scored = [start + 1 + j for start, first in plan for j in range(first, block)]
    assert sorted(scored) == list(range(1, n))  # each target once, none outside the split
    assert plan[0] == (0, 0)  # the split's first tokens: a context that grows from one token
    for start, first in plan[1:]:
        assert first >= block - stride  # later tokens see at least block - stride tokens before them
        assert start + block + 1 <= n


def test_a_plan_refuses_a_stride_that_would_skip_tokens():
    with pytest.raises(ValueError, match="stride 9 must be from 1 to block_size 8"):
        window_plan(100, 8, 9)


def test_the_split_score_equals_a_token_by_token_reference(tiny_model):
    data = split(61)  # 61 tokens, block 8, stride 4: the last window does not fall on the stride
    block, stride = 8, 4
    starts = list(range(0, len(data) - block - 1, stride)) + [len(data) - block - 1]

    def window_start(p):  # the first window that reaches token p
        return next(s for s in starts if s + block >= p)

    score = score_split(tiny_model, data, block, batch_size=3, chars_per_token=1.0, device=CPU, dtype=FLOAT32,
                        stride=stride)
    assert score.tokens == len(data) - 1
    assert score.loss == pytest.approx(token_by_token(tiny_model, data, window_start), abs=1e-9)
    assert score.bpc == pytest.approx(score.loss / math.log(2))


def test_stride_one_gives_every_token_the_full_context(tiny_model):
    data = split(30, seed=2)
    score = score_split(tiny_model, data, 8, batch_size=4, chars_per_token=1.0, device=CPU, dtype=FLOAT32, stride=1)
    assert score.loss == pytest.approx(token_by_token(tiny_model, data, lambda p: max(p - 8, 0)), abs=1e-9)


def test_the_split_score_is_deterministic_and_does_not_depend_on_the_batch(tiny_model):
    data = split(500, seed=3)
    scores = [score_split(tiny_model, data, 8, batch_size=b, chars_per_token=2.5, device=CPU, dtype=FLOAT32)
              for b in (7, 7, 16)]
    assert scores[0] == scores[1]  # the same weights score the same, to the bit
    assert scores[2].loss == pytest.approx(scores[0].loss, abs=1e-12)
    assert scores[0].bpc == pytest.approx(bits_per_character(scores[0].loss, 2.5))
    assert scores[0].tokens == 499


def test_the_split_score_runs_the_model_on_one_shape_only(tiny_model):
    shapes = []
    tiny_model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    score_split(tiny_model, split(101), 8, batch_size=5, chars_per_token=1.0, device=CPU, dtype=FLOAT32)
    assert set(shapes) == {(5, 8)}  # the batch of training: a compiled model is not compiled again
    assert len(shapes) == score_batches(101, 8, 5)  # as many batches as a time budget keeps time for


def test_a_long_split_is_scored_on_its_first_tokens(tiny_model, monkeypatch):
    monkeypatch.setattr("minigpt.evaluate.SCORED_TOKENS", 50)
    data = split(200, seed=5)
    score = score_split(tiny_model, data, 8, batch_size=4, chars_per_token=1.0, device=CPU, dtype=FLOAT32)
    assert score.tokens == 49
    assert score == score_split(tiny_model, data[:50], 8, batch_size=4, chars_per_token=1.0, device=CPU,
                                dtype=FLOAT32)


def test_fixed_windows_read_the_same_text_at_every_evaluation(tiny_model):
    data = split(400, seed=4)
    windows = FixedWindows(data, batch_size=4, block_size=8, batches=3, seed=7)
    again = FixedWindows(data, batch_size=4, block_size=8, batches=3, seed=7)
    other = FixedWindows(data, batch_size=4, block_size=8, batches=3, seed=8)
    assert torch.equal(windows.inputs, again.inputs) and not torch.equal(windows.inputs, other.inputs)
    assert windows.inputs.shape == (3, 4, 8)
    assert torch.equal(windows.inputs[..., 1:], windows.targets[..., :-1])  # targets: the next tokens
    first = windows.loss(tiny_model, CPU, FLOAT32)
    assert windows.loss(tiny_model, CPU, FLOAT32) == first  # the same weights, the same loss
    expected = sum(tiny_model(x.long(), y.long())[1].item()
                   for x, y in zip(windows.inputs, windows.targets, strict=True)) / 3
    assert first == pytest.approx(expected, abs=1e-12)
    with torch.no_grad():
        tiny_model.head.weight.mul_(0.5)
    assert windows.loss(tiny_model, CPU, FLOAT32) != first  # it moves only with the model


def test_fixed_windows_reach_the_last_token_of_a_split_and_no_further():
    data = torch.arange(9, dtype=torch.uint8)  # one window fits: tokens 0-7, targets 1-8
    windows = FixedWindows(data, batch_size=2, block_size=8, batches=1, seed=0)
    assert windows.targets[0, 0].tolist() == list(range(1, 9))
