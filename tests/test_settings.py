import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_SETTINGS
from minigpt.plumbing.settings import (
    SETTINGS_ENV,
    SamplingSettings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)

DEFAULTS = SamplingSettings()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_path_prefers_flag_then_environment_then_working_directory(monkeypatch):
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    assert settings_path() == DEFAULT_SETTINGS == Path("minigpt.toml")
    monkeypatch.setenv(SETTINGS_ENV, "/somewhere/env.toml")
    assert settings_path() == Path("/somewhere/env.toml")
    assert settings_path("flag.toml") == Path("flag.toml")
    monkeypatch.setenv(SETTINGS_ENV, "")
    assert settings_path(None) == DEFAULT_SETTINGS


def test_missing_file_means_defaults_and_no_problems(tmp_path):
    loaded = load_settings(tmp_path / "minigpt.toml")
    assert loaded.sampling == DEFAULTS
    assert loaded.problems == [] and loaded.document == {}
    assert not (tmp_path / "minigpt.toml").exists()


def test_full_file_is_read(tmp_path):
    path = write(tmp_path / "s.toml", """
[sampling]
temperature = 0
top_k = 40
top_p = 0.5
repetition_penalty = 1.2
max_new_tokens = 77
seed = 123
stop = ["\\n\\n", "END"]
""")
    loaded = load_settings(path)
    assert loaded.problems == []
    assert loaded.sampling == SamplingSettings(temperature=0, top_k=40, top_p=0.5, repetition_penalty=1.2,
                                               max_new_tokens=77, seed=123, stop=("\n\n", "END"))


def test_partial_file_fills_in_defaults(tmp_path):
    loaded = load_settings(write(tmp_path / "s.toml", "[sampling]\ntop_k = 5\n"))
    assert loaded.problems == []
    assert loaded.sampling == SamplingSettings(top_k=5)


def test_file_without_a_sampling_table_means_defaults(tmp_path):
    loaded = load_settings(write(tmp_path / "s.toml", '[tui]\ntheme = "dark"\n'))
    assert loaded.problems == [] and loaded.sampling == DEFAULTS
    assert loaded.document == {"tui": {"theme": "dark"}}


def test_single_stop_string_without_brackets_is_accepted(tmp_path):
    loaded = load_settings(write(tmp_path / "s.toml", '[sampling]\nstop = "END"\n'))
    assert loaded.problems == [] and loaded.sampling.stop == ("END",)


@pytest.mark.parametrize(("key", "toml_value"), [
    ("temperature", "-1"), ("temperature", "nan"), ("temperature", "true"), ("temperature", '"hot"'),
    ("temperature", "1" + "0" * 400),  # tomllib reads integers of any length; this one is too big for a float
    ("top_k", "-3"), ("top_k", "1.5"), ("top_k", "10000000"),
    ("top_p", "0"), ("top_p", "1.5"), ("top_p", "inf"),
    ("repetition_penalty", "-inf"), ("repetition_penalty", "0"),
    ("max_new_tokens", "0"), ("max_new_tokens", "999999999"), ("max_new_tokens", "-1"),
    ("seed", "-2"), ("seed", "1.0"),
    ("stop", "[1, 2]"), ("stop", '[""]'), ("stop", "{ a = 1 }"),
])
def test_bad_value_gives_a_problem_naming_file_and_key_and_keeps_the_rest(tmp_path, key, toml_value):
    other = ("top_k", "7") if key != "top_k" else ("top_p", "0.5")
    path = write(tmp_path / "s.toml", f"[sampling]\n{key} = {toml_value}\n{other[0]} = {other[1]}\n")
    before = path.read_bytes()
    loaded = load_settings(path)
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert str(path) in problem and key in problem and "expected" in problem and "default" in problem
    assert getattr(loaded.sampling, key) == getattr(DEFAULTS, key)
    assert getattr(loaded.sampling, other[0]) == tomllib.loads(f"v = {other[1]}")["v"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("text", [
    "[sampling\ntemperature = 1\n",
    "[sampling]\ntemperature = \n",
    "[sampling]\ntemperature = 1\ntemperature = 2\n",
    "temperature: 1\n",
    "[sampling]\nstop = ['a'\n",
])
def test_malformed_file_gives_one_problem_defaults_and_is_left_alone(tmp_path, text):
    path = write(tmp_path / "s.toml", text)
    stat = path.stat()
    loaded = load_settings(path)
    assert loaded.sampling == DEFAULTS and loaded.document == {}
    assert len(loaded.problems) == 1
    assert str(path) in loaded.problems[0] and "not valid TOML" in loaded.problems[0]
    assert path.read_text(encoding="utf-8") == text
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def test_not_utf8_directory_and_non_table(tmp_path):
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"[sampling]\ntemperature = 1\n\xff\xfe")
    (problem,) = load_settings(binary).problems
    assert "UTF-8" in problem and str(binary) in problem

    (problem,) = load_settings(tmp_path).problems
    assert "directory" in problem and str(tmp_path) in problem

    loaded = load_settings(write(tmp_path / "s.toml", "sampling = 3\n"))
    assert loaded.sampling == DEFAULTS
    (problem,) = loaded.problems
    assert "[sampling]" in problem and "table" in problem


def test_unknown_sampling_key_is_reported_with_a_suggestion(tmp_path):
    loaded = load_settings(write(tmp_path / "s.toml", "[sampling]\ntemprature = 0.1\n"))
    assert loaded.sampling == DEFAULTS
    (problem,) = loaded.problems
    assert "temprature" in problem and "'temperature'" in problem


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "s.toml"
    chosen = SamplingSettings(temperature=0.3, top_k=12, top_p=0.7, repetition_penalty=1.1, max_new_tokens=99,
                              seed=7, stop=("\n\n", 'say "hi"'))
    save_settings(path, chosen)
    loaded = load_settings(path)
    assert loaded.problems == [] and loaded.sampling == chosen
    assert list(tomllib.loads(path.read_text())) == ["sampling"]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_unknown_keys_and_tables_survive_a_save(tmp_path):
    path = write(tmp_path / "s.toml", """
version = 2

[sampling]
temperature = 1.5
future_option = "keep me"
seed = -7

[keymap]
quit = "ctrl+q"
stop = "escape"

[tui]
theme = "nord"

[tui.colors]
accent = "#ff8800"
""")
    loaded = load_settings(path)
    assert loaded.sampling.temperature == 1.5 and loaded.sampling.seed == DEFAULTS.seed
    document = loaded.document
    save_settings(path, SamplingSettings(temperature=0.2, top_k=3), document)
    saved = tomllib.loads(path.read_text())
    assert saved["version"] == 2
    assert saved["keymap"] == {"quit": "ctrl+q", "stop": "escape"}
    assert saved["tui"] == {"theme": "nord", "colors": {"accent": "#ff8800"}}
    assert saved["sampling"]["future_option"] == "keep me"
    assert saved["sampling"]["temperature"] == 0.2 and saved["sampling"]["top_k"] == 3
    assert saved["sampling"]["seed"] == -1  # the bad value is replaced only by a deliberate save
    assert document["sampling"]["temperature"] == 1.5  # the caller's document is not changed
    assert load_settings(path).sampling == SamplingSettings(temperature=0.2, top_k=3)


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "config" / "minigpt" / "minigpt.toml"
    save_settings(path, SamplingSettings(top_k=4))
    assert load_settings(path).sampling.top_k == 4


def test_save_failure_raises_a_one_line_settings_error(tmp_path):
    blocker = write(tmp_path / "file", "not a folder")
    with pytest.raises(SettingsError) as e:
        save_settings(blocker / "s.toml", SamplingSettings())
    assert isinstance(e.value, MiniGPTError)
    assert str(blocker / "s.toml") in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SettingsError):
        save_settings(tmp_path, SamplingSettings())  # a directory
    assert tmp_path.is_dir()


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = write(tmp_path / "s.toml", "[sampling]\ntop_k = 9\n")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("minigpt.plumbing.settings.atomic_write_bytes", fail)
    with pytest.raises(SettingsError, match="No space left"):
        save_settings(path, SamplingSettings(top_k=1))
    assert path.read_text() == "[sampling]\ntop_k = 9\n"


valid_settings = st.builds(
    SamplingSettings,
    temperature=st.floats(0, 100), top_k=st.integers(0, 1_000_000), top_p=st.floats(1e-9, 1),
    repetition_penalty=st.floats(1e-6, 10), max_new_tokens=st.integers(1, 100_000),
    seed=st.integers(-1, 2**63 - 1), stop=st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
)


@settings(max_examples=50, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(chosen=valid_settings)
def test_any_valid_settings_round_trip(tmp_path, chosen):
    path = tmp_path / "s.toml"
    save_settings(path, chosen, {"keymap": {"quit": "q"}})
    loaded = load_settings(path)
    assert loaded.problems == [] and loaded.sampling == chosen
    assert loaded.document["keymap"] == {"quit": "q"}
