"""Command-line flags of minigpt-tui, the same as minigpt-train's where they overlap.

Parsing resolves the hyperparameters at once (minigpt.plumbing.config needs no
PyTorch), so a bad flag is a one-line error before the app opens.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from minigpt.plumbing import config as cfg
from minigpt.plumbing.paths import DEFAULT_CHECKPOINT
from minigpt.plumbing.session import Start, add_run_arguments, start_of


@dataclass(frozen=True)
class Options:
    config: cfg.TrainConfig
    data: Path | None = None  # None: data/input.txt if it exists, else the built-in corpus
    checkpoint: Path = DEFAULT_CHECKPOINT
    start: Start = "auto"  # resume the checkpoint if there is one / insist on one / a new model
    settings: Path | None = None  # None: $MINIGPT_SETTINGS, else ./minigpt.toml
    explicit_keys: frozenset[str] = frozenset()  # hyperparameters the user set, not the preset
    retime: bool = False  # time the model sizes again for a time budget, not reading the speed cache


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigpt-tui", description="Train a GPT and talk to it in the terminal.")
    run = add_run_arguments(parser)
    run.add_argument("--settings", type=Path, default=None, metavar="PATH",
                     help="sampling settings file (default: $MINIGPT_SETTINGS, else ./minigpt.toml)")
    return parser


def parse_options(argv: list[str] | None = None) -> Options:
    """Parse argv; raises ConfigError for a bad hyperparameter."""
    args = build_parser().parse_args(argv)
    config, explicit_keys = cfg.from_arguments(args)
    return Options(config=config, data=args.data, checkpoint=args.out, start=start_of(args),
                   settings=args.settings, explicit_keys=explicit_keys, retime=args.retime)
