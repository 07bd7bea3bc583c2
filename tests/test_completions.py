"""The completions file, the prompt history and minigpt-generate's --prompt-file and record."""

import io
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import generate_cli
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minigpt.plumbing.completions import (
    CompletionsFileError,
    append_completion,
    completions_path,
    export_markdown,
    from_record,
    load_recent,
    new_completion,
)
from minigpt.plumbing.history import LIMIT, load_history
from minigpt.plumbing.jsonlines import read_tail
from minigpt.plumbing.settings import SETTINGS_ENV, SamplingSettings
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

CHARS = "\n abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def checkpoint(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=16, d_model=32, n_heads=2, n_layers=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    path = tmp_path / "checkpoints" / "model.pt"
    path.parent.mkdir()
    save_checkpoint(path, Checkpoint(model.state_dict(), model.config, CharTokenizer(CHARS), step=7, train_config={}))
    return path


def completion(i: int = 0, **changes):
    made = new_completion(f"prompt {i}\n", f"text {i}", i, SamplingSettings(seed=i), "checkpoints/model.pt")
    return replace(made, **changes)


# --- the completions file ---------------------------------------------------------------------


def test_a_completion_round_trips_through_its_line(tmp_path):
    path = tmp_path / "model.completions.jsonl"
    stored = completion(3, ended="cancelled", continues="abcd1234")
    append_completion(path, stored)
    line = path.read_text(encoding="utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["settings"]["seed"] == 3
    assert load_recent(path, 10).completions == [stored]


def test_the_newest_are_loaded_oldest_first(tmp_path):
    path = tmp_path / "c.jsonl"
    for i in range(30):
        append_completion(path, completion(i))
    loaded = load_recent(path, 5)
    assert [c.step for c in loaded.completions] == [25, 26, 27, 28, 29] and loaded.problem is None


def test_a_truncated_last_line_is_skipped_once_and_the_next_append_starts_a_new_line(tmp_path):
    path = tmp_path / "c.jsonl"
    append_completion(path, completion(1))
    with path.open("ab") as f:
        f.write(b'{"v": 1, "id": "cut sh')  # a crash in the middle of a write
    before = path.read_bytes()
    loaded = load_recent(path, 10)
    assert [c.step for c in loaded.completions] == [1]
    assert "1 of the newest 2 lines are not completions" in loaded.problem
    assert path.read_bytes() == before, "the file is left as it is"
    append_completion(path, completion(2))
    assert path.read_bytes().startswith(before + b"\n")
    assert [c.step for c in load_recent(path, 10).completions] == [1, 2]


@pytest.mark.parametrize("junk", [b"\x00\xff\xfe binary\n", b"[1, 2]\n", b'{"prompt": 5}\n', b"not json\n",
                                  b'{"v": 1, "settings": {"seed": -1}}\n', b"[" * 100_000 + b"\n"])
def test_corrupt_lines_are_counted_and_skipped(tmp_path, junk):
    path = tmp_path / "c.jsonl"
    append_completion(path, completion(1))
    with path.open("ab") as f:
        f.write(junk)
    append_completion(path, completion(2))
    loaded = load_recent(path, 10)
    assert [c.step for c in loaded.completions] == [1, 2] and "1 of the newest 3" in loaded.problem


def test_a_huge_line_without_newlines_does_not_stop_loading(tmp_path, monkeypatch):
    monkeypatch.setattr("minigpt.plumbing.jsonlines.MAX_TAIL_BYTES", 1 << 20)
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"x" * (3 << 20))
    assert load_recent(path, 10).completions == []
    append_completion(path, completion(1))
    assert [c.step for c in load_recent(path, 10).completions] == [1]


def test_a_directory_or_unwritable_file_is_one_line_problem(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    assert "is a directory" in load_recent(tmp_path / "dir.jsonl", 5).problem
    with pytest.raises(CompletionsFileError, match="dir.jsonl: cannot be written.*not kept"):
        append_completion(tmp_path / "dir.jsonl", completion())


def test_a_lone_surrogate_in_a_prompt_is_still_written_as_one_line(tmp_path):
    path = tmp_path / "c.jsonl"
    append_completion(path, completion(1, prompt="a\udc80b"))
    assert load_recent(path, 1).completions[0].prompt == "a\udc80b"


def test_from_record_refuses_wrong_types():
    good = completion(1).to_record()
    assert from_record(good) is not None
    for key, value in [("step", "7"), ("text", None), ("ended", "maybe"), ("continues", 5), ("step", True)]:
        assert from_record({**good, key: value}) is None, key
    assert from_record({k: v for k, v in good.items() if k != "prompt"}) is None


def test_paths_sit_beside_the_checkpoint():
    assert completions_path(Path("checkpoints/model.pt")) == Path("checkpoints/model.completions.jsonl")


def test_export_writes_markdown_with_fences_the_text_cannot_close(tmp_path):
    path = tmp_path / "out.md"
    assert export_markdown([completion(1), completion(2, text="code ``` inside")], path) == 2
    text = path.read_text()
    assert text.startswith("# MiniGPT completions") and "seed 2" in text and "````\nprompt 2\n" in text


# --- the prompt history --------------------------------------------------------------------------


def test_history_is_deduplicated_newest_last_and_kept_across_loads(tmp_path):
    path = tmp_path / "h.jsonl"
    history = load_history(path)
    for prompt in ["a", "b\nc", "a", "   "]:
        history.add(prompt)
    assert history.prompts == ["b\nc", "a"]
    assert load_history(path).prompts == ["b\nc", "a"]


def test_history_is_capped_and_a_long_file_is_compacted(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i % (LIMIT + 500)}"}) + "\n" for i in range(3 * LIMIT)))
    history = load_history(path)
    assert len(history.prompts) == LIMIT and history.prompts[-1] == f"p{(3 * LIMIT - 1) % (LIMIT + 500)}"
    assert len(path.read_text().splitlines()) == LIMIT and history.problem is None
    assert load_history(path).prompts == history.prompts


def test_a_corrupt_history_warns_once_is_kept_and_appended_safely(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n\xff\xfe garbage\n{"prompt": 3}\n{"prompt": "cut')
    before = path.read_bytes()
    history = load_history(path)
    assert history.prompts == ["ok"] and "3 lines are not prompts" in history.problem
    assert path.read_bytes() == before
    history.add("new")
    assert path.read_bytes().startswith(before + b"\n")
    assert load_history(path).prompts == ["ok", "new"]


def test_read_tail_of_a_missing_file_is_empty(tmp_path):
    tail = read_tail(tmp_path / "none.jsonl", 5)
    assert tail.records == [] and tail.problem is None


# --- minigpt-generate: --prompt-file, record, reproduction -------------------------------------------


def run(capsys, *argv):
    rc = generate_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_prompt_file_and_stdin_give_the_prompt_as_it_is(capsys, checkpoint, monkeypatch):
    prompt_file = checkpoint.parent.parent / "prompt.txt"
    prompt_file.write_text("the cat\nsat\n\n")
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt-file", prompt_file, "--max-new-tokens", 5)
    assert rc == 0 and out.startswith("the cat\nsat\n\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt-file", "-", "--max-new-tokens", 5)
    assert rc == 0 and out.startswith("from stdin\n")


def test_prompt_flag_reads_a_typed_backslash_n(capsys, checkpoint):
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt", r"ab\ncd", "--max-new-tokens", 3)
    assert rc == 0 and out.startswith("ab\ncd")


@pytest.mark.parametrize("content, message", [(None, "nothing.txt: no such file (--prompt-file)"),
                                              (b"caf\xe9", "not UTF-8 text (invalid byte 0xe9 at offset 3)")])
def test_bad_prompt_file_is_one_line_error(capsys, checkpoint, content, message):
    path = checkpoint.parent.parent / "nothing.txt"
    if content is not None:
        path.write_bytes(content)
    rc, _, err = run(capsys, "--checkpoint", checkpoint, "--prompt-file", path)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_recorded_completion_is_reproduced_exactly_from_its_seed_and_settings(capsys, checkpoint):
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt", "the", "--max-new-tokens", 40)
    assert rc == 0
    [stored] = load_recent(completions_path(checkpoint), 10).completions
    line_end = "" if stored.text.endswith("\n") else "\n"  # the CLI ends the last line only where the text did not
    assert stored.prompt == "the" and stored.step == 7 and stored.seed >= 0 and out == "the" + stored.text + line_end
    loaded = load_checkpoint(checkpoint)
    model = loaded.build_model("cpu").eval()
    again = "".join(p.text for p in generate(model, loaded.tokenizer, stored.prompt, stored.settings))
    assert again == stored.text


def test_no_record_leaves_no_file_and_an_unwritable_file_is_a_warning(capsys, checkpoint):
    run(capsys, "--checkpoint", checkpoint, "--prompt", "a", "--max-new-tokens", 3, "--no-record")
    assert not completions_path(checkpoint).exists()
    completions_path(checkpoint).mkdir()
    rc, _, err = run(capsys, "--checkpoint", checkpoint, "--prompt", "a", "--max-new-tokens", 3)
    assert rc == 0 and "warning:" in err and "model.completions.jsonl: cannot be written" in err
