"""minigpt-generate --chat: the conversation on the command line, one turn per line of input."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

import generate_cli
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minigpt.plumbing.conversations import conversations_path, load_newest
from minigpt.plumbing.settings import SETTINGS_ENV
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

PLAY = ("ROMEO:\nIs the day so young?\n\nJULIET:\nBut new struck nine.\n\n"
        "NURSE:\nMadam!\n\nROMEO:\nAy me! sad hours seem long.\n\nJULIET:\nGood night, good night!\n\n") * 3


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A folder with a play in data/input.txt and a small model of its characters."""
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_text(PLAY)
    tokenizer = CharTokenizer("".join(sorted(set(PLAY + "Q"))))
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tokenizer.vocab_size, block_size=128, d_model=32, n_heads=2, n_layers=2))
    path = tmp_path / "checkpoints" / "model.pt"
    path.parent.mkdir()
    save_checkpoint(path, Checkpoint(model.state_dict(), model.config, tokenizer, step=9, train_config={}))
    return tmp_path


def chat(capsys, monkeypatch, lines: str, *argv) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
    rc = generate_cli.main(["--chat", "--max-new-tokens", "30", "--seed", "7", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_each_line_is_a_turn_and_the_model_answers_in_its_character_s_voice(capsys, monkeypatch, project):
    rc, out, err = chat(capsys, monkeypatch, "Is the day so young?\n\nAy me!\n", "--as", "ROMEO", "--to", "JULIET")
    assert rc == 0, err
    assert "you: 'ROMEO:', the model: 'JULIET:' (the speakers of data/input.txt)" in err
    turns = load_newest(conversations_path(project / "checkpoints/model.pt"))[0].turns
    assert [(t.role, t.tag) for t in turns] == [("user", "ROMEO:\n"), ("model", "JULIET:\n")] * 2, "blank: no turn"
    assert turns[0].text == "Is the day so young?" and turns[2].text == "Ay me!"
    # Each turn on its own lines (a turn cut at max tokens may end in a newline of its own).
    assert out == "".join(f"JULIET:\n{turn.text}" + "\n" * (not turn.text.endswith("\n")) for turn in turns[1::2])
    assert turns[3].prompt == (f"ROMEO:\nIs the day so young?\n\nJULIET:\n{turns[1].text.rstrip()}\n\n"
                               "ROMEO:\nAy me!\n\nJULIET:\n")
    assert "\n\n" in turns[3].settings.stop and "\nROMEO:" in turns[3].settings.stop and turns[3].step == 9


def test_a_kept_turn_is_made_again_from_its_prompt_and_settings(capsys, monkeypatch, project):
    rc, _, _ = chat(capsys, monkeypatch, "Is the day so young?\n", "--as", "ROMEO", "--to", "JULIET")
    [_, answer] = load_newest(conversations_path(project / "checkpoints/model.pt"))[0].turns
    checkpoint = load_checkpoint(project / "checkpoints/model.pt")
    again = generate(checkpoint.build_model().eval(), checkpoint.tokenizer, answer.prompt, answer.settings)
    assert rc == 0 and "".join(piece.text for piece in again) == answer.text


def test_the_roles_default_to_the_two_who_speak_most_the_first_to_speak_being_the_user(capsys, monkeypatch, project):
    rc, out, err = chat(capsys, monkeypatch, "Good day\n", "--no-record")
    assert rc == 0 and "you: 'ROMEO:', the model: 'JULIET:'" in err and out.startswith("JULIET:\n")
    assert not conversations_path(project / "checkpoints/model.pt").exists()


def test_the_memory_note_says_where_the_model_s_reading_begins(capsys, monkeypatch, project):
    line = "Is the day so young? Is the day so young?\n"  # a turn of 50 characters, of 96 the prompt may hold
    rc, _, err = chat(capsys, monkeypatch, line * 2, "--no-record", "--max-new-tokens", "5")
    assert rc == 0 and "[memory: the model reads from turn 2 on; the turns before no longer fit its 128-token" in err


def test_a_text_without_speakers_and_no_template_is_a_clear_error(capsys, monkeypatch, project):
    (project / "prose.txt").write_text("It was a bright cold day in April. " * 50)
    rc, out, err = chat(capsys, monkeypatch, "Good day\n", "--data", "prose.txt")
    assert rc == 2 and out == ""
    assert err.startswith("minigpt-generate: error: prose.txt has no speakers") and "[chat] user_prefix" in err
    assert len(err.strip().splitlines()) == 1


def test_the_settings_template_serves_a_text_without_speakers(capsys, monkeypatch, project):
    (project / "prose.txt").write_text("It was a bright cold day in April. " * 50)
    (project / "minigpt.toml").write_text('[chat]\nuser_prefix = "Q: "\nmodel_prefix = "A: "\nbad = 1\n')
    rc, out, err = chat(capsys, monkeypatch, "Is it?\n", "--data", "prose.txt", "--as", "ROMEO")
    assert rc == 0 and out.startswith("A: ")
    assert "[chat] unknown key 'bad'" in err and "--as and --to are not used" in err
    [asked, answered] = load_newest(conversations_path(project / "checkpoints/model.pt"))[0].turns
    assert answered.prompt == "Q: Is it?\nA: "


def test_a_turn_with_characters_the_model_does_not_know_is_asked_again(capsys, monkeypatch, project):
    rc, out, err = chat(capsys, monkeypatch, "Zounds é!\nAy me!\n", "--no-record")
    assert rc == 0 and "does not know" in err and out.count("JULIET:\n") == 1


def test_chat_and_a_prompt_do_not_go_together(capsys, project):
    with pytest.raises(SystemExit) as stop:
        generate_cli.main(["--chat", "--prompt", "ROMEO:"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
