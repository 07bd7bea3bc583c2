"""Autoregressive generation: a stream of tokens from a prompt.

Windowing policy. The model has learned positions 0..block_size-1 only, so a
cache of keys and values cannot simply slide past the end: every cached key
carries its old position. When the context is full, generation keeps the most
recent half block, clears the cache and refills it from those tokens in one
forward pass, then goes on one token at a time. The uncached path
(use_cache=False) follows the same policy, so both produce the same text.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import torch

from minigpt.errors import MiniGPTError
from minigpt.model import GPT, KVCache
from minigpt.tokenizer import CharTokenizer

MAX_NEW_TOKENS_LIMIT = 100_000


class SamplingSettingError(MiniGPTError, ValueError):
    """A sampling setting is out of range; the message names it and its allowed range."""


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.8  # 0 picks the most likely token every time (greedy)
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 0.95  # keep the smallest set whose probability reaches p
    repetition_penalty: float = 1.0  # >1 makes tokens already in the text less likely
    max_new_tokens: int = 500
    seed: int = -1  # -1 draws a fresh seed every time
    stop: tuple[str, ...] = ()  # generation ends before the first of these appears

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise SamplingSettingError(f"{name} = {value!r}: expected {allowed}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(s: SamplingSettings) -> None:
    _require(_is_number(s.temperature) and 0 <= s.temperature <= 100, "temperature", s.temperature,
             "a number from 0 (greedy) to 100")
    _require(_is_int(s.top_k) and 0 <= s.top_k <= 1_000_000, "top_k", s.top_k,
             "an integer from 0 (off) to 1000000")
    _require(_is_number(s.top_p) and 0 < s.top_p <= 1, "top_p", s.top_p, "a number in (0, 1]")
    _require(_is_number(s.repetition_penalty) and 0 < s.repetition_penalty <= 10, "repetition_penalty",
             s.repetition_penalty, "a number in (0, 10]; 1 is off")
    _require(_is_int(s.max_new_tokens) and 1 <= s.max_new_tokens <= MAX_NEW_TOKENS_LIMIT, "max_new_tokens",
             s.max_new_tokens, f"an integer from 1 to {MAX_NEW_TOKENS_LIMIT}")
    _require(_is_int(s.seed) and -1 <= s.seed < 2**63, "seed", s.seed, "an integer >= 0, or -1 for random")
    _require(isinstance(s.stop, tuple) and all(isinstance(x, str) and x for x in s.stop), "stop", s.stop,
             "a list of non-empty strings")


SETTING_NAMES = tuple(f.name for f in fields(SamplingSettings))


@dataclass(frozen=True)
class Piece:
    """One sampled token and the text it lets us show now. The text can be
    empty while it might still turn out to begin a stop string."""

    token: int
    text: str


def start_tokens(prompt: str, tokenizer: CharTokenizer, block_size: int) -> list[int]:
    """The prompt's tokens, its last block_size of them if longer. An empty
    prompt starts from a newline (or the first token if there is none)."""
    if not prompt:
        return [tokenizer.encode("\n")[0] if "\n" in tokenizer.characters else 0]
    return tokenizer.encode(prompt)[-block_size:]


def generate(model: GPT, tokenizer: CharTokenizer, prompt: str, settings: SamplingSettings,
             use_cache: bool = True) -> Iterator[Piece]:
    """Yield pieces as tokens are sampled. Close the generator to stop early.

    The model is only read (inference mode, no train/eval switch), and all
    randomness comes from a private generator, so sampling can run beside
    training without disturbing it."""
    tokens = start_tokens(prompt, tokenizer, model.config.block_size)
    device = next(model.parameters()).device
    seed = settings.seed if settings.seed >= 0 else random.randrange(2**63)
    generator = torch.Generator(device=device).manual_seed(seed)
    stops = _StopFilter(settings.stop)
    with torch.inference_mode():
        next_logits = _next_logits_cached if use_cache else _next_logits_uncached
        for token in next_logits(model, tokens, settings, generator):
            text, stopped = stops.feed(tokenizer.decode([token]))
            if text or not stopped:
                yield Piece(token, text)
            if stopped:
                return
        if tail := stops.flush():
            yield Piece(tokens[-1], tail)


def _next_logits_cached(model: GPT, tokens: list[int], settings: SamplingSettings,
                        generator: torch.Generator) -> Iterator[int]:
    block_size = model.config.block_size
    device = next(model.parameters()).device
    cache = KVCache(model.config, batch_size=1, device=device, dtype=next(model.parameters()).dtype)
    picker = _TokenPicker(settings, model.config.vocab_size, tokens, generator, device)
    window_start = max(0, len(tokens) - block_size)
    logits, _ = model(torch.tensor([tokens[window_start:]], device=device), cache=cache)
    for _ in range(settings.max_new_tokens):
        token = picker.pick(logits[0, -1])
        tokens.append(token)
        yield token
        if len(tokens) - window_start > block_size:  # full: refill from the last half block
            window_start = len(tokens) - block_size // 2
            cache.reset()
            logits, _ = model(torch.tensor([tokens[window_start:]], device=device), cache=cache)
        else:
            logits, _ = model(picker.as_input(token), cache=cache)


def _next_logits_uncached(model: GPT, tokens: list[int], settings: SamplingSettings,
                          generator: torch.Generator) -> Iterator[int]:
    """The reference path: the whole window through the model for every token."""
    block_size = model.config.block_size
    device = next(model.parameters()).device
    picker = _TokenPicker(settings, model.config.vocab_size, tokens, generator, device)
    window_start = max(0, len(tokens) - block_size)
    for _ in range(settings.max_new_tokens):
        logits, _ = model(torch.tensor([tokens[window_start:]], device=device))
        token = picker.pick(logits[0, -1])
        tokens.append(token)
        yield token
        if len(tokens) - window_start > block_size:
            window_start = len(tokens) - block_size // 2


class _TokenPicker:
    """Turns a row of logits into the next token under the sampling settings."""

    def __init__(self, settings: SamplingSettings, vocab_size: int, context: list[int],
                 generator: torch.Generator, device: torch.device) -> None:
        self.settings = settings
        self.generator = generator
        self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.seen[context] = True
        self.input = torch.zeros((1, 1), dtype=torch.long, device=device)  # reused every step

    def as_input(self, token: int) -> torch.Tensor:
        self.input[0, 0] = token
        return self.input

    def pick(self, logits: torch.Tensor) -> int:
        s = self.settings
        if s.repetition_penalty != 1.0:
            # CTRL-style: shrink the logits of tokens already seen toward "less likely".
            penalised = torch.where(logits > 0, logits / s.repetition_penalty, logits * s.repetition_penalty)
            logits = torch.where(self.seen, penalised, logits)
        if s.temperature == 0:
            token = int(logits.argmax())
        else:
            token = self._sample(logits.float() / s.temperature)
        self.seen[token] = True
        return token

    def _sample(self, logits: torch.Tensor) -> int:
        s = self.settings
        if 0 < s.top_k < logits.numel():
            kth_largest = torch.topk(logits, s.top_k).values[-1]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if s.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            # Drop a token when the tokens before it already reach top_p; the first always stays.
            drop = (sorted_probs.cumsum(0) - sorted_probs) >= s.top_p
            probs = probs.scatter(0, order, sorted_probs.masked_fill(drop, 0.0))
        return int(torch.multinomial(probs, 1, generator=self.generator))


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
        keep = self._longest_stop_prefix_suffix()
        shown, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep:]
        return shown, False

    def _longest_stop_prefix_suffix(self) -> int:
        for n in range(min(len(self.pending), max(map(len, self.stops)) - 1), 0, -1):
            if any(s.startswith(self.pending[-n:]) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return text


def sample_text(model: GPT, tokenizer: CharTokenizer, prompt: str = "", max_new_tokens: int = 200,
                seed: int = 0, temperature: float = 0.8) -> str:
    """A whole sample at once, e.g. to show progress at each evaluation."""
    settings = SamplingSettings(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    return "".join(piece.text for piece in generate(model, tokenizer, prompt, settings))
