"""Training hyperparameters: code defaults, named presets, a TOML file and
`key=value` overrides, each layer replacing the one before.

Every field is a declared setting (minigpt.plumbing.fields): its allowed
values and help line serve the checks, the TOML file and the CLI's flags
alike, so `--help` and the checks can never drift apart.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.fields import TomlFileError, add_flags, check_table, flag_values, read_toml, specs
from minigpt.plumbing.fields import setting as _setting


class ConfigError(MiniGPTError, ValueError):
    """A bad hyperparameter: the message names the key, the value and what is allowed."""


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "10m" or "1.5h"; ValueError otherwise."""
    text = text.strip().lower()
    unit = text[-1:] if text[-1:] in UNITS else "s"
    seconds = float(text.removesuffix(unit)) * UNITS[unit]
    if not math.isfinite(seconds):
        raise ValueError(text)
    return seconds


UNITS = {"s": 1, "m": 60, "h": 3600}


MAX_ITERS = 10_000_000


@dataclass(frozen=True)
class TrainConfig:
    # model shape
    block_size: int = _setting(128, "context length in tokens", low=8, high=8192)
    d_model: int = _setting(256, "width of the residual stream", low=8, high=8192)
    n_heads: int = _setting(4, "attention heads per layer (must divide d_model)", low=1, high=128)
    n_layers: int = _setting(4, "Transformer blocks", low=1, high=128)
    dropout: float = _setting(0.0, "dropout probability on the residual paths (attention weights are never dropped)",
                              low=0.0, high=0.9)
    # model switches: each a change since GPT-2, explained in minigpt/model.py (ModelConfig)
    rope: bool = _setting(False, "rotary position embeddings in place of learned positions")
    norm: str = _setting("layernorm", "the normalisation in each block and before the head",
                         choices=("layernorm", "rmsnorm"))
    activation: str = _setting("gelu", "the MLP's activation: gelu, relu2 (ReLU squared) or swiglu (a learned gate)",
                               choices=("gelu", "relu2", "swiglu"))
    qk_norm: bool = _setting(False, "normalise queries and keys before attention scores them")
    tie_head: bool = _setting(True, "the output head reuses the token embedding (false: a matrix of its own)")
    zero_init: bool = _setting(False, "the layers that write to the residual stream, and an untied head, start at zero")
    embed_norm: bool = _setting(False, "normalise the embeddings before the first block")
    x0_mix: bool = _setting(False, "each block mixes the embeddings back into its input, by learned weights")
    attention: bool = _setting(True, "attention layers (false: no position sees an earlier token)")
    mlp: bool = _setting(True, "MLP layers (false: attention alone)")
    # tokenizer
    tokenizer: str = _setting("char", "char: a token per character; bpe: byte-level BPE learned from the corpus",
                              choices=("char", "bpe"))
    vocab_size: int = _setting(1024, "bpe only: tokens in the vocabulary, the 256 bytes included", low=256,
                               high=32_768)
    # optimisation
    batch_size: int = _setting(24, "sequences per micro-batch", low=1, high=65536)
    grad_accum: int = _setting(1, "micro-batches per optimizer step, over all the processes of a torchrun run "
                               "(a multiple of their number): a step sees batch_size x block_size x grad_accum "
                               "tokens on any number of processes", low=1, high=4096)
    optimizer: str = _setting("adamw", "adamw: AdamW for every weight; muon: Muon for the matrices inside the "
                              "blocks, AdamW for embeddings, head and gains", choices=("adamw", "muon"))
    lr: float = _setting(4e-3, "peak learning rate (AdamW's)", low=0.0, high=1.0)
    min_lr: float = _setting(2e-4, "learning rate at the end of the decay", low=0.0, high=1.0)
    schedule: str = _setting("cosine", "after the warmup, cosine: decay along half a cosine; wsd: hold lr, "
                             "then decay in a straight line over the last decay_share of training",
                             choices=("cosine", "wsd"))
    decay_share: float = _setting(0.65, "wsd only: the share of training over which the rate decays", low=0.01,
                                  high=1.0)
    muon_lr: float = _setting(0.02, "muon only: Muon's peak learning rate, on the same schedule", low=0.0, high=1.0)
    muon_momentum: float = _setting(0.95, "muon only: Muon's momentum", low=0.0, high=0.9999)
    muon_momentum_warmup: int = _setting(300, "muon only: steps over which Muon's momentum rises from 0.85",
                                         low=0, high=10_000_000)
    muon_weight_decay: float = _setting(0.0, "muon only: weight decay of the matrices Muon moves", low=0.0,
                                        high=10.0)
    max_iters: int = _setting(3100, "training steps (with a time budget: at most this many)", low=1, high=MAX_ITERS)
    warmup_iters: int = _setting(100, "steps of linear learning-rate warmup", low=0, high=10_000_000)
    weight_decay: float = _setting(0.1, "AdamW weight decay (matrices only)", low=0.0, high=10.0)
    beta2: float = _setting(0.99, "AdamW beta2", low=0.0, high=0.99999)
    grad_clip: float = _setting(1.0, "clip the gradient norm to this (0 turns clipping off)", low=0.0, high=1e6)
    # evaluation
    eval_interval: int = _setting(250, "steps between evaluations (and checkpoint saves)", low=1, high=10_000_000)
    eval_iters: int = _setting(10, "batches averaged per evaluation", low=1, high=100_000)
    val_fraction: float = _setting(0.1, "share of the corpus held out for validation", low=0.01, high=0.5)
    # run
    time_budget: float = _setting(0.0, "train for this long, start-up included, e.g. 90s, 10m, 1.5h: the schedule, "
                                  "the evaluations and the last save fit in it (0: train for max_iters steps)",
                                  low=0.0, high=30 * 24 * 3600, parse=parse_duration,
                                  text_form="a duration such as 90s, 10m or 1.5h", flag="--time", metavar="DURATION")
    seed: int = _setting(1337, "random seed (weights, batches, dropout)", low=0, high=2**63 - 1)
    device: str = _setting("auto", "where to train", choices=("auto", "cpu", "cuda", "mps"))
    dtype: str = _setting("auto", "number format of the matmuls (auto: bfloat16 where the hardware is fast at it)",
                          choices=("auto", "float32", "bfloat16"))
    compile: bool = _setting(False, "compile the model with torch.compile")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The changes since GPT-2 that the presets with a time budget use: together they won at 150 s and at
# 600 s on two texts (docs/training.md, "Since GPT-2, measured"). Each key's own default stays the
# 2019 choice, as tiny and classic keep it, so that an old config or checkpoint means what it meant.
MODERN: dict[str, Any] = dict(rope=True, norm="rmsnorm", activation="relu2", qk_norm=True, tie_head=False,
                              zero_init=True, optimizer="muon", schedule="wsd")

PRESETS: dict[str, dict[str, Any]] = {
    # A model that trains in a second: for tests and trying things out.
    "tiny": dict(block_size=32, d_model=32, n_heads=2, n_layers=2, batch_size=8, max_iters=200,
                 warmup_iters=10, eval_interval=50, eval_iters=4, lr=3e-3, min_lr=3e-4),
    # Time budgets: two and a half and ten minutes on whatever machine runs them; the shape is
    # chosen for the machine (minigpt.plumbing.shape) unless the user gives it.
    "quick": dict(time_budget=150.0, warmup_iters=50, eval_iters=8, lr=5e-3, min_lr=3e-4, **MODERN),
    "default": dict(time_budget=600.0, **MODERN),
    # The original design's shape and the 2019 model, kept for comparisons.
    "classic": dict(block_size=128, d_model=128, n_heads=4, n_layers=4, batch_size=32, lr=1e-3, min_lr=1e-4),
}


def field_specs() -> dict[str, Any]:
    """The declared settings by name (type, default and metadata)."""
    return specs(TrainConfig)


def apply_overrides(config: TrainConfig, overrides: dict[str, Any], source: str = "") -> TrainConfig:
    """Return config with overrides applied, checking each key and value."""
    where = f"{source}: " if source else ""
    for key, value in overrides.items():
        if isinstance(value, dict):
            raise ConfigError(f"{where}{key!r} is a table, but a config file is flat: "
                              "write key = value lines without [sections]")
    checked, problems = check_table(field_specs(), overrides)
    if problems:
        raise ConfigError(where + next(iter(problems.values())))
    return _check_consistency(replace(config, **checked), source)


def _check_consistency(config: TrainConfig, source: str) -> TrainConfig:
    where = f"{source}: " if source else ""
    if config.d_model % config.n_heads:
        raise ConfigError(f"{where}n_heads = {config.n_heads} must divide d_model = {config.d_model}")
    if config.rope and (config.d_model // config.n_heads) % 2:
        raise ConfigError(f"{where}rope = true turns features in pairs: the head size d_model / n_heads = "
                          f"{config.d_model // config.n_heads} must be even")
    if config.min_lr > config.lr:
        raise ConfigError(f"{where}min_lr = {config.min_lr:g} must not exceed lr = {config.lr:g}")
    return config


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return apply_overrides(TrainConfig(), PRESETS[name], source=f"preset {name}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict (checked later by apply_overrides)."""
    path = Path(path)
    try:
        return read_toml(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; check the --config path") from None
    except TomlFileError as e:
        raise ConfigError(f"{path}: {e} (--config; a config file is key = value lines)") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse one `--set key=value`; the value is read as TOML, else as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def resolve(preset_name: str = "default", toml_path: str | Path | None = None,
            assignments: list[str] | None = None, flags: dict[str, Any] | None = None) -> TrainConfig:
    """Build the run's config: preset, then TOML file, then --set, then explicit flags."""
    return resolve_with_explicit_keys(preset_name, toml_path, assignments, flags)[0]


def resolve_with_explicit_keys(preset_name: str = "default", toml_path: str | Path | None = None,
                               assignments: list[str] | None = None, flags: dict[str, Any] | None = None,
                               ) -> tuple[TrainConfig, frozenset[str]]:
    """The run's config, and the keys the user set (in the file, by --set or by a flag) rather than the preset."""
    layers = [(str(toml_path), load_toml(toml_path))] if toml_path is not None else []
    layers += [("--set", dict([parse_assignment(text)])) for text in assignments or []]
    layers += [("command line", flags or {})]
    config = preset(preset_name)
    for source, overrides in layers:
        config = apply_overrides(config, overrides, source=source)
    explicit = frozenset(key for _, overrides in layers for key in overrides)
    if "max_iters" in explicit and "time_budget" not in explicit:
        config = replace(config, time_budget=0.0)  # an explicit step count means a run of that many steps
    elif config.time_budget and "max_iters" not in explicit:
        config = replace(config, max_iters=MAX_ITERS)  # the budget ends the run, however fast the machine
    return config, explicit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --preset, --config, --set and one flag per hyperparameter (--lr, --max-iters...) to a parser."""
    hyper = parser.add_argument_group(
        "hyperparameters", "Each layer overrides the one before: the defaults below < --preset < --config < --set "
        "< these flags. The default preset is a 10-minute time budget, whose model shape fits this machine.")
    hyper.add_argument("--preset", default="default", choices=list(PRESETS),
                       help="named set of hyperparameters (default: default)")
    hyper.add_argument("--config", type=Path, metavar="PATH", help="TOML file of hyperparameters")
    hyper.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one hyperparameter")
    add_flags(hyper, field_specs().values())


def from_arguments(args: argparse.Namespace) -> tuple[TrainConfig, frozenset[str]]:
    """The run's config from arguments parsed with add_arguments, and the keys the user set explicitly."""
    return resolve_with_explicit_keys(args.preset, args.config, args.set, flag_values(args, field_specs()))
