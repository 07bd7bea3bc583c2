"""Every command's --help says each flag's default once, in its own words
(issue 19, defect 8: argparse's ArgumentDefaultsHelpFormatter appended
"(default: None)" to help lines that already said what the default does)."""

from __future__ import annotations

import re

import pytest

import generate_cli
import runs_cli
import tokenize_cli
import train_cli
from tui import options

PARSERS = {"minigpt-train": train_cli.build_parser, "minigpt-tui": options.build_parser,
           "minigpt-tokenize": tokenize_cli.build_parser, "minigpt-generate": generate_cli.build_parser,
           "minigpt-runs": runs_cli.build_parser}


def help_entries(text: str) -> dict[str, str]:
    """Each argument's entry in a --help text, as one line: the flags, then their help."""
    entries: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if re.match(r"  \S", line):  # an argument's first line; its help goes on, indented further
            name = line.split()[0]
            entries[name] = line.strip()
        elif name and line.startswith("    "):
            entries[name] += " " + line.strip()
        else:
            name = None  # a group's title or description
    return entries


@pytest.mark.parametrize("command", PARSERS)
def test_each_flag_gives_its_default_once(command):
    entries = help_entries(PARSERS[command]().format_help())
    assert len(entries) > 3, entries
    twice = {name: entry for name, entry in entries.items() if entry.count("default:") > 1}
    assert twice == {}, f"{command} --help gives a default twice"
    assert not [entry for entry in entries.values() if "default: None" in entry]


def test_the_run_flags_and_hyperparameters_are_the_same_in_the_trainer_and_the_app():
    train = help_entries(train_cli.build_parser().format_help())
    app = help_entries(options.build_parser().format_help())
    shared = {name: entry for name, entry in train.items() if name in app}
    assert {"--data", "--out", "--resume", "--from-scratch", "--lr", "--time", "--preset"} <= set(shared)
    assert all(app[name] == entry for name, entry in shared.items())
    assert "character-level" not in options.build_parser().description


def test_the_help_check_finds_a_default_given_twice():
    doubled = "options:\n  --data DATA  text (default: data/input.txt) (default: None)\n  --x X  x\n"
    assert help_entries(doubled)["--data"].count("default:") == 2
