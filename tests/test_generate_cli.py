import io
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import torch

import generate_cli
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, save_checkpoint
from minigpt.plumbing.fields import flag_values
from minigpt.plumbing.settings import SETTING_NAMES, SETTINGS_ENV, SamplingSettings, field_specs
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

CHARS = "\n abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def model_and_tokenizer() -> tuple[GPT, CharTokenizer]:
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=16, d_model=32, n_heads=2, n_layers=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)  # large weights: varied, context-dependent text
    return model.eval(), CharTokenizer(CHARS)


@pytest.fixture
def checkpoint(tmp_path, model_and_tokenizer) -> Path:
    model, tokenizer = model_and_tokenizer
    path = tmp_path / "model.pt"
    save_checkpoint(path, Checkpoint(model.state_dict(), model.config, tokenizer, step=0, train_config={}))
    return path


@pytest.fixture(autouse=True)
def no_settings_env(monkeypatch, tmp_path):
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # so ./minigpt.toml is this test's own


def greedy(model_and_tokenizer, prompt: str, n: int) -> str:
    model, tokenizer = model_and_tokenizer
    settings = SamplingSettings(temperature=0, max_new_tokens=n)
    return "".join(p.text for p in generate(model, tokenizer, prompt, settings))


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = generate_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_prints_prompt_and_greedy_completion(capsys, checkpoint, model_and_tokenizer):
    rc, out, err = run(capsys, "--checkpoint", checkpoint, "--prompt", "the", "--temperature", "0",
                       "--max-new-tokens", 40)
    assert rc == 0
    expected = "the" + greedy(model_and_tokenizer, "the", 40)
    assert out.rstrip("\n") == expected.rstrip("\n") and out.endswith("\n")
    assert "generated 40 tokens" in err


def terminal_output(checkpoint: Path, text_to_terminal: bool) -> bytes:
    """What a terminal shows of a completion whose summary goes to it (stderr), its
    text too or (stdout piped elsewhere, as `| tee` or `| less` read it) not."""
    controller, terminal = pty.openpty()
    stdout = terminal if text_to_terminal else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "generate_cli", "--checkpoint", str(checkpoint), "--prompt", "ab",
                             "--max-new-tokens", "20", "--seed", "3", "--no-record"],
                            stdout=stdout, stderr=terminal, env={**os.environ, "OMP_NUM_THREADS": "1"})
    os.close(terminal)
    shown = b""
    while chunk := _read(controller):
        shown += chunk
    os.close(controller)
    proc.communicate(timeout=60)
    assert proc.returncode == 0, shown
    return shown


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the other end closed (Linux says EIO)
        return b""


def test_the_summary_starts_a_line_of_its_own(checkpoint):
    """`...or the [generated 120 tokens ...]`: whatever order the text and the summary reach the terminal in."""
    both = terminal_output(checkpoint, text_to_terminal=True)
    text, summary = both.split(b"[generated")
    assert text.startswith(b"ab") and text.endswith(b"\r\n") and not text.endswith(b"\r\n\r\n")
    assert terminal_output(checkpoint, text_to_terminal=False).startswith(b"\r\n[generated 20 tokens")


def test_flags_override_the_settings_file_which_is_left_unchanged(capsys, checkpoint, model_and_tokenizer):
    text = "[sampling]\ntemperature = 0\nmax_new_tokens = 5\n\n[tui]\ntheme = \"nord\"\n"
    Path("minigpt.toml").write_text(text)
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt", "a")
    assert rc == 0 and out.rstrip("\n") == ("a" + greedy(model_and_tokenizer, "a", 5)).rstrip("\n")
    rc, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt", "a", "--max-new-tokens", 12)
    assert rc == 0 and out.rstrip("\n") == ("a" + greedy(model_and_tokenizer, "a", 12)).rstrip("\n")
    assert Path("minigpt.toml").read_text() == text


def test_settings_flag_and_environment_variable_name_the_file(capsys, checkpoint, monkeypatch, tmp_path):
    (tmp_path / "env.toml").write_text("[sampling]\nmax_new_tokens = 3\n")
    (tmp_path / "flag.toml").write_text("[sampling]\nmax_new_tokens = 4\n")
    Path("minigpt.toml").write_text("[sampling]\nmax_new_tokens = 2\n")
    assert "generated 2 tokens" in run(capsys, "--checkpoint", checkpoint)[2]
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env.toml"))
    assert "generated 3 tokens" in run(capsys, "--checkpoint", checkpoint)[2]
    assert "generated 4 tokens" in run(capsys, "--checkpoint", checkpoint, "--settings", tmp_path / "flag.toml")[2]


def test_bad_settings_file_warns_and_uses_defaults_for_the_bad_key(capsys, checkpoint):
    text = "[sampling]\ntop_p = 7\nmax_new_tokens = 6\n"
    Path("minigpt.toml").write_text(text)
    rc, _, err = run(capsys, "--checkpoint", checkpoint, "--seed", 1)
    assert rc == 0
    assert "warning: minigpt.toml: [sampling] top_p = 7" in err and "generated 6 tokens" in err
    assert Path("minigpt.toml").read_text() == text


def test_save_settings_writes_the_run_settings_and_keeps_other_tables(capsys, checkpoint):
    Path("minigpt.toml").write_text("[sampling]\ntop_k = 3\nmine = 1\n\n[keymap]\nquit = \"q\"\n")
    rc, _, _ = run(capsys, "--checkpoint", checkpoint, "--temperature", "0.5", "--stop", "\\n\\n",
                   "--max-new-tokens", 3, "--save-settings")
    assert rc == 0
    saved = tomllib.loads(Path("minigpt.toml").read_text())
    assert saved["keymap"] == {"quit": "q"}
    assert saved["sampling"]["mine"] == 1
    assert saved["sampling"]["top_k"] == 3 and saved["sampling"]["temperature"] == 0.5
    assert saved["sampling"]["stop"] == ["\n\n"]
    assert saved["sampling"]["seed"] == -1  # the seed drawn for this run is not saved


def test_same_seed_same_text(capsys, checkpoint):
    first = run(capsys, "--checkpoint", checkpoint, "--seed", 9, "--temperature", "1.5", "--max-new-tokens", 50)[1]
    again = run(capsys, "--checkpoint", checkpoint, "--seed", 9, "--temperature", "1.5", "--max-new-tokens", 50)[1]
    other = run(capsys, "--checkpoint", checkpoint, "--seed", 10, "--temperature", "1.5", "--max-new-tokens", 50)[1]
    assert first == again != other


def test_the_seed_drawn_for_a_random_run_is_reported_and_repeats_the_text(capsys, checkpoint):
    argv = ["--checkpoint", checkpoint, "--temperature", "1.5", "--max-new-tokens", 50]
    rc, first, err = run(capsys, *argv)  # seed -1, the default
    assert rc == 0
    seed = int(re.search(r"; seed (\d+)\]", err).group(1))
    assert run(capsys, *argv, "--seed", seed)[1] == first


def test_help_shows_each_sampling_setting_with_its_help_and_default(capsys):
    with pytest.raises(SystemExit):
        generate_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # as one line: argparse wraps the help
    for name, spec in field_specs().items():
        assert f"--{name.replace('_', '-')} " in text and spec.metadata["help"] in text
    defaults = SamplingSettings()
    assert ("--temperature X 0 always picks the likeliest token; higher is wilder; "
            f"a number from 0 (greedy) to 100 (default: {defaults.temperature})") in text
    assert ("--max-new-tokens N the longest completion, in tokens; an integer from 1 to 100000 "
            f"(default: {defaults.max_new_tokens})") in text
    assert "--stop TEXT end before any of these strings (repeatable; \\n and \\t work; default: none)" in text


def test_stop_string_from_the_command_line(capsys, checkpoint, model_and_tokenizer):
    full = greedy(model_and_tokenizer, "the", 60)
    stop = full[30:33]
    _, out, _ = run(capsys, "--checkpoint", checkpoint, "--prompt", "the", "--temperature", 0,
                    "--max-new-tokens", 60, "--stop", stop)
    assert out.rstrip("\n") == ("the" + full[: full.find(stop)]).rstrip("\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--temperature", "-1"], "temperature = -1.0: expected"),
    (["--top-p", "0"], "top_p = 0.0: expected"),
    (["--top-k", "-2"], "top_k = -2: expected"),
    (["--max-new-tokens", "0"], "max_new_tokens = 0: expected"),
    (["--repetition-penalty", "0"], "repetition_penalty = 0.0: expected"),
    (["--seed", "-3"], "seed = -3: expected"),
    (["--stop", ""], "stop = ['']: expected"),
    (["--prompt", "Hello, World"], "not in the model's vocabulary: 'H' ',' 'W'"),
    (["--checkpoint", "missing.pt"], "missing.pt: no such checkpoint"),
])
def test_errors_are_one_line_with_exit_status_2(capsys, checkpoint, argv, message):
    argv = ["--checkpoint", checkpoint, *argv]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1 and err.startswith("minigpt-generate: error: ")


def test_missing_default_checkpoint_says_how_to_get_one(capsys):
    rc, _, err = run(capsys)
    assert rc == 2 and "checkpoints/model.pt" in err and "minigpt-train" in err


def test_unescape():
    assert generate_cli.unescape(r"a\nb\tc\\n\x") == "a\nb\tc\\n\\x"
    assert generate_cli.unescape("trailing\\") == "trailing\\"


def test_sampling_flags_are_read_by_setting_name():
    args = generate_cli.build_parser().parse_args(["--top-k", "3", "--stop", "a\\nb", "--stop", "END", "--seed", "5"])
    assert flag_values(args, SETTING_NAMES) == {"top_k": 3, "seed": 5, "stop": ["a\nb", "END"]}


class CtrlCOnFlush(io.StringIO):
    """Standard output, where Ctrl+C arrives during the nth flush."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.flushes = n, 0

    def flush(self) -> None:
        self.flushes += 1
        if self.flushes == self.n:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_right_after_a_piece_is_written_still_ends_the_line(capsys, monkeypatch, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    out = CtrlCOnFlush(2)  # the prompt's flush, then the first piece's
    monkeypatch.setattr(sys, "stdout", out)
    settings = SamplingSettings(temperature=0, max_new_tokens=50, seed=0)
    # The prompt ends with a newline, the first piece does not: the line must still be ended.
    first = greedy(model_and_tokenizer, "a\n", 1)
    assert first != "\n"
    rc, text = generate_cli.stream(model, tokenizer, "a\n", settings, use_cache=True)
    assert rc == 130 and text == first
    assert out.getvalue() == "a\n" + first + "\n"
    assert "stopped by Ctrl+C after 1 tokens" in capsys.readouterr().err


def test_ctrl_c_sets_an_event_inside_the_block_and_the_old_handler_comes_back():
    before, event = signal.getsignal(signal.SIGINT), threading.Event()
    with generate_cli.ctrl_c_sets(event):
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt
    assert event.is_set() and signal.getsignal(signal.SIGINT) is before


def test_streams_before_generation_ends_and_ctrl_c_stops_cleanly(checkpoint, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "generate_cli", "--checkpoint", str(checkpoint), "--prompt", "ab",
         "--max-new-tokens", "100000", "--no-cache", "--seed", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.read(50)  # returns once 50 bytes have streamed out
        assert first.startswith(b"ab") and len(first) == 50
        assert proc.poll() is None  # text arrived while generation goes on
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    err = err.decode()
    assert "stopped by Ctrl+C after" in err and "Traceback" not in err
    assert (first + rest).endswith(b"\n")
