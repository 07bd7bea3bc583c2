"""Looking inside the model: what it predicts at each step of a text, where
each head attends, and what it would predict after each of its sublayers
(the logit lens).

Everything here runs on a snapshot of the weights (Trainer.snapshot()), so
training goes on while it is computed, and nothing stays in the model: the
model's own forward pass runs on one window of tokens with a Recorder
(model.py), which takes attention's explicit path and keeps what it meets;
no hooks, and nothing kept during training.

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
from typing import NamedTuple

import torch

from minigpt.model import GPT, Recorder
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate, processed_probabilities, start_tokens
from minigpt.tokenizer import Tokenizer

CANDIDATES = 20  # next-token candidates kept per step
LENS_TOP = 3  # predictions kept per stage and position by the logit lens
REPLAY_TOKENS = 32  # most tokens replay() generates: at block 256, 64 took 126 ms, over an update's 100


class Candidate(NamedTuple):  # a tuple: thousands are made per update, each must cost little
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
    """The model run on one window of tokens (T positions), as recorded on the way:
    L layers of H heads of attention, and S stages of the residual stream."""

    attention: torch.Tensor  # (L, H, T, T): row i is how position i spreads its attention (L = 0 without it)
    # The logit lens: what the stream would predict if the model stopped after each stage, read as the
    # output is (GPT.next_token_logits). The stages: "embeddings", then "attention 1", "mlp 1", ...:
    # the last is the model's output.
    lens_stages: list[str]
    lens_tokens: torch.Tensor  # (S, T, LENS_TOP): each stage's top predictions at each position
    lens_probs: torch.Tensor  # (S, T, LENS_TOP)
    lens_next: torch.Tensor  # (S, T): the probability each stage gives the token that comes next (nan: the last)
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


@torch.inference_mode()
def trace(model: GPT, tokens: list[int]) -> Trace:
    """Run the model on tokens (at most block_size of them) with a Recorder: its
    own forward pass, with attention on its explicit path, keeping each head's
    attention weights and the residual stream after each sublayer."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokens], device=device)
    recorder = Recorder()
    logits, _ = model(idx, recorder=recorder)
    T, H = len(tokens), model.config.n_heads
    attention = torch.stack([w[0] for w in recorder.attention]) if recorder.attention else torch.zeros(0, H, T, T)
    following = idx[0, 1:, None]  # (T - 1, 1): the token after each position but the last
    missing = torch.full((1,), math.nan, device=device)
    top, next_probs = [], []  # only the top predictions: all of them would be S x T x V numbers
    for _, x in recorder.stream:
        probs = torch.softmax(model.next_token_logits(x[0]).float(), dim=-1)  # (T, V)
        top.append(probs.topk(min(LENS_TOP, probs.size(-1))))
        next_probs.append(torch.cat([probs[:-1].gather(-1, following)[:, 0], missing]))
    return Trace(attention=attention.float(), lens_stages=[name for name, _ in recorder.stream],
                 lens_tokens=torch.stack([t.indices for t in top]), lens_probs=torch.stack([t.values for t in top]),
                 lens_next=torch.stack(next_probs), logits=logits[0].float())


def replay(model: GPT, tokenizer: Tokenizer, prompt: str, settings: SamplingSettings,
           max_tokens: int = REPLAY_TOKENS) -> Inspection:
    """Generate from prompt as the sampler does (settings seeded: keep its seed to
    replay the same text), up to max_tokens tokens and no more than fill the
    block, and inspect it."""
    settings = settings.seeded()
    prompt_tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    max_tokens = max(min(max_tokens, model.config.block_size - len(prompt_tokens)), 1)
    drawn: list[int] = []
    logits: list[torch.Tensor] = []
    processed: list[torch.Tensor] = []

    def observe(row: torch.Tensor, probs: torch.Tensor, token: int) -> None:
        drawn.append(token)
        logits.append(row.float())
        processed.append(probs)

    short = replace(settings, max_new_tokens=min(settings.max_new_tokens, max_tokens))
    for _ in generate(model, tokenizer, prompt, short, observe=observe):
        pass
    tokens = prompt_tokens + drawn
    window = _window_start(len(tokens), model.config.block_size)  # only a prompt of a whole block moves it
    keep = slice(max(window + 1 - len(prompt_tokens), 0), None)  # steps with a position of at least 1
    positions = range(len(tokens) - window - len(drawn[keep]), len(tokens) - window)
    steps = _steps(positions, drawn[keep], torch.softmax(torch.stack(logits[keep]), -1), torch.stack(processed[keep]))
    window_tokens = tokens[window:]
    return Inspection(window_tokens, len(prompt_tokens) - window, steps, trace(model, window_tokens), settings)


def score(model: GPT, tokenizer: Tokenizer, prompt: str, text: str, settings: SamplingSettings) -> Inspection:
    """Inspect a text already written after prompt: at each of its tokens, the
    distribution the sampler would draw from under settings, and that token.
    The window is the last block_size tokens of prompt and text."""
    prompt_tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    tokens = prompt_tokens + (tokenizer.encode(text) if text else [])
    window = _window_start(len(tokens), model.config.block_size)
    window_tokens = tokens[window:]
    prompt_length = max(len(prompt_tokens) - window, 0)
    traced = trace(model, window_tokens)
    first = max(prompt_length, 1)
    logits = traced.logits[first - 1:-1]  # row s predicts the token at position first + s
    targets = window_tokens[first:]
    seen = _seen_before(tokens[:window + first], targets, model.config.vocab_size, logits.device)
    steps = _steps(range(first, len(window_tokens)), targets, torch.softmax(logits, -1),
                   processed_probabilities(logits, settings, seen))
    return Inspection(window_tokens, prompt_length, steps, traced, settings)


def _window_start(length: int, block_size: int) -> int:
    return max(length - block_size, 0)


def _seen_before(context: list[int], targets: list[int], vocab_size: int, device: torch.device) -> torch.Tensor:
    """(S, V): the tokens the sampler's picker has seen before each target is drawn,
    the context's and the targets' before it (for the repetition penalty)."""
    seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    seen[context] = True
    drawn = torch.nn.functional.one_hot(torch.tensor(targets, device=device), vocab_size).long()
    return seen | (drawn.cumsum(0) - drawn > 0)


def _steps(positions: range, tokens: list[int], raw: torch.Tensor, processed: torch.Tensor) -> list[Step]:
    """A Step per token, from the raw and processed distributions (S, V) it was drawn
    from. The candidates: the kept tokens, most likely first, then the removed ones
    by their raw probability; the drawn token is always among them."""
    if not tokens:
        return []
    rank = torch.where(processed > 0, processed + 1.0, raw)  # every kept token above every removed one
    chosen = rank.topk(min(CANDIDATES, rank.size(-1)), dim=-1).indices
    drawn = torch.tensor(tokens, device=raw.device).unsqueeze(-1)
    missing = ~(chosen == drawn).any(-1)
    chosen[missing, -1] = drawn[missing, 0]
    ids, raws, kept = chosen.tolist(), raw.gather(-1, chosen).tolist(), processed.gather(-1, chosen).tolist()
    drawn_raw, drawn_kept = raw.gather(-1, drawn)[:, 0].tolist(), processed.gather(-1, drawn)[:, 0].tolist()
    return [Step(position, token, drawn_raw[s], drawn_kept[s],
                 list(map(Candidate, ids[s], raws[s], kept[s])))
            for s, (position, token) in enumerate(zip(positions, tokens, strict=True))]


def token_labels(tokenizer: Tokenizer, tokens: list[int]) -> list[str]:
    """The text of each token as it stands alone: with bpe, a token holding part
    of a character's bytes shows those bytes as escapes (\\xe2)."""
    return [tokenizer.token_bytes(token).decode("utf-8", errors="backslashreplace") for token in tokens]
