"""The GPT model: token and position embeddings, a stack of pre-LayerNorm
Transformer blocks, and an output head tied to the token embedding.

Shapes in comments: B = batch, T = time (sequence length), C = d_model,
H = heads, D = head size (C // H), V = vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    block_size: int = 128  # longest context the model can attend over
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of earlier positions, preallocated for a whole block,
    so that decoding one more token costs one position instead of the whole
    context. One cache serves every layer; `length` says how many positions
    are filled."""

    def __init__(self, config: ModelConfig, batch_size: int, device, dtype) -> None:
        head_size = config.d_model // config.n_heads
        shape = (config.n_layers, batch_size, config.n_heads, config.block_size, head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.layer_index = layer_index
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.proj.is_residual_projection = True
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> three tensors of (B, H, T, D)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            y = self._attend_with_cache(q, k, v, cache)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.proj(y))

    def _attend_with_cache(self, q, k, v, cache: KVCache) -> torch.Tensor:
        start, T = cache.length, q.size(2)
        end = start + T
        cache.keys[self.layer_index, :, :, start:end] = k
        cache.values[self.layer_index, :, :, start:end] = v
        keys = cache.keys[self.layer_index, :, :, :end]
        values = cache.values[self.layer_index, :, :, :end]
        if T == 1:  # one new token may look at every cached position
            return F.scaled_dot_product_attention(q, keys, values)
        # Several new tokens: token i sees the cached prefix and new tokens up to i.
        mask = torch.ones(T, end, dtype=torch.bool, device=q.device).tril(diagonal=start)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)


class MLP(nn.Module):
    """Position-wise feed-forward network: expand 4x, GELU, project back."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.expand = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.proj = nn.Linear(4 * config.d_model, config.d_model, bias=False)
        self.proj.is_residual_projection = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.expand(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model, bias=False)
        self.attn = CausalSelfAttention(config, layer_index)
        self.ln_mlp = nn.LayerNorm(config.d_model, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x), cache)
        return x + self.mlp(self.ln_mlp(x))


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.d_model % config.n_heads:
            raise ValueError(f"d_model ({config.d_model}) must be divisible by n_heads ({config.n_heads})")
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.block_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.ln_final = nn.LayerNorm(config.d_model, bias=False)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        # Weight tying: reading a token and predicting it share one matrix.
        self.head.weight = self.token_embedding.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2 initialisation. Each block adds two residual projections to the
        # stream; scaling them by 1/sqrt(2 * n_layers) keeps its variance steady.
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "is_residual_projection", False):
                std /= math.sqrt(2 * self.config.n_layers)
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        """Parameters counted once (the tied head is the token embedding)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids. Returns logits (B, T, V) and, with targets,
        the mean cross-entropy loss. With a cache, idx holds only the new
        tokens and they take the positions after the cached ones."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        positions = torch.arange(start, start + T, device=idx.device)
        x = self.dropout(self.token_embedding(idx) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x, cache)
        if cache is not None:
            cache.length += T
        logits = self.head(self.ln_final(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def flops_per_token(self) -> int:
        """Training FLOPs per token, forward and backward, as in the PaLM paper
        (appendix B): 6 per parameter plus the attention score and value products
        (12 * layers * d_model * context). Position embeddings do no matmul."""
        c = self.config
        matmul_params = self.num_parameters() - self.position_embedding.weight.numel()
        return 6 * matmul_params + 12 * c.n_layers * c.d_model * c.block_size
