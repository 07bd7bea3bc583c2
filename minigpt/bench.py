"""Benchmarks, one subcommand each:

    python -m minigpt.bench generate            # tokens/s with and without the KV cache
    python -m minigpt.bench train               # training tokens/s and MFU, or val loss in a time budget
    python -m minigpt.bench tui                 # minigpt-tui: its cost to training, key latency, first paint
    python -m minigpt.bench soak --minutes 30   # minigpt-tui for half an hour: memory and file handles
    python -m minigpt.bench stream              # 100,000 tokens into the generation pane: key latency

A subcommand is a Command registered in COMMANDS: a help line, a function
that adds its flags to an argparse parser, and a function that runs it.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from minigpt import config as cfg
from minigpt.bench_train import add_arguments as add_train_arguments
from minigpt.bench_train import bench_train
from minigpt.checkpoint import load_checkpoint
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.sampling import SamplingSettings, generate
from minigpt.tokenizer import CharTokenizer
from minigpt.trainer import model_config as trainer_model_config


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


COMMANDS: dict[str, Command] = {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen subcommand's flags are built: the app's benchmarks import Textual,
    # which a machine that only trains may lack.
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    parser = argparse.ArgumentParser(prog="python -m minigpt.bench", description="MiniGPT benchmarks.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub = subcommands.add_parser(name, help=command.help, description=command.help,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name == chosen:
            command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except MiniGPTError as e:
        parser.exit(1, f"error: {e}\n")


# --- generate -----------------------------------------------------------------

# Tiny Shakespeare's 65 characters.
BENCH_CHARACTERS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
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


def bench_generate(args: argparse.Namespace) -> int:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model, tokenizer, description = _bench_model(args)
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


def _bench_model(args: argparse.Namespace) -> tuple[GPT, CharTokenizer, str]:
    if args.checkpoint:
        checkpoint = load_checkpoint(args.checkpoint)
        return checkpoint.build_model().eval(), checkpoint.tokenizer, f"checkpoint {args.checkpoint}"
    train = cfg.preset(args.preset)
    tokenizer = CharTokenizer(BENCH_CHARACTERS)
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


COMMANDS["generate"] = Command("tokens/s with and without the KV cache, and time to first token",
                               add_generate_arguments, bench_generate)

COMMANDS["train"] = Command("training tokens/s and MFU, or the val loss reached in a wall-clock budget",
                            add_train_arguments, bench_train)


# --- the app's benchmarks (tui/): imported only when chosen ------------------------

def _from_tui(module: str, function: str) -> Callable:
    """tui.<module>.<function>, imported when first called (it needs Textual)."""
    def call(*args):
        return getattr(importlib.import_module(f"tui.{module}"), function)(*args)
    return call


COMMANDS["tui"] = Command("training tokens/s inside minigpt-tui against headless, key latency, first paint",
                          _from_tui("bench", "add_arguments"), _from_tui("bench", "bench_tui"))
COMMANDS["soak"] = Command("minigpt-tui training and completing for minutes: memory, open files and threads",
                           _from_tui("soak", "add_soak_arguments"), _from_tui("soak", "bench_soak"))
COMMANDS["stream"] = Command("one long completion into minigpt-tui's generation pane: key latency and memory",
                             _from_tui("soak", "add_stream_arguments"), _from_tui("soak", "bench_stream"))


if __name__ == "__main__":
    raise SystemExit(main())
