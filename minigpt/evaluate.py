"""How a model is scored: a loss that moves only with learning, and one figure to trust at the end.

During a run, every evaluation scores the same windows of text (FixedWindows),
drawn once from the run's seed: were they drawn anew each time, the curve would
move with which part of the text an evaluation happened to read, by more than
many of the effects one wants to see.

At the end of a run, score_split scores the whole validation split, each token
once, every token given context. The split is read through windows of
block_size tokens, each starting `stride` tokens after the one before (by
default half a block). The first window scores all of its tokens, so the
first tokens of the split see a context that grows from one token; each later
window scores only the tokens the windows before it did not reach, which have
at least block_size - stride tokens before them in the window; the last window
is laid against the end of the split. So a token's context is its block_size -
stride to block_size - 1 predecessors, the same whatever the batch, and the
figure is deterministic: the same weights always score the same. A split of
more than SCORED_TOKENS tokens is scored on its first SCORED_TOKENS, so that
the score stays a few seconds of a run (Tiny Shakespeare's validation split,
111,540 tokens, is scored whole).

Both run the model on batches of batch_size x block_size, the shape training
uses, and always contiguous in memory, so a compiled model (which is
specialised to its inputs' shapes and strides) is compiled once for them (the
last batch of a split is filled up with copies of its last window, which are
not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from minigpt.plumbing.device import autocast

MEMORISING_MARGIN = 0.05  # share of the val loss by which the train/val gap must outgrow its smallest
SCORED_TOKENS = 250_000  # the most tokens of a split that score_split scores

@dataclass(frozen=True)
class Score:
    loss: float  # mean cross-entropy, in nats per token
    bpc: float  # bits per character: comparable across tokenizers
    tokens: int  # how many tokens were scored


def bits_per_character(loss: float, chars_per_token: float) -> float:
    """Nats per token -> bits per character of the text."""
    return loss / (math.log(2) * chars_per_token)


def memorising(train_loss: float, val_loss: float, smallest_gap: float) -> bool:
    """Whether the model has begun to learn its text by heart rather than its patterns:
    the val loss (text it never trains on) has drawn away from the train loss, the gap
    between them now larger than the smallest it has been this session by more than
    MEMORISING_MARGIN of the val loss. The smallest gap, not zero, is the baseline: the
    held-out end of a text can be harder (or easier) than the rest from the start, and
    an evaluation's own noise is a few hundredths."""
    return (val_loss - train_loss) - smallest_gap > MEMORISING_MARGIN * val_loss


class FixedWindows:
    """batches x batch_size windows of a split, drawn once from seed: every
    evaluation of a run reads the same text, so its loss changes only when the
    model does. A resumed run draws them again from the same seed."""

    def __init__(self, data: torch.Tensor, batch_size: int, block_size: int, batches: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(len(data) - block_size, (batches, batch_size, 1), generator=generator)
        windows = data[starts + torch.arange(block_size + 1)]  # (batches, B, T + 1), in the split's small dtype
        self.inputs, self.targets = windows[..., :-1], windows[..., 1:]

    @torch.no_grad()
    def loss(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> float:
        """The model's mean loss over the windows (nats per token). The caller puts it in eval mode."""
        total = 0.0
        for x, y in zip(self.inputs, self.targets, strict=True):
            with autocast(device, dtype):
                _, loss = model(x.long().contiguous().to(device), y.long().contiguous().to(device))
            total += loss.item()
        return total / len(self.inputs)


def window_plan(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int]]:
    """(start, first) for each window over a split of n_tokens tokens: the window
    reads tokens start to start + block_size and predicts the ones after each,
    and scores its predictions from index first on. Every token but the first
    (which nothing predicts) is scored by exactly one window."""
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride {stride} must be from 1 to block_size {block_size}")
    if n_tokens < block_size + 1:
        raise ValueError(f"a split of {n_tokens} tokens is shorter than a window of {block_size + 1}")
    last = n_tokens - block_size - 1  # the window whose last target is the split's last token
    starts = list(range(0, last, stride)) + [last]
    plan, scored_up_to = [], 0  # the windows before have scored the targets up to this start + block_size
    for start in starts:
        plan.append((start, max(scored_up_to - start, 0)))
        scored_up_to = start + block_size
    return plan


def score_batches(n_tokens: int, block_size: int, batch_size: int) -> int:
    """How many batches score_split runs on a split of n_tokens tokens (at the default stride)."""
    windows = len(window_plan(min(n_tokens, SCORED_TOKENS), block_size, default_stride(block_size)))
    return -(-windows // batch_size)


def default_stride(block_size: int) -> int:
    return max(block_size // 2, 1)


@torch.no_grad()
def score_split(model: torch.nn.Module, data: torch.Tensor, block_size: int, batch_size: int,
                chars_per_token: float, device: torch.device, dtype: torch.dtype,
                stride: int | None = None) -> Score:
    """Score every token of data (a 1-D tensor of token ids; its first
    SCORED_TOKENS) as the module docstring says. stride: tokens between window
    starts (default half a block; 1 gives every token after the first block a
    full context, at block_size / 2 times the cost). The caller puts the model in eval mode."""
    data = data[:SCORED_TOKENS]
    plan = window_plan(len(data), block_size, stride or default_stride(block_size))
    offsets = torch.arange(block_size + 1)
    total, count = 0.0, 0
    for i in range(0, len(plan), batch_size):
        windows = plan[i:i + batch_size]
        filler = [windows[-1]] * (batch_size - len(windows))  # one shape for every batch
        starts = torch.tensor([start for start, _ in windows + filler])
        tokens = data[starts[:, None] + offsets].long()
        x, y = tokens[:, :-1].contiguous().to(device), tokens[:, 1:].contiguous().to(device)
        firsts = torch.tensor([first for _, first in windows] + [block_size] * len(filler))  # filler: none
        scored = torch.arange(block_size) >= firsts[:, None]  # (B, T)
        with autocast(device, dtype):
            logits, _ = model(x, y)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bfloat16 logits: score in float32
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").cpu()
        total += losses[scored.flatten()].double().sum().item()
        count += int(scored.sum())
    loss = total / count
    return Score(loss, bits_per_character(loss, chars_per_token), count)
