"""Experiments for the Lab: variants of one run, trained back to back on the
same text with the same seed, each for the same time, to answer one question.

An experiment is a name, its question, a base (config overrides every variant
shares) and its variants (each a name and its own overrides). How its results
are read (minigpt.plumbing.conclusions) is part of it too:
- "reference": each variant against the first, e.g. the full model against
  the model without attention;
- "scale": the variants are steps along one knob (width 32 -> 256), and the
  question is which step did best, and whether more helped.

The built-in ones are in BUILTINS. A learner writes their own as a TOML file:

    question = "Does dropout help on a small text?"
    compare = "reference"        # or "scale"; reference is the default

    [base]                       # optional: overrides every variant shares
    d_model = 128

    [variants.none]              # in order; the first is the reference
    dropout = 0.0

    [variants.some]
    dropout = 0.1

Every override is checked as a config file's is (minigpt.plumbing.config),
and a bad file gets one line naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from minigpt.plumbing.config import MODERN, ConfigError, TrainConfig, apply_overrides, field_specs
from minigpt.plumbing.errors import MiniGPTError, did_you_mean

Compare = Literal["reference", "scale"]
COMPARES = ("reference", "scale")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")  # a variant's name is a file name too
MAX_VARIANTS = 12  # each trains for the whole time per variant: more would take the afternoon
MAX_FILE_BYTES = 64 * 1024  # an experiment file is a few lines
# The Lab gives every variant the same time (or steps): a variant may not change it.
FIXED_KEYS = ("time_budget", "max_iters")
# Every experiment starts from this model, on any machine, so that a learner's results compare with
# the docs' reference results: one that a 2-core CPU trains well in a minute (~0.8M parameters, the
# shape chooser's second rung). An experiment's base and the user's --set come on top.
LAB_BASE = {"block_size": 64, "d_model": 128, "n_heads": 4, "n_layers": 4, "batch_size": 12, "lr": 4e-3,
            "min_lr": 2e-4, "warmup_iters": 50}


class ExperimentError(MiniGPTError, ValueError):
    """An experiment that cannot run: the message names the file (or experiment) and the key."""


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # a noun phrase for the conclusion, e.g. "the model without attention"; default the name
    expect: Literal["better", "worse", ""] = ""  # against the reference, what this variant is expected to be...
    why: str = ""  # ...and why, said only when the measurement agrees,
    otherwise: str = ""  # what is known to turn it the other way, said only when the measurement disagrees

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    variants: tuple[Variant, ...]
    base: Mapping[str, Any] = field(default_factory=dict)
    compare: Compare = "reference"
    # For "scale": why more of the knob helped, or why it did not (said only when the results show it).
    more_helps: str = ""
    more_hurts: str = ""
    source: str = "built-in"  # or the file it was read from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """As to_dict wrote it (the Lab's own record of an experiment it ran)."""
        variants = tuple(Variant(**variant) for variant in data["variants"])
        return cls(**{**data, "variants": variants})

    def missing_keys(self) -> list[str]:
        """Config keys this experiment sets that this MiniGPT does not have (yet)."""
        known = field_specs()
        keys = [*self.base, *(key for variant in self.variants for key in variant.overrides)]
        return sorted({key for key in keys if key not in known})


def _scale(name: str, key: str, values: list[int], label: Callable[[int], str]) -> tuple[Variant, ...]:
    """Variants along one knob, e.g. "width-32" setting d_model = 32, "a width of 32" in a conclusion."""
    return tuple(Variant(f"{name}-{value}", {key: value}, label(value)) for value in values)


def _counted(noun: str) -> Callable[[int], str]:
    return lambda n: f"{n} {noun}{'s' if n != 1 else ''}"


# The 2019 recipe is today's default config; each modern change is one switch on it (issue 21's keys).
MODERN_VARIANTS = (
    Variant("rope", {"rope": True}, "rotary positions (RoPE) alone", "better",
            "attention sees how far apart two tokens are, not where each one is"),
    Variant("rmsnorm", {"norm": "rmsnorm"}, "RMSNorm alone", "better", "the same normalising at less cost"),
    Variant("relu2", {"activation": "relu2"}, "ReLU² alone", "better", "a sharper, cheaper non-linearity"),
    Variant("swiglu", {"activation": "swiglu"}, "SwiGLU alone", "better", "the MLP learns a gate on what it passes"),
    Variant("qk-norm", {"qk_norm": True}, "QK-norm alone", "better", "attention scores stay in range at a high lr"),
    Variant("untied-head", {"tie_head": False, "zero_init": True}, "an untied head, output layers from zero, alone",
            "better", "reading a token and predicting one no longer share a matrix",
            otherwise="a head that starts at zero learns slowly under AdamW; with Muon it is a small gain"),
    Variant("muon", {"optimizer": "muon"}, "the Muon optimizer alone", "better",
            "each update moves every direction of a matrix, not mostly the largest ones"),
    Variant("wsd", {"schedule": "wsd"}, "the warmup-stable-decay schedule alone", "better",
            "a long stretch at the full learning rate, then a decay to near zero"),
)

BUILTINS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        "attention-and-mlp", "Why does a Transformer need both attention and the MLP?",
        (Variant("full", {}, "the full model"),
         Variant("no-mlp", {"mlp": False}, "the model without the MLP", "worse",
                 "attention gathers context, the MLP turns it into a prediction"),
         Variant("no-attention", {"attention": False}, "the model without attention", "worse",
                 "it sees only the current token"),
         Variant("neither", {"attention": False, "mlp": False}, "the model with neither (a bigram model)", "worse",
                 "each position sees only its own token, through one table"))),
    Experiment(
        "width", "At equal time, what does a wider model buy?",
        _scale("width", "d_model", [32, 64, 128, 256], lambda n: f"a width of {n}"), compare="scale",
        more_helps="a wider model learns more from each token, and the time still fed it enough of them",
        more_hurts="a wider step costs more, so in the same time the wider model saw fewer tokens"),
    Experiment(
        "depth", "At equal time, what do more layers buy?",
        _scale("layers", "n_layers", [1, 2, 4, 8], _counted("layer")), compare="scale",
        more_helps="each layer can build on what the one below found, and the time still fed them enough tokens",
        more_hurts="each layer costs time, so in the same time the deeper model saw fewer tokens"),
    Experiment(
        "heads", "At one width, do more attention heads help?",
        _scale("heads", "n_heads", [1, 2, 4, 8], _counted("head")), compare="scale",
        more_helps="several heads can look at several earlier tokens at once",
        more_hurts="each head gets a narrower slice of the width to compare tokens with"),
    Experiment(
        "context", "How far back does the model need to look?",
        _scale("block", "block_size", [8, 32, 128, 256], lambda n: f"a context of {n}"), compare="scale",
        more_helps="what comes next depends on text further back than the shorter contexts reach",
        more_hurts="a longer context costs more per token, and the text further back told the model little"),
    Experiment(
        "tokenizer", "Characters or BPE tokens: which learns faster, in bits per character?",
        (Variant("char", {"tokenizer": "char"}, "a token per character"),
         *(Variant(f"bpe-{size}", {"tokenizer": "bpe", "vocab_size": size}, f"BPE {size:,}")
           for size in (256, 512, 1024))), compare="scale",
        more_helps="a larger vocabulary packs more text into each token, so the model sees more text in the same "
                   "time and context",
        more_hurts="a larger vocabulary has more tokens to learn, each seen less often in the time"),
    Experiment(
        "then-and-now", "What has the field learned since GPT-2 (2019)?",
        (Variant("gpt2-2019", {}, "the 2019 GPT-2 recipe"), *MODERN_VARIANTS,
         Variant("all-modern", MODERN, "the modern recipe (every change together)", "better", "the gains add up")))
)}


def find_experiment(name_or_path: str) -> Experiment:
    """A built-in experiment by name, or one read from a TOML file."""
    if name_or_path in BUILTINS:
        return BUILTINS[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_experiment(path)
    raise ExperimentError(f"no experiment named {name_or_path!r}{did_you_mean(name_or_path, BUILTINS)}; "
                          "or pass an experiment file (NAME.toml)")


def check_runnable(experiment: Experiment) -> None:
    """Refuse an experiment whose keys this MiniGPT lacks, saying which."""
    if missing := experiment.missing_keys():
        raise ExperimentError(f"{experiment.name} needs the config keys {', '.join(missing)}, which this version of "
                              "MiniGPT does not have yet (they come with the modern GPT of issue 21)")


def base_config(experiment: Experiment, user: Mapping[str, Any] | None = None) -> TrainConfig:
    """The config every variant starts from: the Lab's base, then the experiment's, then the user's
    --set (which may not change the time: every variant gets the same)."""
    user = dict(user or {})
    if fixed := [key for key in FIXED_KEYS if key in user]:
        raise ExperimentError(f"--set {fixed[0]}: every variant gets the same time; give it with --time or --steps")
    config = apply_overrides(TrainConfig(), LAB_BASE, source="the Lab's base")
    config = apply_overrides(config, dict(experiment.base), source=f"{experiment.source}: base")
    return apply_overrides(config, user, source="--set")


def variant_config(base: TrainConfig, experiment: Experiment, variant: Variant) -> TrainConfig:
    """base (the Lab's resolved base config) with the variant's overrides, checked."""
    return apply_overrides(base, dict(variant.overrides), source=f"{experiment.source}: variants.{variant.name}")


# --- a learner's own experiment, from a TOML file ---------------------------------------------

FILE_KEYS = ("name", "question", "compare", "base", "variants", "more_helps", "more_hurts")


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; ExperimentError (one line, naming file and key) if it is bad."""
    path = Path(path)
    data = _read_toml(path)
    if unknown := [key for key in data if key not in FILE_KEYS]:
        raise ExperimentError(f"{path}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], FILE_KEYS)}")
    name = _text(path, data, "name", default=path.stem)
    if not NAME.fullmatch(name):
        raise ExperimentError(f"{path}: name = {name!r}: expected letters, digits, '-', '_' or '.' (at most 40), "
                              "as it names the experiment's folder")
    question = _text(path, data, "question")
    if not question.strip():
        raise ExperimentError(f'{path}: question is missing: say what the experiment asks, e.g. question = "Does '
                              'dropout help?"')
    compare = _text(path, data, "compare", default="reference")
    if compare not in COMPARES:
        raise ExperimentError(f"{path}: compare = {compare!r}: expected one of {', '.join(COMPARES)}")
    base = _table(path, data.get("base", {}), "base")
    variants = _variants(path, data.get("variants"))
    experiment = Experiment(name, question.strip(), variants, base, compare, _text(path, data, "more_helps", ""),
                            _text(path, data, "more_hurts", ""), str(path))
    _check_overrides(path, experiment)
    return experiment


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such experiment file; check the path, or run `minigpt-lab list`") from None
    except IsADirectoryError:
        raise ExperimentError(f"{path}: is a directory, expected an experiment file (NAME.toml)") from None
    except OSError as e:
        raise ExperimentError(f"{path}: cannot be read ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ExperimentError(f"{path}: {len(data):,} bytes; an experiment file is a few lines (at most "
                              f"{MAX_FILE_BYTES // 1024} KiB)")
    try:
        return tomllib.loads(data.decode("utf-8-sig"))  # -sig: a byte-order mark from a Windows editor
    except UnicodeDecodeError as e:
        raise ExperimentError(f"{path}: not UTF-8 text at byte {e.start}; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{path}: invalid TOML: {e}") from None


def _text(path: Path, data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ExperimentError(f"{path}: {key} = {value!r:.60}: expected a string in quotes")
    return value


def _table(path: Path, value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExperimentError(f"{path}: {where} = {value!r:.60}: expected a table of config overrides, e.g. "
                              f"[{where}] then key = value lines")
    if nested := [key for key, item in value.items() if isinstance(item, dict)]:
        raise ExperimentError(f"{path}: {where}.{nested[0]} is a table: a variant's overrides are key = value "
                              "lines, one level deep")
    if fixed := [key for key in FIXED_KEYS if key in value]:
        raise ExperimentError(f"{path}: {where}.{fixed[0]}: every variant gets the same time; set it with "
                              "`minigpt-lab run ... --time` (or --steps)")
    return value


def _variants(path: Path, value: object) -> tuple[Variant, ...]:
    if value is None:
        raise ExperimentError(f"{path}: no [variants.NAME] tables: an experiment compares at least two variants")
    if not isinstance(value, dict):
        raise ExperimentError(f"{path}: variants = {value!r:.60}: expected [variants.NAME] tables of overrides")
    if not 2 <= len(value) <= MAX_VARIANTS:
        raise ExperimentError(f"{path}: {len(value)} variant(s): an experiment compares 2 to {MAX_VARIANTS}")
    variants = []
    for name, overrides in value.items():
        if not NAME.fullmatch(name):
            raise ExperimentError(f"{path}: variants.{name!r:.60}: a variant's name is letters, digits, '-', '_' "
                                  "or '.' (at most 40), as it names its checkpoint")
        variants.append(Variant(name, _table(path, overrides, f"variants.{name}")))
    return tuple(variants)


def _check_overrides(path: Path, experiment: Experiment) -> None:
    """Each variant's config, built as the Lab will build it, with the config's own checks."""
    try:
        base = base_config(experiment)
        for variant in experiment.variants:
            variant_config(base, experiment, variant)
    except ConfigError as e:
        raise ExperimentError(str(e)) from None
