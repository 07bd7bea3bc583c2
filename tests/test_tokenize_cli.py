"""minigpt-tokenize follows the Unix convention: files as arguments, text through --text or
standard input; and it marks the tokens' boundaries without colour where there is none."""

from __future__ import annotations

import io

import pytest

from minigpt.tokenizer import CharTokenizer
from tokenize_cli import BOUNDARY, main

CORPUS = "Hello there, friend. To be, or not to be.\n" * 20


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(CORPUS)
    return path


def shown_and_ids(out: str) -> tuple[str, list[int]]:
    """The line of the marked text and the ids beneath it, for the one text split."""
    lines = out.splitlines()
    ids = next(i for i, line in enumerate(lines) if line.startswith("ids: "))
    return lines[ids - 1], [int(i) for i in lines[ids].removeprefix("ids: ").split()]


def test_a_file_argument_is_read_and_split(tmp_path, data, capsys):
    (tmp_path / "t.txt").write_text("To be, or not")
    assert main(["--data", str(data), str(tmp_path / "t.txt")]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 't.txt'}: 13 characters -> 13 tokens" in out
    shown, ids = shown_and_ids(out)
    assert ids == CharTokenizer(sorted(set(CORPUS))).encode("To be, or not"), "the file's text, not its name"
    assert shown == BOUNDARY.join("To be, or not"), "each boundary marked: no colours in a pipe"


def test_text_comes_through_text_or_standard_input(data, capsys, monkeypatch):
    assert main(["--data", str(data), "--text", "be"]) == 0
    assert shown_and_ids(capsys.readouterr().out)[0] == f"b{BOUNDARY}e"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"not")))  # a pipe: not a terminal
    assert main(["--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "standard input: 3 characters" in out and shown_and_ids(out)[0] == BOUNDARY.join("not")


def test_a_file_that_is_not_there_is_one_line_that_says_how_to_split_a_text(tmp_path, data, capsys):
    assert main(["--data", str(data), "To be"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("minigpt-tokenize: error: To be: no such file (a FILE argument); to split the text 'To be' "
                   "itself, pass --text 'To be'")


def test_on_a_terminal_the_tokens_are_coloured_instead(data, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["--data", str(data), "--text", "be"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out and BOUNDARY not in out
