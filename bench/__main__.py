"""MiniGPT's benchmarks, one subcommand each, run from the repository root:

    python -m bench generate            # tokens/s with and without the KV cache
    python -m bench train               # training tokens/s and MFU, or val loss in a time budget
    python -m bench tui                 # minigpt-tui: its cost to training, key latency, first paint
    python -m bench soak --minutes 30   # minigpt-tui for half an hour: memory and file handles
    python -m bench stream              # 100,000 tokens into the generation pane: key latency
    python -m bench inspect             # the Inspect view: one update of each view, its cost to training
    python -m bench corpus              # fetch a second corpus (Paradise Lost) into data/
    python -m bench tokenizer           # byte-level BPE: learning and encoding speed
    python -m bench completions         # a 10,000-entry completions file: load time, the app's first paint
    python -m bench nanogpt --repo DIR  # karpathy/nanoGPT's CPU recipe in a wall-clock budget, to compare
    python -m bench ddp                 # torchrun: 1 process x 2 threads against 2 processes x 1 thread; DDP on CUDA
    python -m bench lab                 # a Lab experiment: each variant's wall time against its budget

A subcommand is a Command in COMMANDS: a help line and the module of bench/
with its two functions, one adding its flags to an argparse parser and one
running it. Only the chosen subcommand's module is imported: the app's
benchmarks need Textual, which a machine that only trains may lack.

SIGINT (Ctrl+C) and SIGTERM end any benchmark within seconds, child
processes killed and temporary files removed, with the exit status 130 or
143 (bench.interrupt).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from bench.interrupt import Interrupted, signals_interrupt
from minigpt.plumbing.errors import MiniGPTError


@dataclass(frozen=True)
class Command:
    help: str
    module: str  # in bench/
    add_arguments: str = "add_arguments"  # add_arguments(parser) -> None
    run: str = "run"  # run(args) -> exit status, or None for 0


COMMANDS: dict[str, Command] = {
    "generate": Command("tokens/s with and without the KV cache, and time to first token", "generate"),
    "train": Command("training tokens/s and MFU, or the val loss reached in a wall-clock budget", "train"),
    "tui": Command("training tokens/s inside minigpt-tui against headless, key latency, first paint", "app"),
    "soak": Command("minigpt-tui training and completing for minutes: memory, open files and threads", "soak",
                    "add_soak_arguments", "run_soak"),
    "stream": Command("one long completion into minigpt-tui's generation pane: key latency and memory", "soak",
                      "add_stream_arguments", "run_stream"),
    "inspect": Command("the Inspect view: one update of each view, and training tokens/s with it open vs closed",
                       "inspect"),
    "tokenizer": Command("byte-level BPE: seconds to learn 1,024 and 4,096 tokens, encoding MB/s", "tokenizer"),
    "completions": Command("a 10,000-entry completions file: seconds to load the newest, and minigpt-tui's "
                           "first paint with it", "completions"),
    "corpus": Command("fetch a second corpus for the budget benchmarks (Paradise Lost, from PyPI)", "corpus"),
    "nanogpt": Command("karpathy/nanoGPT's CPU recipe on a corpus: the val loss reached in a wall-clock budget",
                       "nanogpt"),
    "ddp": Command("torchrun (DDP): tokens/s of 1 process x N threads against N processes x 1 thread; on CUDA, "
                   "DDP's overhead and an NCCL run", "ddp"),
    "lab": Command("a Lab experiment at a time per variant: each variant's wall time against its budget", "lab"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        with signals_interrupt():
            return _run(argv)
    except Interrupted as interrupted:
        failed = f" ({interrupted.__cause__!r} while stopping)" if interrupted.__cause__ else ""
        print(f"\n{interrupted}: benchmark stopped{failed}", file=sys.stderr)
        return interrupted.exit_status


def _run(argv: list[str]) -> int:
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    parser = argparse.ArgumentParser(prog="python -m bench", description="MiniGPT benchmarks.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub = subcommands.add_parser(name, help=command.help, description=command.help,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name == chosen:  # only its module is imported, and only its flags are built
            module = importlib.import_module(f"bench.{command.module}")
            getattr(module, command.add_arguments)(sub)
            sub.set_defaults(run=getattr(module, command.run))
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # each line as it is measured, into a pipe too
    try:
        return args.run(args) or 0
    except MiniGPTError as e:
        parser.exit(1, f"error: {e}\n")


if __name__ == "__main__":
    raise SystemExit(main())
