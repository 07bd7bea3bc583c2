"""`python -m bench generate` (from the repository root): generation speed,
tokens/s with and without the KV cache, and the time to the first token, of a
checkpoint or of a freshly initialised model of a preset's shape; then a chat's
turn against a completion of the same text (time to first token, the template's
layout included), and the time to lay out a 50-turn conversation.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from bench.timing import median_seconds
from minigpt.chat import Style, Template, TokenCounter, Turn, lay_out
from minigpt.model import GPT
from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer
from minigpt.trainer import model_config as trainer_model_config

# Tiny Shakespeare's 65 characters.
SHAKESPEARE_CHARACTERS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="time this checkpoint instead of a freshly initialised model")
    parser.add_argument("--preset", default="default", choices=list(cfg.PRESETS),
                        help="model shape to initialise when no --checkpoint is given")
    parser.add_argument("--block-size", type=int, default=256,
                        help="context length of the freshly initialised model")
    parser.add_argument("--tokens", type=int, default=1000, help="new tokens per timed run")
    parser.add_argument("--prompt-chars", type=int, default=100, help="length of the prompt")
    parser.add_argument("--ttft-runs", type=int, default=9, help="runs whose median is the time to first token")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, as minigpt-generate uses by default; 0 keeps torch's choice")


def run(args: argparse.Namespace) -> int:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model, tokenizer, description = _model_to_time(args)
    prompt = (tokenizer.characters * args.prompt_chars)[: args.prompt_chars]
    settings = SamplingSettings(max_new_tokens=args.tokens, seed=0)
    print(f"model: {description}, {model.num_parameters() / 1e6:.2f}M parameters, "
          f"block_size {model.config.block_size}, vocab {model.config.vocab_size}")
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; "
          f"{args.tokens} new tokens from a {len(prompt)}-character prompt, default sampling settings")

    warm_up = SamplingSettings(max_new_tokens=20, seed=0)
    rates = {}
    for use_cache in (True, False):
        _consume(generate(model, tokenizer, prompt, warm_up, use_cache))
        seconds = _consume(generate(model, tokenizer, prompt, settings, use_cache))
        rates[use_cache] = args.tokens / seconds
        label = "with KV cache:   " if use_cache else "without KV cache:"
        print(f"{label} {args.tokens} tokens in {seconds:6.2f} s = {rates[use_cache]:7.1f} tokens/s "
              f"({1000 * seconds / args.tokens:.2f} ms/token)")
    print(f"speed-up from the cache: {rates[True] / rates[False]:.1f}x")

    first_token = [_time_to_first_token(model, tokenizer, prompt) for _ in range(args.ttft_runs)]
    print(f"time to first token ({len(prompt)}-character prompt, median of {args.ttft_runs}): "
          f"{1000 * statistics.median(first_token):.1f} ms")
    _chat(model, tokenizer, args.ttft_runs)
    return 0


CHAT_TURNS = 50
CHAT_LINES = ["Is the day so young?", "But new struck nine.", "Ay me! sad hours seem long.",
              "What sadness lengthens Romeo's hours?", "Not having that, which, having, makes them short."]


def _chat(model: GPT, tokenizer: CharTokenizer, runs: int) -> None:
    """A chat's turn against a completion of the very text it lays out: the difference is the chat's own
    cost (the layout and the stop strings). And the layout of a 50-turn conversation, each turn's tokens
    counted before (as in the app, which counts each turn once) and not."""
    style = Style(":", own_line=True, separator="\n\n")  # Tiny Shakespeare's
    template = Template(style.tag("ROMEO"), style.tag("JULIET"), style.separator,
                        others=tuple(style.tag(name) for name in ("BENVOLIO", "NURSE", "MERCUTIO")))
    turns = [Turn(template.user if i % 2 == 0 else template.model, CHAT_LINES[i % len(CHAT_LINES)])
             for i in range(CHAT_TURNS - 1)]
    context = model.config.block_size
    counter = TokenCounter(tokenizer)
    lay_out(turns, template, context, counter)  # the turns before: counted once, as the app does
    turns.append(Turn(template.user, "Shall I hear more, or shall I speak at this?"))
    text = lay_out(turns, template, context, counter).text
    settings = SamplingSettings(seed=0)

    def completion() -> None:
        pieces = generate(model, tokenizer, text, settings)
        next(pieces)
        pieces.close()

    def chat_turn() -> None:
        prompt = lay_out(turns, template, context, counter)
        pieces = generate(model, tokenizer, prompt.text, template.reply_settings(settings))
        next(pieces)
        pieces.close()

    completion_seconds, chat_seconds = median_seconds(completion, runs), median_seconds(chat_turn, runs)
    print(f"chat: a {CHAT_TURNS}-turn conversation, {len(text)} characters laid out for a {context}-token context")
    print(f"  time to first token, a completion of that text: {1000 * completion_seconds:.1f} ms; "
          f"a chat turn: {1000 * chat_seconds:.1f} ms ({chat_seconds / completion_seconds:.2f}x; median of {runs})")
    warm = median_seconds(lambda: lay_out(turns, template, context, counter), 101)
    cold = median_seconds(lambda: lay_out(turns, template, context, TokenCounter(tokenizer)), 101)
    print(f"  laying out the {CHAT_TURNS} turns: {1e6 * warm:.0f} µs with each turn counted before, "
          f"{1e6 * cold:.0f} µs counting them afresh (median of 101)")


def _model_to_time(args: argparse.Namespace) -> tuple[GPT, CharTokenizer, str]:
    if args.checkpoint:
        checkpoint = load_checkpoint(args.checkpoint)
        return checkpoint.build_model().eval(), checkpoint.tokenizer, f"checkpoint {args.checkpoint}"
    train = cfg.preset(args.preset)
    tokenizer = CharTokenizer(SHAKESPEARE_CHARACTERS)
    model_config = replace(trainer_model_config(train, tokenizer.vocab_size), block_size=args.block_size)
    torch.manual_seed(0)
    return GPT(model_config).eval(), tokenizer, f"'{args.preset}' preset, random weights"


def _consume(pieces) -> float:
    start = time.perf_counter()
    for _ in pieces:
        pass
    return time.perf_counter() - start


def _time_to_first_token(model: GPT, tokenizer: CharTokenizer, prompt: str) -> float:
    start = time.perf_counter()
    pieces = generate(model, tokenizer, prompt, SamplingSettings(seed=0))
    next(pieces)
    seconds = time.perf_counter() - start
    pieces.close()
    return seconds
