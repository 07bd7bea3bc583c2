"""The GPT model: token and position embeddings, a stack of pre-norm
Transformer blocks (attention, then an MLP, each adding to the residual
stream), and an output head.

As configured by default it is GPT-2 (2019). Each of ModelConfig's switches
swaps in one change the field has made since, explained beside it; the
workings of the swapped-in parts are in minigpt/layers.py.

Shapes in comments: B = batch, T = time (sequence length), C = d_model,
H = heads, D = head size (C // H), V = vocabulary size, S = positions
attended over (T, plus those in a KV cache).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.layers import ACTIVATIONS, NORMS, Rotary, make_norm, relu_squared, rms_norm, rotate, swiglu_hidden_size


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    block_size: int = 128  # longest context the model can attend over
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    # Dropout on the residual paths: each sublayer's output (and the embeddings) loses a random share
    # of its features while training, so that a model that could learn a small text by heart cannot
    # rely on any one of them. Attention weights are never dropped: that would force PyTorch off its
    # fused attention kernel on the CPU, and the model would no longer read as the explicit path does.
    dropout: float = 0.0

    # Since GPT-2: each switch swaps in one change, its default the 2019 choice forever. A checkpoint
    # whose model_config lacks a key was written before the switch existed: its model is the default one.
    #
    # Rotary positions (layers.Rotary) in place of learned ones: attention sees how far apart two tokens
    # are, which means the same at every place in the text, and no table of positions must be learned.
    rope: bool = False
    # "rmsnorm" (layers.make_norm): no mean to subtract, only the scale; the same quality, less work.
    norm: str = "layernorm"
    # "relu2": max(0, x)^2, cheaper than GELU and a little better in the speedruns; "swiglu" (Llama's):
    # a second matrix learns a gate for each hidden feature, at the same number of parameters.
    activation: str = "gelu"
    # Normalise each query and key before their dot product: the attention scores stay in a range the
    # softmax handles well however large the weights grow, so training tolerates a higher learning rate.
    qk_norm: bool = False
    # False: the head has a matrix of its own instead of the token embedding's: reading a token and
    # predicting the next one are different jobs. With a vocabulary of 65 characters it costs little.
    tie_head: bool = True
    # The layers that write to the residual stream (and an untied head) start at zero: each block
    # starts as the identity and the model as a uniform guess, and training grows them from there.
    zero_init: bool = False
    # Normalise the embeddings before the first block: the stream starts at the scale the blocks
    # expect, however the embedding's weights grow.
    embed_norm: bool = False
    # Each block mixes the embeddings x0 back into its input, in amounts it learns: a deep layer gets
    # the token itself back, however much the layers before have written over it.
    x0_mix: bool = False

    # The Lab's switches (issue 22): take a sublayer out to see what it is for.
    # Without attention no position sees an earlier token: each prediction comes from the current token
    # alone (and, with learned positions, where it stands). Without either, the model is a bigram model.
    attention: bool = True
    # Without the MLP nothing works on a position's features on their own: the stream holds the
    # embeddings plus weighted sums of value vectors, with no layer to turn them into new features.
    mlp: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of earlier positions, preallocated for a whole block,
    so that decoding one more token costs one position instead of the whole
    context. One cache serves every layer; `length` says how many positions
    are filled. With rotary positions the keys are stored turned, each by
    its own absolute position."""

    def __init__(self, config: ModelConfig, batch_size: int, device, dtype) -> None:
        head_size = config.d_model // config.n_heads
        shape = (config.n_layers, batch_size, config.n_heads, config.block_size, head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new positions' keys and values (B, H, T, D) after the cached
        ones; return every position's so far: (B, H, S, D) each, S = length + T."""
        end = self.length + k.size(2)
        self.keys[layer, :, :, self.length:end] = k
        self.values[layer, :, :, self.length:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class Recorder:
    """Given to GPT.forward, it keeps what the model computes on the way, for
    looking inside (minigpt/inspect.py); attention then takes the explicit
    path, whose weights it keeps. Without one nothing is kept."""

    def __init__(self) -> None:
        self.attention: list[torch.Tensor] = []  # each layer's weights, (B, H, T, S)
        # The residual stream (B, T, C) after the embeddings, then after each sublayer adds to it.
        self.stream: list[tuple[str, torch.Tensor]] = []  # ("embeddings" | "attention 1" | "mlp 1" ..., x)


def causal_mask(T: int, S: int, device: torch.device) -> torch.Tensor:
    """(T, S): True where the query of one of the T newest positions may see a
    key, that is at its own position or before (the last query is position S - 1)."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out. q: (B, H, T, D) for the T newest positions; k, v:
    (B, H, S, D) for every position so far. Returns the output (B, H, T, D)
    and the attention weights (B, H, T, S)."""
    T, S, D = q.size(-2), k.size(-2), q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # (B, H, T, S): how well each query matches each key
    scores = scores.masked_fill(~causal_mask(T, S, q.device), float("-inf"))  # never look ahead
    weights = torch.softmax(scores, dim=-1)  # (B, H, T, S): each row sums to 1
    return weights @ v, weights  # (B, H, T, D): each position's weighted average of the values


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same as explicit_attention in one fused kernel: faster, and the (T, S)
    weights are never stored."""
    T, S = q.size(-2), k.size(-2)
    if T == S:  # nothing cached: the plain causal mask
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if T == 1:  # one new token may look at every position so far
        return F.scaled_dot_product_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S, q.device))


class CausalSelfAttention(nn.Module):
    """Each position gathers information from itself and the positions before
    it: H heads, each with queries, keys and values of its own."""

    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.layer_index = layer_index
        self.qk_norm = config.qk_norm
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.proj.is_residual_projection = True

    def forward(self, x: torch.Tensor, rotation: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, recorder: Recorder | None = None) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> three tensors of (B, H, T, D)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        if self.qk_norm:
            q, k = rms_norm(q), rms_norm(k)
        if rotation is not None:  # rotary positions: turn each query and key by its position's angles
            q, k = rotate(q, *rotation), rotate(k, *rotation)
        if cache is not None:
            k, v = cache.extend(self.layer_index, k, v)  # (B, H, S, D): the earlier positions' too
        if recorder is None:
            y = fused_attention(q, k, v)
        else:
            y, weights = explicit_attention(q, k, v)
            recorder.attention.append(weights)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads side by side
        return self.proj(y)


class MLP(nn.Module):
    """Position-wise feed-forward network: expand 4x, an activation, project back."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C, hidden = config.d_model, 4 * config.d_model
        self.gate = None
        if config.activation == "swiglu":
            hidden = swiglu_hidden_size(C)
            self.gate = nn.Linear(C, hidden, bias=False)
        self.expand = nn.Linear(C, hidden, bias=False)
        self.proj = nn.Linear(hidden, C, bias=False)
        self.proj.is_residual_projection = True
        self.activation = relu_squared if config.activation == "relu2" else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:  # SwiGLU: silu(gate) says how much of each hidden feature passes
            return self.proj(F.silu(self.gate(x)) * self.expand(x))
        return self.proj(self.activation(self.expand(x)))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ModelConfig, layer_index: int) -> None:
        super().__init__()
        self.name = str(layer_index + 1)  # for the recorder
        self.ln_attn = make_norm(config.norm, config.d_model) if config.attention else None
        self.attn = CausalSelfAttention(config, layer_index) if config.attention else None
        self.ln_mlp = make_norm(config.norm, config.d_model) if config.mlp else None
        self.mlp = MLP(config) if config.mlp else None
        self.dropout = nn.Dropout(config.dropout)
        # x0_mix: how much of the stream and of the embeddings x0 the block takes, starting at all and none.
        self.x0_weights = nn.Parameter(torch.tensor([1.0, 0.0])) if config.x0_mix else None

    def forward(self, x: torch.Tensor, x0: torch.Tensor, rotation: tuple[torch.Tensor, torch.Tensor] | None,
                cache: KVCache | None, recorder: Recorder | None) -> torch.Tensor:
        if self.x0_weights is not None:
            x = self.x0_weights[0] * x + self.x0_weights[1] * x0
        if self.attn is not None:
            x = x + self.dropout(self.attn(self.ln_attn(x), rotation, cache, recorder))
            if recorder is not None:
                recorder.stream.append(("attention " + self.name, x))
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(self.ln_mlp(x)))
            if recorder is not None:
                recorder.stream.append(("mlp " + self.name, x))
        return x


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        check(config)
        self.config = config
        C = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, C)
        self.position_embedding = None if config.rope else nn.Embedding(config.block_size, C)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.ln_final = make_norm(config.norm, C)
        self.head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_head:  # reading a token and predicting it share one matrix
            self.head.weight = self.token_embedding.weight
        # Made last, so that GPT-2's own weights are drawn in the same order (a seed, the same model).
        self.ln_embed = make_norm(config.norm, C) if config.embed_norm else None
        self.rotary = Rotary(C // config.n_heads, config.block_size) if config.rope else None
        self.apply(self._init_weights)
        if config.zero_init:
            writers = [m for m in self.modules() if getattr(m, "is_residual_projection", False)]
            for layer in writers + ([] if config.tie_head else [self.head]):
                nn.init.zeros_(layer.weight)

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
        """Parameters counted once (a tied head is the token embedding)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        recorder: Recorder | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids. Returns logits (B, T, V) and, with targets,
        the mean cross-entropy loss. With a cache, idx holds only the new
        tokens and they take the positions after the cached ones."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        x = self.token_embedding(idx)  # (B, T, C)
        rotation = None
        if self.rotary is not None:
            rotation = self.rotary(start, T)  # no position is added: attention turns queries and keys
        else:
            x = x + self.position_embedding(torch.arange(start, start + T, device=idx.device))
        if self.ln_embed is not None:
            x = self.ln_embed(x)
        x = self.dropout(x)
        if recorder is not None:
            recorder.stream.append(("embeddings", x))
        x0 = x
        for block in self.blocks:
            x = block(x, x0, rotation, cache, recorder)
        if cache is not None:
            cache.length += T
        logits = self.next_token_logits(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def next_token_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The head's reading of the residual stream (..., C) -> (..., V): the final
        norm, then the head. The logit lens (inspect.py) reads the stream between
        sublayers the same way."""
        return self.head(self.ln_final(x))

    def flops_per_token(self) -> int:
        """Training FLOPs per token, forward and backward, as in the PaLM paper
        (appendix B): 6 per weight of a matrix multiply, plus the attention score
        and value products (12 * layers * d_model * context). Embedding lookups,
        norms and mixing weights do no matmul."""
        c = self.config
        matmul_weights = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        attention_layers = c.n_layers if c.attention else 0
        return 6 * matmul_weights + 12 * attention_layers * c.d_model * c.block_size

    @classmethod
    def holding(cls, config: ModelConfig, weights: dict[str, torch.Tensor]) -> GPT:
        """A model that takes these tensors (a state_dict) as its weights, without
        copying them. Built on the meta device: initialising weights about to be
        replaced would cost more than the copy."""
        with torch.device("meta"):
            model = cls(config)
        model.load_state_dict(weights, assign=True)
        if config.tie_head:  # assign gave the tied names a tensor each: tie them again
            model.head.weight = model.token_embedding.weight
        if config.rope:  # computed, not saved: the meta device left them empty
            model.rotary = Rotary(config.d_model // config.n_heads, config.block_size).to(model.head.weight.device)
        return model


def check(config: ModelConfig) -> None:
    """A ValueError naming the setting, for a model that cannot be built."""
    if config.d_model % config.n_heads:
        raise ValueError(f"d_model ({config.d_model}) must be divisible by n_heads ({config.n_heads})")
    if config.norm not in NORMS:
        raise ValueError(f"norm {config.norm!r}: expected one of {', '.join(NORMS)}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"activation {config.activation!r}: expected one of {', '.join(ACTIVATIONS)}")
    if config.rope and (config.d_model // config.n_heads) % 2:
        raise ValueError(f"rope turns features in pairs: the head size d_model / n_heads "
                         f"({config.d_model // config.n_heads}) must be even")
