"""The library (minigpt/) never reaches up into what is built on it: the app
(tui), the command-line scripts (train_cli, generate_cli) or the benchmarks
(bench). Checked twice: in the source, where every import and every string
that names such a module is found by parsing, and in a fresh interpreter that
imports every library module without Textual and then looks at sys.modules.
Each check is also tried on a small package that does reach up, so that a
check that can no longer fail is caught too."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "minigpt"
UPPER = ("tui", "train_cli", "generate_cli", "chat_cli", "bench")
_UPPER = "|".join(UPPER)
# A string that names one of them as a module ("tui.app", "train_cli"), or a command line that runs one.
NAMES_UPPER = re.compile(rf"^({_UPPER})(\.|$)|-m\s*({_UPPER})\b")
IMPORT_FUNCTIONS = {"import_module", "__import__"}


def _is_upper(module: str) -> bool:
    return module.split(".")[0] in UPPER


def _string_value(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string with {} for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def reaching_up(source: str) -> list[str]:
    """Every place in source that imports or launches tui, train_cli, generate_cli or bench."""
    tree = ast.parse(source)
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and _string_value(node.value) is not None}
    f_string_parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {alias.name}" for alias in node.names if _is_upper(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _is_upper(node.module):
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if function in IMPORT_FUNCTIONS:
                name = _string_value(node.args[0]) if node.args else None
                if name is None or "{}" in name:
                    found.append(f"{where}: {function}() of a name computed at run time (it cannot be checked)")
                elif _is_upper(name):
                    found.append(f"{where}: {function}({name!r})")
        elif id(node) not in docstrings and id(node) not in f_string_parts:
            text = _string_value(node)
            if text is not None and NAMES_UPPER.search(text):
                found.append(f"{where}: the string {text!r}")
    return sorted(found, key=lambda place: int(place.split()[1].rstrip(":")))


def library_files() -> list[Path]:
    files = sorted(LIBRARY.rglob("*.py"))
    assert len(files) > 5, f"the library was not found in {LIBRARY}"
    return files


def test_no_library_module_imports_or_launches_the_app_the_scripts_or_the_benchmarks():
    found = [f"{path.relative_to(REPO)} {place}"
             for path in library_files() for place in reaching_up(path.read_text(encoding="utf-8"))]
    assert found == [], "minigpt/ is the library; these reach up into the code built on it:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "import tui.app",
    "import bench",
    "import numpy, train_cli",
    "from tui import app",
    "from tui.widgets.footer import AppFooter",
    "from generate_cli import main",
    "def f():\n    import bench.train",
    "import importlib\nimportlib.import_module('tui.soak')",
    "from importlib import import_module\nimport_module(f'tui.{name}')",
    "importlib.import_module(name)",
    "__import__('generate_cli')",
    "subprocess.run([sys.executable, '-m', 'train_cli'])",
    "command = f'{sys.executable} -m train_cli --preset tiny'",
    "runpy.run_module('bench', run_name='__main__')",
])
def test_the_source_check_finds_each_way_of_reaching_up(source):
    assert reaching_up(source)


@pytest.mark.parametrize("source", [
    '"""Run it as minigpt-tui does, or `python -m train_cli`; see tui/app.py."""',
    "def f():\n    'the app (tui) reads [tui] from the settings file'",
    "import minigpt.trainer\nfrom minigpt import config\nimport tuition, benchmark_data",
    "from . import tokenizer",
    "importlib.import_module('numpy')",
    "key = 'keymap'\nsection = '[tui]'\nlabel = 'the benchmark'",
])
def test_the_source_check_lets_prose_and_other_imports_be(source):
    assert reaching_up(source) == []


# --- at run time ------------------------------------------------------------------------------

IMPORT_EVERY_MODULE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    sys.modules["textual"] = None  # the library must import without the app's dependencies
    package = importlib.import_module(sys.argv[1])
    imported = [package.__name__]
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        imported.append(module.name)
    print(json.dumps({"imported": imported, "loaded": sorted(sys.modules)}))
""")


def import_every_module(package: str, path: Path) -> tuple[list[str], list[str]]:
    """Import package (found in path) and each of its modules in a fresh interpreter started in
    the repository, where the app, the scripts and the benchmarks could be imported; returns the
    modules imported and the upper ones that ended up in sys.modules."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE, package], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    return report["imported"], [name for name in report["loaded"] if _is_upper(name)]


def test_importing_every_library_module_loads_nothing_built_on_the_library():
    imported, upper = import_every_module("minigpt", REPO)
    expected = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                for p in library_files()}
    assert expected <= set(imported)
    assert upper == []


# --- the teaching core and the plumbing -------------------------------------------------------

CORE = sorted(p for p in LIBRARY.glob("*.py") if p.name != "__init__.py")
# What each module of the teaching core may take from the plumbing, and why: each name is one a learner
# meets without having to read where it comes from. A core module not listed takes nothing.
CORE_MAY_IMPORT = {
    "tokenizer": {"minigpt.plumbing.errors": {"MiniGPTError"}},  # the base of every expected failure
    "data": {"minigpt.plumbing.corpus": {"Corpus", "CorpusError"}},  # the text, read in chunks
    "sampling": {"minigpt.plumbing.settings": {"SamplingSettings"}},  # the knobs of sampling, with their ranges
    "inspect": {"minigpt.plumbing.settings": {"SamplingSettings"}},
    "optim": {"minigpt.plumbing.config": {"TrainConfig"}},  # the hyperparameters
    "chat": {"minigpt.plumbing.corpus": {"Corpus"},  # the text whose speakers it finds
             "minigpt.plumbing.errors": {"MiniGPTError"},  # a text with no template is an expected failure
             "minigpt.plumbing.settings": {"SamplingSettings"}},  # the stop strings end the model's turn
    "evaluate": {"minigpt.plumbing.device": {"autocast"}},  # the run's number format
    "trainer": {
        "minigpt.plumbing.errors": {"MiniGPTError"},  # TrainingDiverged is an expected failure
        "minigpt.plumbing.config": {"TrainConfig"},  # the hyperparameters
        "minigpt.plumbing.corpus": {"Corpus"},  # the text it trains on
        "minigpt.plumbing.checkpoint": {"Checkpoint"},  # what a resumed run starts from
        # where it trains, in which number format, and whether the model fits there
        "minigpt.plumbing.device": {"autocast", "check_fits_in_memory", "pick_device", "pick_dtype"},
        "minigpt.plumbing.compiler": {"compile_model"},  # torch.compile (compile = true), or why not
        # The loop's three collaborators, each met in one line:
        "minigpt.plumbing.clock": {"BudgetClock"},  # the time used, and a time budget's schedule and deadline
        "minigpt.plumbing.distributed": {  # the processes of a torchrun run: which batches are whose, the same
            "SINGLE", "World", "DistributedError", "agree_on_next_step", "gradient_exchange"},  # decision on each
        "minigpt.plumbing.training_state": {"save_state", "restore_state"},  # the whole state in a checkpoint
    },
}


def plumbing_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) for every name source imports from minigpt.plumbing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minigpt.plumbing"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "*") for alias in node.names if alias.name.startswith("minigpt.plumbing")]
    return found


def test_the_teaching_core_takes_only_documented_names_from_the_plumbing():
    assert {p.stem for p in CORE} >= {"model", "tokenizer", "bpe", "data", "sampling", "inspect"}
    undocumented = [f"{path.name}: {module}.{name}" for path in CORE
                    for module, name in plumbing_imports(path.read_text(encoding="utf-8"))
                    if name not in CORE_MAY_IMPORT.get(path.stem, {}).get(module, set())]
    assert undocumented == [], "the teaching core reaches into the plumbing:\n" + "\n".join(undocumented)


def test_the_readme_gives_the_reading_order_of_the_whole_core_with_each_files_length():
    """The README's "Read the code" table: every core module, its line count within a quarter of today's."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Read the code", 1)[1].split("\n## ", 1)[0]
    listed = {name: int(lines) for name, lines in re.findall(r"^\| `(\w+)\.py` \| (\d+) \|", section, re.M)}
    assert set(listed) == {p.stem for p in CORE}, "the reading order must name every core module, and only those"
    for name, lines in listed.items():
        actual = len((LIBRARY / f"{name}.py").read_text(encoding="utf-8").splitlines())
        assert abs(lines - actual) <= actual / 4, f"{name}.py has {actual} lines, the README says {lines}"


def test_the_plumbing_check_finds_an_undocumented_import():
    assert plumbing_imports("from minigpt.plumbing.runs import load_runs\nimport minigpt.plumbing.atomic") == [
        ("minigpt.plumbing.runs", "load_runs"), ("minigpt.plumbing.atomic", "*")]


def test_the_run_time_check_finds_a_module_that_reaches_up(tmp_path):
    package = tmp_path / "reaching"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "innocent.py").write_text("import json\n")
    (package / "guilty.py").write_text("def f():\n    pass\n\nimport tui.text  # no Textual needed\n")
    imported, upper = import_every_module("reaching", tmp_path)
    assert "reaching.guilty" in imported
    assert "tui.text" in upper
