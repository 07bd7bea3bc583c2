"""Hand-edited config files (--config) and --set overrides for minigpt-train:
every bad value is one line naming the file or flag, the key and the value,
and what is allowed."""

from __future__ import annotations

import resource

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_helpers import error_line, make_unreadable, train

from minigpt.plumbing import config as cfg

TOML_CASES = [  # the file's text, words the error must hold
    ("lr = 1e-3\nbatch_size = = 4\n", ["run.toml: not valid TOML", "line 2", "fix that line"]),
    ('batch_size = "big"\n', ["run.toml: batch_size = 'big': expected an integer from 1 to 65536"]),
    ("lr = nan\n", ["run.toml: lr = nan: expected a number from 0 to 1"]),
    ("max_iters = inf\n", ["run.toml: max_iters = inf: expected an integer"]),
    ("dropout = -0.5\n", ["run.toml: dropout = -0.5: expected a number from 0 to 0.9"]),
    ("block_size = 100000\n", ["run.toml: block_size = 100000: expected an integer from 8 to 8192"]),
    ("seed = 1e30\n", ["run.toml: seed = ", "expected an integer from 0 to"]),
    ("learning_rate = 1e-3\n", ["run.toml: unknown key 'learning_rate'", "known keys"]),
    ("[model]\nd_model = 64\n", ["run.toml: 'model' is a table", "flat"]),
    ("compile = 1\n", ["run.toml: compile = 1: expected true or false"]),
]


@pytest.mark.parametrize(("text", "words"), TOML_CASES, ids=[t.split("\n")[0] for t, _ in TOML_CASES])
def test_bad_config_file_is_one_clear_line(tmp_path, text, words):
    (tmp_path / "run.toml").write_text(text)
    error_line(train(["--preset", "tiny", "--config", "run.toml"], tmp_path), "minigpt-train", *words)
    assert list(tmp_path.iterdir()) == [tmp_path / "run.toml"]  # nothing written


def test_config_path_that_is_missing_or_a_directory(tmp_path):
    error_line(train(["--config", "nope.toml"], tmp_path), "minigpt-train", "nope.toml: no such config file",
               "--config")
    (tmp_path / "conf").mkdir()
    error_line(train(["--config", "conf"], tmp_path), "minigpt-train", "conf: is a directory", "--config")


def test_unreadable_config_file(tmp_path):
    (tmp_path / "run.toml").write_text("lr = 1e-3\n")
    fault = make_unreadable(tmp_path / "run.toml")
    error_line(train(["--config", "run.toml"], tmp_path, fault=fault), "minigpt-train", "run.toml: cannot be read")


def test_a_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "run.toml").write_bytes("\ufefflr = 0.01\n".encode())
    assert cfg.resolve("tiny", tmp_path / "run.toml").lr == 0.01


SET_CASES = [
    ("lr", ["--set 'lr': expected key=value"]),
    ("lr=nan", ["--set: lr = nan: expected a number from 0 to 1"]),
    ("lr=inf", ["--set: lr = inf: expected a number from 0 to 1"]),
    ("batch_size=-3", ["--set: batch_size = -3: expected an integer from 1 to 65536"]),
    ("d_model=1e9", ["--set: d_model = 1000000000.0: expected an integer from 8 to 8192"]),
    ("lr=[1]", ["--set: lr = [1]: expected a number"]),
    ("colour=red", ["--set: unknown key 'colour'"]),
    ("max_iter=5", ["did you mean 'max_iters'"]),
]


@pytest.mark.parametrize(("assignment", "words"), SET_CASES, ids=[a for a, _ in SET_CASES])
def test_bad_set_is_one_clear_line(tmp_path, assignment, words):
    error_line(train(["--preset", "tiny", "--set", assignment], tmp_path), "minigpt-train", *words)


def limit_memory() -> None:
    # A safety net: should the check ever be lost, allocating the model fails instead of exhausting the machine.
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("shape", [
    ["--set", "d_model=8192", "--set", "n_layers=128", "--set", "n_heads=128"],  # ~100 billion parameters
    ["--set", "batch_size=65536", "--set", "block_size=8192"],  # a tiny model, but a batch of 500M tokens
])
def test_a_model_too_big_for_memory_is_refused_before_allocation(tmp_path, shape):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/input.txt").write_text("All work and no play makes Jack a dull boy.\n" * 2000)
    result = train(["--preset", "tiny", *shape], tmp_path, preexec_fn=limit_memory)
    error_line(result, "minigpt-train", "needs at least", "GiB to train", "lower d_model, n_layers, batch_size")


# --- property tests: nothing but a ConfigError comes out of the loader ---------------------------

names = st.sampled_from(sorted(cfg.field_specs()))
scalars = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=2),
                      max_leaves=6)
documents = st.dictionaries(names | st.text(max_size=8), values, max_size=5)
PROPERTY = settings(max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY
@given(document=documents)
def test_no_config_document_crashes_the_loader(tmp_path, document):
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        assume(False)
    (tmp_path / "run.toml").write_text(text, encoding="utf-8")
    try:
        config = cfg.resolve("tiny", tmp_path / "run.toml")
    except cfg.ConfigError as e:
        assert str(e).startswith(str(tmp_path / "run.toml")) and "\n" not in str(e)
    else:
        assert isinstance(config, cfg.TrainConfig)


@PROPERTY
@given(assignment=st.one_of(st.text(max_size=30), st.tuples(names, st.text(max_size=12)).map("=".join)))
def test_no_set_assignment_crashes_the_loader(assignment):
    try:
        cfg.resolve("tiny", assignments=[assignment])
    except cfg.ConfigError as e:
        assert str(e).startswith("--set")
