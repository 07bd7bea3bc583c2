"""The sampling settings file: TOML that people can read and edit by hand.

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
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from minigpt.atomic import atomic_write_bytes
from minigpt.errors import MiniGPTError, did_you_mean
from minigpt.paths import DEFAULT_SETTINGS
from minigpt.sampling import SETTING_NAMES, SamplingSettingError, SamplingSettings

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
    good: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SETTING_NAMES:
            problems.append(f"{path}: [{TABLE}] unknown key {key!r}{did_you_mean(key, SETTING_NAMES)}; ignored")
            continue
        if key == "stop" and isinstance(value, str):
            value = [value]  # a single stop string is allowed without brackets
        try:
            SamplingSettings(**{key: value})  # checks this key alone; the others are defaults
        except SamplingSettingError as e:
            problems.append(f"{path}: [{TABLE}] {e}; using the default {_DEFAULTS[key]!r}")
            continue
        good[key] = value
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
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except IsADirectoryError:
        return {}, "is a directory, not a settings file"
    except OSError as e:
        return {}, f"cannot be read ({e.strerror or e})"
    try:
        # utf-8-sig: editors on Windows often start a UTF-8 file with a byte-order mark.
        return tomllib.loads(data.decode("utf-8-sig")), None
    except UnicodeDecodeError as e:
        return {}, f"not UTF-8 text at byte {e.start}"
    except tomllib.TOMLDecodeError as e:
        return {}, f"not valid TOML ({e})"

