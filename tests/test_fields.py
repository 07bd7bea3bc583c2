"""Settings declared once (minigpt.plumbing.fields): one checker, one reader of a
table of values, one argparse builder, serving the training config and the
sampling settings alike."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from minigpt.plumbing import config as cfg
from minigpt.plumbing.fields import (
    BadValue,
    TomlFileError,
    add_flags,
    check,
    check_table,
    flag_values,
    read_toml,
    setting,
    specs,
)
from minigpt.plumbing.settings import SamplingSettingError, SamplingSettings


@dataclass(frozen=True)
class Knobs:
    width: int = setting(8, "how wide", low=1, high=64)
    rate: float = setting(0.5, "how fast", low=0, high=1, low_open=True)
    level: int = setting(0, "how loud", low=-1, high=9, low_means="auto")
    mode: str = setting("a", "which way", choices=("a", "b"))
    fast: bool = setting(False, "whether to hurry")
    words: tuple[str, ...] = setting((), "which words")
    wait: float = setting(0.0, "how long", low=0, high=3600, parse=cfg.parse_duration,
                          text_form="a duration such as 90s", metavar="DURATION")


KNOBS = specs(Knobs)


@pytest.mark.parametrize("name, value, held", [
    ("width", 3, 3), ("rate", 1, 1.0), ("rate", 0.25, 0.25), ("level", -1, -1), ("mode", "b", "b"),
    ("fast", True, True), ("words", ["x", "y"], ("x", "y")), ("wait", "2m", 120.0), ("wait", 30, 30.0),
])
def test_an_allowed_value_is_held_as_its_setting_holds_it(name, value, held):
    checked = check(KNOBS[name], value)
    assert checked == held and type(checked) is type(held)


@pytest.mark.parametrize("name, value, message", [
    ("width", 0, "width = 0: expected an integer from 1 to 64"),
    ("width", 2.5, "width = 2.5: expected an integer from 1 to 64"),
    ("width", 3.0, "width = 3.0: expected an integer"),  # an integer is written as one, in a file as on a flag
    ("width", True, "width = True: expected an integer"),
    ("width", "8", "width = '8': expected an integer"),
    pytest.param("width", 10**400, "expected an integer from 1 to 64", id="an integer too long for a float"),
    ("rate", 0, "rate = 0: expected a number in (0, 1]"),
    ("rate", float("nan"), "rate = nan: expected a number in (0, 1]"),
    pytest.param("rate", 10**400, "expected a number in (0, 1]", id="no OverflowError"),
    ("level", -2, "level = -2: expected an integer from -1 (auto) to 9"),
    ("mode", "c", "mode = 'c': expected one of a, b"),
    ("fast", 1, "fast = 1: expected true or false"),
    ("words", ["x", ""], "words = ['x', '']: expected a list of non-empty strings"),
    ("words", ("x", 3), "words = ['x', 3]: expected a list of non-empty strings"),
    ("words", "x", "words = 'x': expected a list of non-empty strings"),
    ("wait", "soon", "wait = 'soon': expected a duration such as 90s, or a number from 0 to 3600"),
    ("wait", "2h", "wait = '2h': expected a duration such as 90s"),
])
def test_a_value_not_allowed_names_the_setting_the_value_and_what_is_allowed(name, value, message):
    with pytest.raises(BadValue) as info:
        check(KNOBS[name], value)
    assert message in str(info.value)


def test_a_table_keeps_the_good_values_and_says_what_is_wrong_with_each_other_key():
    good, problems = check_table(KNOBS, {"width": 4, "widht": 5, "rate": 2, "mode": "b"})
    assert good == {"width": 4, "mode": "b"}
    assert problems == {"widht": "unknown key 'widht' (did you mean 'width'?)",
                        "rate": "rate = 2: expected a number in (0, 1]"}


def test_flags_come_from_the_declarations_with_one_default_each():
    parser = argparse.ArgumentParser()
    add_flags(parser.add_argument_group("knobs"), KNOBS.values())
    args = parser.parse_args(["--width", "3", "--no-fast", "--words", "a\\nb", "--words", "c", "--wait", "1m"])
    assert flag_values(args, KNOBS) == {"width": 3, "fast": False, "words": ["a\nb", "c"], "wait": "1m"}
    assert flag_values(parser.parse_args([]), KNOBS) == {}, "a flag not given leaves the file's or preset's value"
    text = " ".join(parser.format_help().split())
    assert "--width N how wide; an integer from 1 to 64 (default: 8)" in text
    assert "--rate X how fast; a number in (0, 1] (default: 0.5)" in text
    assert "--wait DURATION how long; a duration such as 90s, or a number from 0 to 3600 (default: 0.0)" in text
    assert "--words TEXT which words (repeatable; \\n and \\t work; default: none)" in text
    assert text.count("default:") == len(KNOBS)


def test_the_training_config_and_the_sampling_settings_share_the_rules():
    config = cfg.apply_overrides(cfg.preset("tiny"), {"lr": 1})
    assert (config.lr, type(config.lr)) == (1.0, float)
    sampling = SamplingSettings(temperature=1)
    assert (sampling.temperature, type(sampling.temperature)) == (1.0, float)
    with pytest.raises(cfg.ConfigError, match=r"^seed = 7.0: expected an integer"):
        cfg.apply_overrides(cfg.preset("tiny"), {"seed": 7.0})
    with pytest.raises(SamplingSettingError, match=r"^seed = 7.0: expected an integer"):
        SamplingSettings(seed=7.0)
    with pytest.raises(cfg.ConfigError, match=r"^run.toml: seed = -2: expected an integer from 0 to "):
        cfg.apply_overrides(cfg.preset("tiny"), {"seed": -2}, source="run.toml")
    with pytest.raises(SamplingSettingError, match=r"^seed = -2: expected an integer from -1 \(random\) to "):
        SamplingSettings(seed=-2)


def test_a_settings_file_that_cannot_be_read_says_why_in_a_few_words(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_toml(tmp_path / "missing.toml")
    with pytest.raises(TomlFileError, match="is a directory"):
        read_toml(tmp_path)
    (tmp_path / "bad.toml").write_bytes(b"a = 1\n\xff")
    with pytest.raises(TomlFileError, match="not UTF-8 text at byte 6"):
        read_toml(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text("a = 1\nb = = 2\n")
    with pytest.raises(TomlFileError, match=r"not valid TOML \(.*line 2.*\); fix that line"):
        read_toml(tmp_path / "bad.toml")
    (tmp_path / "bom.toml").write_bytes("\ufeffa = 1\n".encode())
    assert read_toml(tmp_path / "bom.toml") == {"a": 1}
