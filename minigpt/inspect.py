"""Looking inside the model: what it predicts at each step of a text, where
each head attends, and what each layer would predict (the logit lens).

Everything here runs on a snapshot of the weights (Trainer.snapshot()), so
training goes on while it is computed, and nothing stays in the model: the
blocks are re-run explicitly on one window of tokens, reading each layer's
own weights, with no hooks and no extra tensors kept during training.

Two ways to get the steps of a text:
- replay(): generate from a prompt, exactly as the sampler does (the very
  generator, told of every pick), so the same seed draws the same tokens;
- score(): a text already written (a completion, a training sample), read
  in one forward pass; each step shows what the model makes of the token
  that is there.
Both use sampling.processed_probabilities, the sampler's own distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from minigpt.model import GPT
from minigpt.sampling import generate, processed_probabilities, start_tokens
from minigpt.settings import SamplingSettings
from minigpt.tokenizer import Tokenizer

CANDIDATES = 20  # next-token candidates kept per step
LENS_TOP = 3  # predictions kept per layer and position by the logit lens
REPLAY_TOKENS = 64  # most tokens replay() generates


@dataclass(frozen=True)
class Candidate:
    token: int
    raw: float  # probability at temperature 1, nothing removed
    processed: float  # after penalty, temperature, top-k, top-p: 0 if removed


@dataclass(frozen=True)
class Step:
    """One token of the text and what the model considered there."""

    position: int  # of the token, in Inspection.tokens
    token: int
    raw: float  # the token's raw probability
    processed: float
    candidates: list[Candidate]  # the kept tokens most likely first, then the removed ones


@dataclass(frozen=True, eq=False)  # tensors have no one truth value: equal only to itself
class Trace:
    """The model re-run on one window of tokens: T positions, L layers, H heads."""

    attention: torch.Tensor  # (L, H, T, T): row i is how position i spreads its attention
    lens_tokens: torch.Tensor  # (L + 1, T, LENS_TOP): each layer's top predictions, 0 = the embeddings
    lens_probs: torch.Tensor  # (L + 1, T, LENS_TOP)
    logits: torch.Tensor  # (T, V): the model's output


@dataclass(frozen=True, eq=False)
class Inspection:
    tokens: list[int]  # the window: the prompt's tokens, then the text's
    prompt_length: int
    steps: list[Step]  # one per token after the prompt
    trace: Trace
    settings: SamplingSettings  # seeded

    @property
    def perplexity(self) -> float:
        """exp of the mean surprise of the drawn tokens, at temperature 1 (nan without steps)."""
        if not self.steps:
            return math.nan
        return math.exp(-sum(math.log(max(s.raw, 1e-12)) for s in self.steps) / len(self.steps))


def attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) with the causal mask: (H, T, D) twice -> (H, T, T)."""
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


@torch.inference_mode()
def trace(model: GPT, tokens: list[int]) -> Trace:
    """Re-run the blocks on tokens (at most block_size of them) step by step, as
    model.py's forward does, keeping each head's attention weights and the
    residual stream after each block."""
    c = model.config
    device = next(model.parameters()).device
    idx = torch.tensor(tokens, device=device)
    T, H, D = len(tokens), c.n_heads, c.d_model // c.n_heads
    x = model.token_embedding(idx) + model.position_embedding(torch.arange(T, device=device))
    residuals, maps = [x], []
    for block in model.blocks:
        q, k, v = block.attn.qkv(block.ln_attn(x)).view(T, 3, H, D).permute(1, 2, 0, 3)  # 3 x (H, T, D)
        weights = attention_weights(q, k)
        x = x + block.attn.proj((weights @ v).transpose(0, 1).reshape(T, c.d_model))
        x = x + block.mlp(block.ln_mlp(x))
        residuals.append(x)
        maps.append(weights)
    lens = [torch.softmax(model.head(model.ln_final(r)).float(), dim=-1).topk(LENS_TOP) for r in residuals]
    return Trace(attention=torch.stack(maps).float(), lens_tokens=torch.stack([t.indices for t in lens]),
                 lens_probs=torch.stack([t.values for t in lens]), logits=model.head(model.ln_final(x)).float())


def replay(model: GPT, tokenizer: Tokenizer, prompt: str, settings: SamplingSettings,
           max_tokens: int = REPLAY_TOKENS) -> Inspection:
    """Generate from prompt as the sampler does (settings seeded: keep its seed to
    replay the same text), up to max_tokens tokens and no more than fill the
    block, and inspect it."""
    settings = settings.seeded()
    prompt_tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    max_tokens = max(min(max_tokens, model.config.block_size - len(prompt_tokens)), 1)
    picks: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # token, raw, processed

    def observe(logits: torch.Tensor, processed: torch.Tensor, token: int) -> None:
        picks.append((token, torch.softmax(logits.float(), dim=-1), processed))

    short = replace(settings, max_new_tokens=min(settings.max_new_tokens, max_tokens))
    for _ in generate(model, tokenizer, prompt, short, observe=observe):
        pass
    tokens = prompt_tokens + [token for token, _, _ in picks]
    window = _window_start(len(tokens), model.config.block_size)
    steps = [_step(i - window, token, raw, processed)
             for i, (token, raw, processed) in enumerate(picks, start=len(prompt_tokens)) if i > window]
    window_tokens = tokens[window:]
    return Inspection(window_tokens, max(len(prompt_tokens) - window, 0), steps,
                      trace(model, window_tokens), settings)


def score(model: GPT, tokenizer: Tokenizer, prompt: str, text: str, settings: SamplingSettings) -> Inspection:
    """Inspect a text already written after prompt: at each of its tokens, the
    distribution the sampler would draw from under settings, and that token.
    The window is the last block_size tokens of prompt and text."""
    prompt_tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    text_tokens = tokenizer.encode(text) if text else []
    tokens = prompt_tokens + text_tokens
    window = _window_start(len(tokens), model.config.block_size)
    window_tokens = tokens[window:]
    prompt_length = max(len(prompt_tokens) - window, 0)
    traced = trace(model, window_tokens)
    raw = torch.softmax(traced.logits, dim=-1)
    seen = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=traced.logits.device)
    first = max(prompt_length, 1)
    seen[tokens[:window + first]] = True  # as the sampler's picker starts: every token before the first step
    steps = []
    for position in range(first, len(window_tokens)):
        token = window_tokens[position]
        processed = processed_probabilities(traced.logits[position - 1], settings, seen)
        steps.append(_step(position, token, raw[position - 1], processed))
        seen[token] = True
    return Inspection(window_tokens, prompt_length, steps, traced, settings)


def _window_start(length: int, block_size: int) -> int:
    return max(length - block_size, 0)


def _step(position: int, token: int, raw: torch.Tensor, processed: torch.Tensor) -> Step:
    """The step's candidates: the kept tokens, most likely first, then the removed
    ones by their raw probability; the drawn token is always among them."""
    rank = torch.where(processed > 0, processed + 1.0, raw)  # every kept token above every removed one
    chosen = torch.topk(rank, min(CANDIDATES, rank.numel())).indices.tolist()
    if token not in chosen:
        chosen[-1] = token
    ids = torch.tensor(chosen, device=raw.device)
    candidates = [Candidate(t, r, p) for t, r, p in zip(chosen, raw[ids].tolist(), processed[ids].tolist(),
                                                         strict=True)]
    return Step(position, token, float(raw[token]), float(processed[token]), candidates)


def token_labels(tokenizer: Tokenizer, tokens: list[int]) -> list[str]:
    """The text of each token as it stands alone: with bpe, a token holding part
    of a character's bytes shows that part as U+FFFD."""
    return [tokenizer.token_bytes(token).decode("utf-8", errors="replace") for token in tokens]
