"""The README's front page against the program: its set-up and run commands
parse as the programs they name, its test command is the one CI runs, and its
table of keys names keys the app binds, every view's among them. A front page
that drifts from the program fails here."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# How the README writes a key, as Textual names it.
KEY_NAMES = {"/": "slash", "+": "plus", ",": "comma", "?": "question_mark", "Ctrl+Q": "ctrl+q"}


def section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def commands(text: str) -> list[list[str]]:
    """Each command of the text's bash blocks (a line, or a part of one between &&), as words, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    found = []
    for line in (line for block in blocks for line in block.splitlines() if line.strip()):
        words = shlex.split(line, comments=True)
        while "&&" in words:
            found.append(words[:words.index("&&")])
            words = words[words.index("&&") + 1:]
        found.append(words)
    return found


QUICKSTART = commands(section("Quickstart"))


def test_the_set_up_installs_the_cpu_torch_the_project_accepts_and_the_test_extras():
    installs = [words for words in QUICKSTART if words[:2] == ["pip", "install"]]
    assert ["pip", "install", "torch==2.13.0"] in installs
    assert ["pip", "install", "-e", ".[test]"] in installs
    assert "test" in PYPROJECT["project"]["optional-dependencies"]
    torch = next(r for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch"))
    low, high = re.fullmatch(r"torch>=([\d.]+),<([\d.]+)", torch).groups()
    assert tuple(map(int, low.split("."))) <= (2, 13) < tuple(map(int, high.split("."))), "a range, with 2.13 in it"


def test_the_app_command_is_an_installed_script_and_its_flags_give_the_budget_it_promises():
    from tui.options import parse_options

    app = next(words for words in QUICKSTART if words[0] == "minigpt-tui")
    assert PYPROJECT["project"]["scripts"]["minigpt-tui"] == "tui.app:main"
    options = parse_options(app[1:])
    assert "2.5-minute" in section("Quickstart") and options.config.time_budget == 2.5 * 60


def test_the_test_command_is_the_one_ci_runs():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test = next(words for words in QUICKSTART if words[:3] == ["python", "-m", "pytest"])
    assert " ".join(test) in ci


def test_the_shakespeare_commands_parse():
    import train_cli
    from tui.options import parse_options

    download, app = [words for words in QUICKSTART if words[0] in ("minigpt-train", "minigpt-tui")][-2:]
    args = train_cli.build_parser().parse_args(download[1:])
    assert args.download == "shakespeare" and args.preset == "quick"
    assert parse_options(app[1:]).config.time_budget == 10 * 60, "plain minigpt-tui: the README says 10 minutes"


def readme_keys() -> list[str]:
    """The keys of the first-ten-minutes table, as Textual names them."""
    table = section("Your first ten minutes")
    cells = re.findall(r"^\| ([^|]+?) \| ", table, re.M)
    keys = [key for cell in cells for key in re.findall(r"`([^`]+)`|(Ctrl\+\w)", cell) for key in key if key]
    return [KEY_NAMES.get(key, key) for key in keys if key != "key"]


@pytest.fixture(scope="module")
def bound_keys() -> dict[str, set[str]]:
    """Every key of the app's own bindings, with the binding ids it serves."""
    from tui.app import MiniGPTApp

    keys: dict[str, set[str]] = {}
    for binding in MiniGPTApp.BINDINGS:
        for key in binding.key.split(","):
            keys.setdefault(key.strip(), set()).add(binding.id)
    return keys


def test_every_key_in_the_readme_is_one_the_app_binds(bound_keys):
    keys = readme_keys()
    assert {"t", "slash", "1", "m", "ctrl+q"} <= set(keys), keys
    assert [key for key in keys if key not in bound_keys] == []


def test_every_view_of_the_app_is_in_the_readme_with_its_key(bound_keys):
    from tui.app import VIEWS

    keys = set(readme_keys())
    for binding_id, _, title in VIEWS:
        key = next(key for key, ids in bound_keys.items() if binding_id in ids)
        assert key in keys, f"the README's table of keys lacks {title} ({key})"
