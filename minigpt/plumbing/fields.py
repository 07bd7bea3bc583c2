"""Settings declared once. Each field of a settings dataclass (TrainConfig,
SamplingSettings) carries its type, its allowed values, its help line and its
command-line flag:

    lr: float = setting(4e-3, "peak learning rate", low=0.0, high=1.0)

From that declaration alone come the one checker (check), the one reader of
a table of values (check_table, after read_toml) and the one argparse
builder (add_flags), so that the checks, --help, the app's form and the files can
never drift apart. A declaration is the dataclass field itself: its type and
default, and what setting() puts in its metadata.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import Field, field, fields
from pathlib import Path
from typing import Any

from minigpt.plumbing.errors import did_you_mean
from minigpt.plumbing.terminal import unescape

STRINGS = "tuple[str, ...]"  # the type of a setting that holds several strings
_BAD = object()  # what _converted returns for a value that is not allowed


def setting(default: Any, help: str, *, label: str = "", low: float | None = None, high: float | None = None,
            low_open: bool = False, low_means: str = "", choices: tuple[str, ...] | None = None,
            parse: Callable[[str], float] | None = None, text_form: str = "", flag: str | None = None,
            metavar: str | None = None) -> Any:
    """A dataclass field that declares a setting.
    help: one line, for --help and the app; label: a short title, for a form.
    low to high: the allowed range of a number, low itself excluded when low_open;
    low_means: what the lowest value does, if it is special ("greedy", "off").
    choices: the allowed strings. parse: reads a number also given as text
    (text_form says how, e.g. "a duration such as 90s"). flag and metavar name
    the command-line flag when --key-name will not do."""
    return field(default=default, metadata={
        "help": help, "label": label, "low": low, "high": high, "low_open": low_open, "low_means": low_means,
        "choices": choices, "parse": parse, "text_form": text_form, "flag": flag, "metavar": metavar})


def specs(settings_class: type) -> dict[str, Field[Any]]:
    """The declared settings of a dataclass by name (type, default and metadata)."""
    return {f.name: f for f in fields(settings_class)}


def kind_of(spec: Field[Any]) -> str:
    """A setting's type as written: "int", "float", "str", "bool" or "tuple[str, ...]"
    (a string already where the declaring module postpones its annotations)."""
    if isinstance(spec.type, str):
        return spec.type
    return spec.type.__name__ if isinstance(spec.type, type) else str(spec.type)


# --- checking -------------------------------------------------------------------------------


class BadValue(ValueError):
    """A value a setting does not allow; the message names the key, the value and what is allowed."""


def check(spec: Field[Any], value: object) -> Any:
    """The value as the setting holds it (a number as a float, a list as a
    tuple), or BadValue saying what is allowed."""
    converted = _converted(spec, value)
    if converted is _BAD:
        shown = list(value) if isinstance(value, tuple) else value  # as it is written in TOML
        raise BadValue(f"{spec.name} = {shown!r}: expected {allowed(spec)}")
    return converted


def check_table(declared: dict[str, Field[Any]], table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of a table (read from a file, or overrides) that are allowed,
    converted; and, by key, what is wrong with each of the others: an unknown
    key (with the known one it is closest to) or a value not allowed."""
    good, problems = {}, {}
    for key, value in table.items():
        if key not in declared:
            problems[key] = f"unknown key {key!r}{did_you_mean(key, declared)}"
            continue
        try:
            good[key] = check(declared[key], value)
        except BadValue as e:
            problems[key] = str(e)
    return good, problems


def allowed(spec: Field[Any]) -> str:
    """What a setting accepts, in words, e.g. 'a number from 0 (greedy) to 100'."""
    meta = spec.metadata
    if kind_of(spec) == "bool":
        return "true or false"
    if meta["choices"]:
        return f"one of {', '.join(meta['choices'])}"
    if kind_of(spec) == STRINGS:
        return "a list of non-empty strings"
    kind = "an integer" if kind_of(spec) == "int" else "a number"
    low = f"{_number(meta['low'])} ({meta['low_means']})" if meta["low_means"] else _number(meta["low"])
    span = f"in ({low}, {_number(meta['high'])}]" if meta["low_open"] else f"from {low} to {_number(meta['high'])}"
    return f"{meta['text_form']}, or {kind} {span}" if meta["text_form"] else f"{kind} {span}"


def is_number(value: object) -> bool:
    """An int or a finite float, not a bool. An int of any size: TOML and JSON allow
    them, and one too big for a float is still a number (math.isfinite would overflow)."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _converted(spec: Field[Any], value: object) -> Any:
    meta = spec.metadata
    if kind_of(spec) == "bool":
        return value if isinstance(value, bool) else _BAD
    if meta["choices"]:
        return value if isinstance(value, str) and value in meta["choices"] else _BAD
    if kind_of(spec) == STRINGS:
        good = isinstance(value, list | tuple) and all(isinstance(s, str) and s for s in value)
        return tuple(value) if good else _BAD
    if meta["parse"] and isinstance(value, str):
        try:
            value = meta["parse"](value)
        except ValueError:
            return _BAD
    if not (_is_int(value) if kind_of(spec) == "int" else is_number(value)) or not _in_range(meta, value):
        return _BAD
    return int(value) if kind_of(spec) == "int" else float(value)


def _in_range(meta: dict[str, Any], value: float) -> bool:
    above_low = meta["low"] < value if meta["low_open"] else meta["low"] <= value
    return above_low and value <= meta["high"]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- command-line flags ---------------------------------------------------------------------


def add_flags(group: argparse._ArgumentGroup, declared: Iterable[Field[Any]], default_word: str = "default") -> None:
    """One flag per setting (--top-k, --max-iters...), with its help line, what
    it allows and its default. Every flag's own default is None: flag_values
    takes the ones given, and the checks come later, with the setting's words."""
    for spec in declared:
        meta = spec.metadata
        flag = meta["flag"] or "--" + spec.name.replace("_", "-")
        if kind_of(spec) == "bool":
            group.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{meta['help']} ({default_word}: {str(spec.default).lower()})")
        elif kind_of(spec) == STRINGS:
            group.add_argument(flag, dest=spec.name, action="append", type=unescape, metavar=meta["metavar"] or "TEXT",
                               help=f"{meta['help']} (repeatable; \\n and \\t work; "
                                    f"{default_word}: {list(spec.default) or 'none'})")
        elif meta["choices"]:
            group.add_argument(flag, dest=spec.name, choices=meta["choices"], metavar=meta["metavar"],
                               help=f"{meta['help']} ({default_word}: {spec.default})")
        else:
            kind = str if meta["parse"] else int if kind_of(spec) == "int" else float
            metavar = meta["metavar"] or ("N" if kind_of(spec) == "int" else "X")
            group.add_argument(flag, dest=spec.name, type=kind, metavar=metavar,
                               help=f"{meta['help']}; {allowed(spec)} ({default_word}: {spec.default})")


def flag_values(args: argparse.Namespace, declared: Iterable[str]) -> dict[str, Any]:
    """The settings given as flags (parsed with add_flags), by name."""
    return {name: getattr(args, name) for name in declared if getattr(args, name) is not None}


# --- settings files -------------------------------------------------------------------------


class TomlFileError(ValueError):
    """A settings file that cannot be read or parsed; the message says why, in a few words."""


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in path. FileNotFoundError when there is none;
    TomlFileError when it cannot be read or parsed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise TomlFileError("is a directory, not a TOML file") from None
    except OSError as e:
        raise TomlFileError(f"cannot be read ({e.strerror or e})") from None
    try:
        # utf-8-sig: editors on Windows often start a UTF-8 file with a byte-order mark.
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise TomlFileError(f"not UTF-8 text at byte {e.start}; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise TomlFileError(f"not valid TOML ({e}); fix that line") from None
