"""Autoregressive generation: a stream of tokens from a prompt.

Windowing policy. The model has learned positions 0..block_size-1 only, so a
cache of keys and values cannot simply slide past the end: every cached key
carries its old position. When the context is full, generation keeps the most
recent half block, clears the cache and refills it from those tokens in one
forward pass, then goes on one token at a time. The uncached path
(use_cache=False) follows the same policy, so both produce the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from minigpt.bpe import Utf8Stream
from minigpt.model import GPT, KVCache
from minigpt.plumbing.settings import SamplingSettings
from minigpt.tokenizer import Tokenizer, UnknownCharactersError


@dataclass(frozen=True)
class Piece:
    """One sampled token and the text it lets us show now. The text can be
    empty while it might still turn out to begin a stop string, or while the
    token holds only part of a character's bytes (byte-level BPE)."""

    token: int
    text: str


def start_tokens(prompt: str, tokenizer: Tokenizer, block_size: int) -> list[int]:
    """The prompt's tokens, its last block_size of them if longer. An empty
    prompt starts from a newline (or the first token if there is none).
    Characters the tokenizer lacks raise UnknownCharactersError, which lists them."""
    if not prompt:
        return [0 if tokenizer.unknown_characters("\n") else tokenizer.encode("\n")[0]]
    try:
        return tokenizer.encode(prompt)[-block_size:]
    except UnknownCharactersError as e:
        raise UnknownCharactersError(e.characters, "leave them out of the prompt (the model knows only the "
                                     "characters of the text it was trained on)") from None


def generate(model: GPT, tokenizer: Tokenizer, prompt: str, settings: SamplingSettings,
             use_cache: bool = True, *, should_stop: Callable[[], bool] | None = None,
             observe: PickObserver | None = None) -> Iterator[Piece]:
    """Stream one Piece per sampled token, as soon as it is sampled.

    Stop early by closing the generator, or with should_stop (e.g. an
    Event's is_set), which is asked after every token. The stream also ends
    after max_new_tokens or at a stop string. A bad prompt or model raises
    here, before anything is generated.

    A seed of -1 draws a fresh one; to know it (and repeat the text later),
    pass settings.seeded() and keep its seed. observe, if given, hears of
    every pick with the distribution it was drawn from (the Inspect view).

    The model is only read (pass it in eval mode: it is never switched), no
    autograd, and all randomness comes from a private generator, so sampling
    can run beside training without disturbing it."""
    if model.training and model.config.dropout > 0:
        raise ValueError("the model is in training mode with dropout on; call model.eval() before sampling")
    tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    settings = settings.seeded()
    picker = _TokenPicker(settings, model.config.vocab_size, tokens, settings.seed, next(model.parameters()).device,
                          observe)
    sample = _sample_cached if use_cache else _sample_uncached
    return _pieces(sample(model, tokens, picker), tokenizer, settings, should_stop)


def _pieces(tokens: Iterator[int], tokenizer: Tokenizer, settings: SamplingSettings,
            should_stop: Callable[[], bool] | None) -> Iterator[Piece]:
    stops = _StopFilter(settings.stop)
    characters = Utf8Stream()  # a token may end inside a character: show it once it is whole
    for count, token in enumerate(tokens, start=1):
        last = count == settings.max_new_tokens
        text = characters.feed(tokenizer.token_bytes(token))
        text, stopped = stops.feed(text + characters.flush() if last else text)
        if last:
            text += stops.flush()
        yield Piece(token, text)
        if stopped or last or (should_stop is not None and should_stop()):
            return


# Decorated generators enter inference mode only while they run, never
# leaving it switched on in the caller's thread between two tokens.
@torch.inference_mode()
def _sample_cached(model: GPT, tokens: list[int], picker: _TokenPicker) -> Iterator[int]:
    """Each new token goes through the model alone, reading earlier positions from the cache."""
    block_size = model.config.block_size
    param = next(model.parameters())
    cache = KVCache(model.config, batch_size=1, device=param.device, dtype=param.dtype)
    window_start = 0  # start_tokens keeps at most block_size tokens
    logits, _ = model(torch.tensor([tokens], device=param.device), cache=cache)
    while True:
        token = picker.pick(logits[0, -1])
        tokens.append(token)
        yield token
        if len(tokens) - window_start > block_size:  # full: refill from the last half block
            window_start = len(tokens) - max(1, block_size // 2)
            cache.reset()
            logits, _ = model(torch.tensor([tokens[window_start:]], device=param.device), cache=cache)
        else:
            logits, _ = model(picker.as_input(token), cache=cache)


@torch.inference_mode()
def _sample_uncached(model: GPT, tokens: list[int], picker: _TokenPicker) -> Iterator[int]:
    """The reference path: the whole window goes through the model for every token."""
    block_size = model.config.block_size
    device = next(model.parameters()).device
    window_start = 0
    while True:
        logits, _ = model(torch.tensor([tokens[window_start:]], device=device))
        token = picker.pick(logits[0, -1])
        tokens.append(token)
        yield token
        if len(tokens) - window_start > block_size:
            window_start = len(tokens) - max(1, block_size // 2)


def processed_probabilities(logits: torch.Tensor, settings: SamplingSettings,
                            seen: torch.Tensor | None = None) -> torch.Tensor:
    """The distribution the sampler draws the next token from, over the whole
    vocabulary: logits (..., V) after the repetition penalty (on the tokens
    marked in seen, of the same shape), the temperature, top-k and top-p.
    Removed tokens have probability 0; temperature 0 (greedy) puts all of it
    on the most likely token. The sampler calls it on one row, the Inspect view
    on a row per step of a text, so the two cannot disagree."""
    logits = logits.float()
    penalty = settings.repetition_penalty
    if penalty != 1.0 and seen is not None:
        # CTRL-style: move the logits of tokens already seen toward "less likely".
        penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
        logits = torch.where(seen, penalised, logits)
    if settings.temperature == 0:
        return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    probs = torch.softmax(logits / settings.temperature, dim=-1)
    if settings.top_k == 0 and settings.top_p == 1.0:
        return probs
    # Top-k and top-p both keep a prefix of the tokens sorted by probability.
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    removed = torch.zeros_like(sorted_probs, dtype=torch.bool)
    if settings.top_k:
        removed[..., settings.top_k:] = True
        sorted_probs = sorted_probs.masked_fill(removed, 0.0) / sorted_probs[..., : settings.top_k].sum(-1, True)
    if settings.top_p < 1.0:
        # Drop a token when the tokens before it already reach top_p; the first always stays.
        removed |= sorted_probs.cumsum(-1) - sorted_probs >= settings.top_p
    kept = probs.masked_fill(removed.scatter(-1, order, removed), 0.0)
    return kept / kept.sum(-1, keepdim=True)


PickObserver = Callable[[torch.Tensor, torch.Tensor, int], None]
"""Told of every token the sampler picks: (logits, processed probabilities, token)."""


class _TokenPicker:
    """Turns a row of logits into the next token under the sampling settings."""

    def __init__(self, settings: SamplingSettings, vocab_size: int, context: list[int], seed: int,
                 device: torch.device | str = "cpu", observe: PickObserver | None = None) -> None:
        self.settings = settings
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.seen[context] = True
        self.input = torch.zeros((1, 1), dtype=torch.long, device=device)  # reused every step
        self.observe = observe

    def as_input(self, token: int) -> torch.Tensor:
        return self.input.fill_(token)

    def pick(self, logits: torch.Tensor) -> int:
        probs = processed_probabilities(logits, self.settings, self.seen)
        if self.settings.temperature == 0:
            token = int(probs.argmax())
        else:
            token = int(torch.multinomial(probs, 1, generator=self.generator))
        if self.observe is not None:
            self.observe(logits, probs, token)
        self.seen[token] = True
        return token


class _StopFilter:
    """Holds back text that may be the start of a stop string, and reports
    when one appears (the stop string itself is never shown)."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            shown, self.pending = self.pending[: min(hits)], ""
            return shown, True
        cut = len(self.pending) - self._longest_stop_prefix_suffix()
        shown, self.pending = self.pending[:cut], self.pending[cut:]
        return shown, False

    def _longest_stop_prefix_suffix(self) -> int:
        for n in range(min(len(self.pending), max(map(len, self.stops)) - 1), 0, -1):
            if any(s.startswith(self.pending[-n:]) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return text


def sample_text(model: GPT, tokenizer: Tokenizer, prompt: str = "", max_new_tokens: int = 200,
                seed: int = 0, temperature: float = 0.8) -> str:
    """A whole sample at once, e.g. to show progress at each evaluation."""
    settings = SamplingSettings(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    return "".join(piece.text for piece in generate(model, tokenizer, prompt, settings))
