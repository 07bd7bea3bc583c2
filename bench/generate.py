"""`python -m bench generate` (from the repository root): generation speed,
tokens/s with and without the KV cache, and the time to the first token, of a
checkpoint or of a freshly initialised model of a preset's shape.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

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
    return 0


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
