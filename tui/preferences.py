"""The TUI's own tables in the settings file, beside [sampling]:

    [tui]
    theme = "nord"

    [keymap]        # binding id = key(s), as listed on the help screen
    train = "f5"
    save = "ctrl+s"

Reading never fails: a bad entry becomes a problem line and is skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from pathlib import Path
from typing import Any


def read_theme(document: dict[str, Any], path: Path, themes: Collection[str]) -> tuple[str | None, list[str]]:
    """The theme named in [tui], if it is a known one."""
    table = document.get("tui", {})
    if not isinstance(table, dict):
        return None, [f"{path}: tui = {table!r}: expected a [tui] table; ignored"]
    theme = table.get("theme")
    if theme is None:
        return None, []
    if theme not in themes:
        return None, [f"{path}: [tui] theme = {theme!r}: not a theme; expected one of {', '.join(sorted(themes))}"]
    return theme, []


def read_keymap(document: dict[str, Any], path: Path, binding_ids: Collection[str]) -> tuple[dict[str, str], list[str]]:
    """The [keymap] entries that name a binding id and give keys as a string."""
    table = document.get("keymap", {})
    if not isinstance(table, dict):
        return {}, [f"{path}: keymap = {table!r}: expected a [keymap] table; ignored"]
    keymap, problems = {}, []
    for binding_id, keys in table.items():
        if binding_id not in binding_ids:
            problems.append(f"{path}: [keymap] unknown binding id {binding_id!r}; known: {', '.join(binding_ids)}")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f"{path}: [keymap] {binding_id} = {keys!r}: expected keys in quotes, e.g. \"f5\"")
        else:
            keymap[binding_id] = keys
    return keymap, problems


def with_theme(document: dict[str, Any], theme: str) -> dict[str, Any]:
    """A copy of document whose [tui] table names theme; other keys are kept."""
    document = copy.deepcopy(document)
    table = document.get("tui")
    document["tui"] = {**(table if isinstance(table, dict) else {}), "theme": theme}
    return document
