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


@dataclass(frozen=True)
class Options:
    config: cfg.TrainConfig
    data: Path | None = None  # None: data/input.txt if it exists, else the built-in corpus
    checkpoint: Path = DEFAULT_CHECKPOINT
    from_scratch: bool = False
    settings: Path | None = None  # None: $MINIGPT_SETTINGS, else ./minigpt.toml
    explicit_keys: frozenset[str] = frozenset()  # hyperparameters the user set, not the preset
    retime: bool = False  # time the model sizes again for a time budget, not reading the speed cache


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt-tui", description="Train a character-level GPT and talk to it in the terminal.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--data", type=Path, default=None,
                     help="UTF-8 text to train on (default: data/input.txt, else the built-in corpus)")
    run.add_argument("--checkpoint", "--out", type=Path, default=DEFAULT_CHECKPOINT,
                     help="checkpoint to load at start and save to")
    run.add_argument("--from-scratch", action="store_true", help="ignore an existing checkpoint (it is "
                                                                 "overwritten at the first save)")
    run.add_argument("--settings", type=Path, default=None,
                     help="sampling settings file (default: $MINIGPT_SETTINGS, else ./minigpt.toml)")
    run.add_argument("--retime", action="store_true",
                     help="time the model sizes on this machine again for a time budget, not reading the speed cache")
    cfg.add_arguments(parser)
    return parser


def parse_options(argv: list[str] | None = None) -> Options:
    """Parse argv; raises ConfigError for a bad hyperparameter."""
    args = build_parser().parse_args(argv)
    config, explicit_keys = cfg.from_arguments(args)
    return Options(config=config, data=args.data, checkpoint=args.checkpoint, from_scratch=args.from_scratch,
                   settings=args.settings, explicit_keys=explicit_keys, retime=args.retime)
