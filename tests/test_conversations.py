"""The conversations kept beside a checkpoint (minigpt.plumbing.conversations) and the
[chat] template of the settings file (minigpt.plumbing.chat_settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minigpt.chat import NoTemplateError, Template, find_speakers
from minigpt.plumbing.chat_settings import ChatSettings, read_chat_settings
from minigpt.plumbing.conversations import (
    Conversation,
    ConversationsFileError,
    append_turn,
    as_it_stands,
    conversations_path,
    from_record,
    load_newest,
    model_turn,
    user_turn,
)
from minigpt.plumbing.runs import find_logs
from minigpt.plumbing.settings import SamplingSettings, load_settings

PLAY = "ROMEO:\nIs the day so young?\n\nBENVOLIO:\nBut new struck nine.\n\n" * 3
SETTINGS = SamplingSettings(seed=5, stop=("\n\n",))


def exchange(conversation: str, i: int) -> list:
    asked = user_turn(conversation, "ROMEO:\n", f"question {i}")
    answered = model_turn(conversation, "JULIET:\n", f"answer {i}", f"ROMEO:\nquestion {i}\n\nJULIET:\n", 40 + i,
                          SETTINGS, "checkpoints/model.pt")
    return [asked, answered]


def write(path: Path, turns: list) -> None:
    for turn in turns:
        append_turn(path, turn)


# --- kept and read back ------------------------------------------------------------------------


def test_a_conversation_is_kept_beside_the_checkpoint_and_read_back_as_it_was(tmp_path):
    path = conversations_path(tmp_path / "model.pt")
    assert path == tmp_path / "model.chat.jsonl"
    talk = Conversation().id
    turns = exchange(talk, 1) + exchange(talk, 2)
    write(path, turns)
    conversation, problem = load_newest(path)
    assert conversation.id == talk and conversation.turns == turns and problem is None
    record = json.loads(path.read_text().splitlines()[1])
    assert record["prompt"] == "ROMEO:\nquestion 1\n\nJULIET:\n" and record["settings"]["seed"] == 5
    assert "prompt" not in json.loads(path.read_text().splitlines()[0]), "a user's turn keeps its words only"


def test_the_newest_conversation_is_the_one_read_back(tmp_path):
    path = tmp_path / "model.chat.jsonl"
    old, new = Conversation().id, Conversation().id
    write(path, exchange(old, 1) + exchange(new, 2) + exchange(old, 3) + exchange(new, 4))
    conversation, _ = load_newest(path)
    assert conversation.id == new
    assert [t.text for t in conversation.turns] == ["question 2", "answer 2", "question 4", "answer 4"]


def test_a_regenerated_turn_replaces_and_a_continued_one_grows(tmp_path):
    path = tmp_path / "model.chat.jsonl"
    talk = Conversation().id
    asked, first = exchange(talk, 1)
    again = model_turn(talk, "JULIET:\n", "another answer", first.prompt, 41, SETTINGS, "m.pt", replaces=first.id)
    more = model_turn(talk, "JULIET:\n", ", and more", first.prompt + "another answer", 41, SETTINGS, "m.pt",
                      continues=again.id)
    still_more = model_turn(talk, "JULIET:\n", "!", "...", 41, SETTINGS, "m.pt", continues=more.id)
    write(path, [asked, first, again, more, still_more])
    [_, answer] = load_newest(path)[0].turns
    assert answer.text == "another answer, and more!" and answer.id == still_more.id
    assert answer.prompt == first.prompt, "what the model read for the turn's start"
    regenerated = model_turn(talk, "JULIET:\n", "a third", first.prompt, 41, SETTINGS, "m.pt", replaces=answer.id)
    assert as_it_stands([asked, first, again, more, still_more, regenerated])[1] == regenerated


def test_a_continuation_of_a_turn_older_than_what_is_read_stands_alone():
    talk = Conversation().id
    orphan = model_turn(talk, "JULIET:\n", "more", "p", 1, SETTINGS, "m.pt", continues="gone0000")
    assert as_it_stands([orphan]) == [orphan]


# --- hostile files, handled as the completions file is ------------------------------------------


def test_a_cut_line_is_skipped_once_the_file_left_alone_and_the_next_turn_starts_a_new_line(tmp_path):
    path = tmp_path / "model.chat.jsonl"
    talk = Conversation().id
    write(path, exchange(talk, 1))
    with path.open("ab") as f:
        f.write(b'{"v": 1, "conversation": "cut sh')  # a crash in the middle of a write
    before = path.read_bytes()
    conversation, problem = load_newest(path)
    assert len(conversation.turns) == 2 and "1 of the newest 3 lines are not chat turns and were skipped" in problem
    assert path.read_bytes() == before, "the file is left as it is"
    write(path, exchange(talk, 2))
    assert path.read_bytes().startswith(before + b"\n")
    assert [t.text for t in load_newest(path)[0].turns] == ["question 1", "answer 1", "question 2", "answer 2"]


@pytest.mark.parametrize("junk", [b"\x00\xff\xfe binary\n", b"[1, 2]\n", b'{"role": "user"}\n', b"not json\n",
                                  b"[" * 100_000 + b"\n", b'{"v": 1, "settings": {"seed": -1}}\n'])
def test_corrupt_lines_are_counted_and_skipped(tmp_path, junk):
    path = tmp_path / "model.chat.jsonl"
    talk = Conversation().id
    write(path, exchange(talk, 1)[:1])
    with path.open("ab") as f:
        f.write(junk)
    write(path, exchange(talk, 1)[1:])
    conversation, problem = load_newest(path)
    assert len(conversation.turns) == 2 and "1 of the newest 3" in problem


def test_from_record_refuses_wrong_types_and_values():
    user, model = (turn.to_record() for turn in exchange("abcd0123", 1))
    assert from_record(user) is not None and from_record(model) is not None
    for record, key, value in [(user, "role", "narrator"), (user, "text", None), (user, "tag", 3),
                               (model, "step", "7"), (model, "step", True), (model, "ended", "maybe"),
                               (model, "replaces", 5), (model, "prompt", ["a"]), (model, "settings", {"seed": -1}),
                               (model, "settings", {"top_p": 7})]:
        assert from_record({**record, key: value}) is None, (key, value)
    assert from_record({k: v for k, v in model.items() if k != "prompt"}) is None


def test_a_huge_line_a_directory_and_an_unwritable_file(tmp_path, monkeypatch):
    monkeypatch.setattr("minigpt.plumbing.jsonlines.MAX_TAIL_BYTES", 1 << 20)
    huge = tmp_path / "huge.chat.jsonl"
    huge.write_bytes(b"x" * (3 << 20))
    assert load_newest(huge)[0].turns == []
    write(huge, exchange("abcd0123", 1))
    assert len(load_newest(huge)[0].turns) == 2
    folder = tmp_path / "dir.chat.jsonl"
    folder.mkdir()
    assert "is a directory" in load_newest(folder)[1]
    with pytest.raises(ConversationsFileError, match="dir.chat.jsonl: cannot be written.*the turn is not kept"):
        append_turn(folder, exchange("abcd0123", 1)[0])


def test_a_missing_file_has_no_conversation_yet(tmp_path):
    conversation, problem = load_newest(tmp_path / "none.chat.jsonl")
    assert conversation.lines == [] and problem is None


def test_the_runs_picker_does_not_read_a_conversations_file_as_a_run_s_log(tmp_path):
    (tmp_path / "model.jsonl").write_text("")
    write(tmp_path / "model.chat.jsonl", exchange("abcd0123", 1))
    assert find_logs(tmp_path) == [tmp_path / "model.jsonl"]


# --- the [chat] table of the settings file --------------------------------------------------------


def chat_table(tmp_path: Path, text: str) -> tuple[ChatSettings, list[str]]:
    path = tmp_path / "minigpt.toml"
    path.write_text(text)
    return read_chat_settings(load_settings(path).document, path)


def test_a_question_and_answer_template_from_the_settings(tmp_path):
    chat, problems = chat_table(tmp_path, '[chat]\nuser_prefix = "Q: "\nmodel_prefix = "A: "\nstop = "\\n---"\n')
    assert problems == [] and chat.fixed_roles
    template = chat.template(find_speakers(""), "", "", "data/input.txt", "minigpt.toml")
    assert template == Template("Q: ", "A: ", "\n", stop=("\n---",))
    assert template.stop_strings() == ("\n\n", "\nQ:", "\nA:", "\n---")


def test_the_settings_template_wins_over_the_text_s_and_separator_and_stop_change_the_text_s(tmp_path):
    speakers = find_speakers(PLAY)
    chat, _ = chat_table(tmp_path, '[chat]\nuser_prefix = "Q: "\nmodel_prefix = "A: "\n')
    assert chat.template(speakers, "ROMEO", "BENVOLIO", "play.txt", "minigpt.toml").user == "Q: "
    chat, _ = chat_table(tmp_path, '[chat]\nseparator = "\\n"\nstop = ["THE END"]\n')
    template = chat.template(speakers, "ROMEO", "BENVOLIO", "play.txt", "minigpt.toml")
    assert (template.user, template.model, template.separator) == ("ROMEO:\n", "BENVOLIO:\n", "\n")
    assert template.stop == ("THE END",)


def test_a_text_without_speakers_and_no_template_says_what_a_template_is_and_how_to_set_one():
    with pytest.raises(NoTemplateError) as error:
        ChatSettings().template(find_speakers("just prose. " * 100), "", "", "data/input.txt", "minigpt.toml")
    message = str(error.value)
    assert "data/input.txt has no speakers" in message and "template" in message
    assert "minigpt.toml" in message and '[chat] user_prefix = "Q: "' in message and "\n" not in message


@pytest.mark.parametrize("table, expected", [
    ("user_prefix = 5\nmodel_prefix = \"A: \"", "[chat] user_prefix = 5: expected a string with more than white"),
    ('user_prefix = "  "\nmodel_prefix = "A: "', "[chat] user_prefix = '  ': expected a string"),
    ('separator = 2', "[chat] separator = 2: expected a string"),
    ('stop = ["", "x"]', "[chat] stop = ['', 'x']: expected a non-empty string or a list of them"),
    ('user = "Q: "', "[chat] unknown key 'user'"),
    ('model_prefix = "A: "', "[chat] model_prefix is set but user_prefix is not: a template needs both"),
])
def test_bad_template_settings_are_one_line_errors_that_name_the_key(tmp_path, table, expected):
    chat, problems = chat_table(tmp_path, f"[chat]\n{table}\n")
    assert len(problems) == 1 and expected in problems[0] and str(tmp_path / "minigpt.toml") in problems[0]
    assert "\n" not in problems[0] and not chat.fixed_roles


def test_a_chat_key_that_is_not_a_table_is_one_problem(tmp_path):
    chat, problems = chat_table(tmp_path, 'chat = "Q: "\n')
    assert chat == ChatSettings() and problems == [f"{tmp_path / 'minigpt.toml'}: chat = 'Q: ': expected a [chat] "
                                                   "table; ignored"]


def test_adding_a_continuation_gives_the_whole_turn():
    conversation = Conversation()
    asked, answered = exchange(conversation.id, 1)
    conversation.add(asked)
    assert conversation.add(answered) == answered
    more = model_turn(conversation.id, "JULIET:\n", " and more", "p", 41, SETTINGS, "m.pt", continues=answered.id)
    whole = conversation.add(more)
    assert whole.text == "answer 1 and more" and whole.id == more.id and conversation.turns == [asked, whole]
    assert conversation.roles == ("ROMEO", "JULIET") and Conversation().roles is None
