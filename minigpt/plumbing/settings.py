"""The sampling settings: what each one means and allows (SamplingSettings,
whose field metadata the CLI's flags and the app's form are built from), and
the file that keeps them, TOML that people can read and edit by hand:

    [sampling]
    temperature = 0.8
    top_k = 0
    top_p = 0.95
    repetition_penalty = 1.0
    max_new_tokens = 500
    seed = -1
    stop = ["\\n\\n"]

Where it lives: the --settings flag, else the file named by $MINIGPT_SETTINGS,
else minigpt.toml in the working directory (beside the data/ and checkpoints/
folders a project already uses).

Loading never fails: a missing file means defaults; a file that cannot be read
or parsed, or a bad value, gives one problem line (file, key, what is wrong)
and the default for what was bad. Loading never writes. Saving rewrites only
the keys of [sampling] it owns; every other key and table (e.g. the TUI's
[keymap] and [tui]) is written back as it was read. Comments are not kept
(tomli-w cannot write them). Saving refuses to replace a file that cannot be
read or parsed, since what it holds would be lost.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.fields import BadValue, TomlFileError, check, check_table, read_toml, setting, specs
from minigpt.plumbing.paths import DEFAULT_SETTINGS

MAX_NEW_TOKENS_LIMIT = 100_000
DRAWN_SEEDS = 2**32  # a drawn seed is below this: short enough to read back and type (any seed repeats its text)


class SamplingSettingError(MiniGPTError, ValueError):
    """A sampling setting is out of range; the message names it and its allowed range."""


def _setting(default: Any, label: str, help: str, **allowed: Any) -> Any:
    """A declared setting (minigpt.plumbing.fields) with the label the app's form shows it by."""
    return setting(default, help, label=label, **allowed)


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = _setting(0.8, "Temperature", "0 always picks the likeliest token; higher is wilder",
                                  low=0, high=100, low_means="greedy")
    top_k: int = _setting(0, "Top-k", "keep only the k likeliest tokens; 0 keeps all",
                          low=0, high=1_000_000, low_means="off")
    top_p: float = _setting(0.95, "Top-p", "keep the likeliest tokens up to a total probability p",
                            low=0, high=1, low_open=True)
    repetition_penalty: float = _setting(1.0, "Repetition penalty", "above 1 makes repeats less likely; 1 is off",
                                         low=0, high=10, low_open=True)
    max_new_tokens: int = _setting(500, "Max tokens", "the longest completion, in tokens",
                                   low=1, high=MAX_NEW_TOKENS_LIMIT)
    seed: int = _setting(-1, "Seed", "the same seed repeats a completion; -1 draws a new one",
                         low=-1, high=2**63 - 1, low_means="random")
    stop: tuple[str, ...] = _setting((), "Stop strings", "end before any of these strings")

    def __post_init__(self) -> None:
        for name, spec in field_specs().items():  # each value as the setting holds it, or the first bad one named
            try:
                object.__setattr__(self, name, check(spec, getattr(self, name)))
            except BadValue as e:
                raise SamplingSettingError(str(e)) from None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data

    def seeded(self) -> SamplingSettings:
        """These settings with a concrete seed: the one set, or a fresh random one for -1.
        Sample with the result and keep its seed: the same seed repeats the text."""
        if self.seed >= 0:
            return self
        return replace(self, seed=random.randrange(DRAWN_SEEDS))


def field_specs() -> dict[str, Field[Any]]:
    """The declared settings by name (type, default and metadata), for building CLIs and forms."""
    return specs(SamplingSettings)


SETTING_NAMES = tuple(field_specs())


SETTINGS_ENV = "MINIGPT_SETTINGS"
TABLE = "sampling"


class SettingsError(MiniGPTError):
    """The settings file cannot be written; the message names it and says why."""


def settings_path(cli_value: str | Path | None = None) -> Path:
    """--settings if given, else $MINIGPT_SETTINGS if set, else ./minigpt.toml."""
    if cli_value:
        return Path(cli_value)
    if env := os.environ.get(SETTINGS_ENV):
        return Path(env)
    return DEFAULT_SETTINGS


@dataclass
class LoadedSettings:
    path: Path
    sampling: SamplingSettings  # good values from the file, defaults for missing or bad keys
    problems: list[str] = field(default_factory=list)  # one line each: file, key, problem
    document: dict[str, Any] = field(default_factory=dict)  # the whole file as read; {} when missing or unreadable


def load_settings(path: str | Path) -> LoadedSettings:
    path = Path(path)
    document, problem = _read_document(path)
    problems = [f"{path}: {problem}; using the default settings"] if problem else []
    table = document.get(TABLE, {})
    if not isinstance(table, dict):
        problems.append(f"{path}: {TABLE} = {table!r}: expected a [{TABLE}] table; using the default settings")
        table = {}
    if isinstance(table.get("stop"), str):
        table = {**table, "stop": [table["stop"]]}  # a single stop string is allowed without brackets
    good, bad = check_table(field_specs(), table)
    for key, what in bad.items():
        fallback = f"using the default {_DEFAULTS[key]!r}" if key in _DEFAULTS else "ignored"
        problems.append(f"{path}: [{TABLE}] {what}; {fallback}")
    return LoadedSettings(path, SamplingSettings(**good), problems, document)


def save_settings(path: str | Path, sampling: SamplingSettings, document: dict[str, Any] | None = None) -> None:
    """Write sampling into [sampling] of document and the result to path,
    atomically. Keys and tables this program does not own are kept."""
    path = Path(path)
    if path.is_file() and (problem := _read_document(path)[1]):
        raise SettingsError(f"{path}: not saved, so as not to lose what the file holds ({problem}); "
                            "fix the file or delete it first")
    document = copy.deepcopy(document) if document else {}
    table = document.get(TABLE)
    unknown = {k: v for k, v in table.items() if k not in SETTING_NAMES} if isinstance(table, dict) else {}
    document[TABLE] = {**sampling.to_dict(), **unknown}
    try:
        data = tomli_w.dumps(document).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{path}: cannot write the settings as TOML ({e})") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as e:
        raise SettingsError(f"{path}: cannot save settings ({e.strerror or e})") from None


_DEFAULTS = {f.name: f.default for f in fields(SamplingSettings)}


def _read_document(path: Path) -> tuple[dict[str, Any], str | None]:
    """The file as a dict, or {} and what is wrong with it. A missing file is not a problem."""
    try:
        return read_toml(path), None
    except FileNotFoundError:
        return {}, None
    except TomlFileError as e:
        return {}, str(e)
