"""The parts that ModelConfig's switches swap into the GPT of model.py: read
model.py first, then come here for a switch's workings.

Shapes as in model.py: B = batch, T = time, C = d_model, H = heads, D = head size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "relu2", "swiglu")


def make_norm(kind: str, size: int) -> nn.Module:
    """GPT-2's LayerNorm, or RMSNorm: LayerNorm without subtracting the mean.
    It only rescales each vector to a root-mean-square of 1, then applies a
    learned gain; as good in practice, and a little less work (Zhang and
    Sennrich, 2019)."""
    if kind == "rmsnorm":
        return nn.RMSNorm(size)
    return nn.LayerNorm(size, bias=False)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """RMSNorm over the last dimension, without a gain (QK-norm uses it), in x's
    number format: autocast may compute a norm in float32, and attention needs
    its queries and keys in the values' format."""
    return F.rms_norm(x, (x.size(-1),)).type_as(x)


class Rotary(nn.Module):
    """Rotary position embeddings (RoPE; Su et al., 2021). Instead of adding a
    learned vector for each position to the token's embedding, attention turns
    each query and key by an angle that grows with its position: feature i
    (with feature i + D/2 as its partner) turns at speed base^(-2i/D), fast for
    the first features, slow for the last. A dot product of two turned vectors
    depends only on how far apart they are, so q . k sees the distance between
    two tokens rather than where each stands. Nothing is learned."""

    def __init__(self, head_size: int, block_size: int, base: float = 10_000.0) -> None:
        super().__init__()
        speeds = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (D/2,)
        angles = torch.outer(torch.arange(block_size, dtype=torch.float32), speeds)  # (block_size, D/2)
        # Computed once: each forward pass only slices them. Not saved with the weights.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cosines and sines of positions start .. start + length - 1: two (T, D/2)."""
        return self.cos[start:start + length], self.sin[start:start + length]


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn each pair (x1, x2) of x (B, H, T, D) by its angle: a 2-D rotation per pair."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, D/2) each: pair i is (x1[i], x2[i])
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


def swiglu_hidden_size(d_model: int) -> int:
    """SwiGLU has three matrices where GELU's MLP has two of 4C: a hidden size of
    2/3 of 4C keeps the parameters equal, rounded to a multiple of 8 (whole
    vector registers for the matmul kernels)."""
    return max(8, round(8 * d_model / 3 / 8) * 8)
