"""Hand-edited settings files (minigpt.toml) through minigpt-generate, and
property tests: no document, however odd, crashes the loader or is lost on save.

Documented choice: loading never fails. A bad file or value is one warning line
naming the file and key, and the default is used for what was bad."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import tomli_w
from faultrun import denying_read_bytes
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_helpers import error_line, generate, make_unreadable

from minigpt.plumbing.settings import SETTING_NAMES, SamplingSettings, SettingsError, load_settings, save_settings


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("minigpt-generate: warning: ")]


def test_syntax_error_is_one_warning_and_the_file_is_left_alone(trained, tmp_path):
    text = "[sampling]\ntemperature = 0.5\nmax_new_tokens = = 3\n[keymap]\nquit = 'q'\n"
    (tmp_path / "minigpt.toml").write_text(text)
    result = generate(["--checkpoint", trained, "--max-new-tokens", "4"], tmp_path)
    assert result.returncode == 0, result.stderr
    (warning,) = warnings_of(result.stderr)
    assert "minigpt.toml: not valid TOML" in warning and "line 3" in warning and "using the default" in warning
    assert (tmp_path / "minigpt.toml").read_text() == text


def test_each_bad_value_is_one_warning_naming_its_key_and_the_rest_is_used(trained, tmp_path):
    (tmp_path / "minigpt.toml").write_text(
        "[sampling]\n"
        "temperature = nan\n"  # not a number
        "top_p = inf\n"  # infinite
        "top_k = 1000000000000000000000000000000\n"  # huge
        "seed = -5\n"  # negative
        'repetition_penalty = "high"\n'  # wrong type
        "stop = [1, 2]\n"  # wrong type inside a list
        "temprature = 1.0\n"  # unknown key (a typo)
        "max_new_tokens = 7\n")  # good
    result = generate(["--checkpoint", trained], tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = warnings_of(result.stderr)
    for key in ("temperature = nan", "top_p = inf", "top_k = 1000000000000000000000000000000", "seed = -5",
                "repetition_penalty = 'high'", "stop = [1, 2]", "unknown key 'temprature'"):
        assert sum(key in w for w in warnings) == 1, (key, warnings)
    assert len(warnings) == 7 and all("minigpt.toml" in w for w in warnings)
    assert "did you mean 'temperature'" in result.stderr
    assert "generated 7 tokens" in result.stderr


def test_a_byte_order_mark_is_accepted(trained, tmp_path):
    (tmp_path / "minigpt.toml").write_bytes("\ufeff[sampling]\nmax_new_tokens = 4\n".encode())
    result = generate(["--checkpoint", trained], tmp_path)
    assert result.returncode == 0 and warnings_of(result.stderr) == [], result.stderr
    assert "generated 4 tokens" in result.stderr


def test_a_directory_is_warned_about_and_never_saved_over(trained, tmp_path):
    (tmp_path / "minigpt.toml").mkdir()
    result = generate(["--checkpoint", trained, "--max-new-tokens", "3"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "minigpt.toml: is a directory" in warnings_of(result.stderr)[0]
    saved = generate(["--checkpoint", trained, "--max-new-tokens", "3", "--save-settings"], tmp_path)
    error_line(saved, "minigpt-generate", "minigpt.toml", "cannot save settings", alone=False)
    assert (tmp_path / "minigpt.toml").is_dir()


def test_saving_over_a_file_that_does_not_parse_is_refused(trained, tmp_path):
    text = "[sampling]\ntemperature = 0.5\n[keymap\nquit = 'q'\n"  # the user's keymap must not be lost
    (tmp_path / "minigpt.toml").write_text(text)
    result = generate(["--checkpoint", trained, "--top-k", "5", "--save-settings"], tmp_path)
    error_line(result, "minigpt-generate", "minigpt.toml: not saved", "not valid TOML", "fix the file or delete it",
               alone=False)
    assert (tmp_path / "minigpt.toml").read_text() == text


def test_an_unreadable_file_is_warned_about_and_never_saved_over(trained, tmp_path, monkeypatch):
    path = tmp_path / "minigpt.toml"
    path.write_text("[sampling]\ntop_k = 3\n")
    fault = make_unreadable(path)
    try:
        result = generate(["--checkpoint", trained, "--max-new-tokens", "3"], tmp_path, fault=fault)
        assert result.returncode == 0 and "cannot be read" in warnings_of(result.stderr)[0]
        if fault:  # root: this process too must fail to read it, as anyone else would
            monkeypatch.setattr(Path, "read_bytes", denying_read_bytes(fault["path"]))
        with pytest.raises(SettingsError, match="not saved"):
            save_settings(path, SamplingSettings())
    finally:
        monkeypatch.undo()
        path.chmod(0o600)
    assert path.read_text() == "[sampling]\ntop_k = 3\n"


# --- property tests: the loader never crashes, and saving keeps what it does not own --------------

keys = st.one_of(st.sampled_from(SETTING_NAMES), st.text(string.printable + "é€🙂", max_size=8))
scalars = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.datetimes(), st.dates(), st.times())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)
documents = st.dictionaries(st.one_of(st.just("sampling"), keys), values, max_size=4) | st.fixed_dictionaries(
    {"sampling": st.dictionaries(keys, values, max_size=6)}, optional={"keymap": st.dictionaries(keys, scalars)})

PROPERTY = settings(max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_loaded(path: Path):
    loaded = load_settings(path)  # must not raise
    assert isinstance(loaded.sampling, SamplingSettings)
    for problem in loaded.problems:
        assert str(path) in problem and "\n" not in problem
    return loaded


@PROPERTY
@given(document=documents)
def test_no_settings_document_crashes_the_loader_or_is_lost_on_save(tmp_path, document):
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        assume(False)  # not expressible in TOML
    path = tmp_path / "minigpt.toml"
    path.write_text(text, encoding="utf-8")
    loaded = check_loaded(path)
    save_settings(path, loaded.sampling, loaded.document)
    again = check_loaded(path)
    assert again.sampling == loaded.sampling
    others = {k: v for k, v in document.items() if k != "sampling"}
    kept = {k: v for k, v in again.document.items() if k != "sampling"}
    assert kept == others or _has_nan(others)  # NaN is kept too, but never compares equal


def _has_nan(value) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    return isinstance(value, list) and any(_has_nan(v) for v in value)


@PROPERTY
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_no_bytes_crash_the_loader(tmp_path, data):
    path = tmp_path / "minigpt.toml"
    path.write_bytes(data)
    check_loaded(path)
