"""minigpt-generate: complete a prompt with a trained model, streaming the text.

    minigpt-generate --prompt "ROMEO:"
    minigpt-generate --checkpoint my.pt --temperature 0 --max-new-tokens 200
    minigpt-generate --prompt "Q:" --stop "\\n\\n" --seed 1 --save-settings
    minigpt-generate --prompt-file scene.txt        # or - for standard input
    minigpt-generate --chat --as ROMEO --to JULIET  # a conversation, one turn a line (chat_cli)

Sampling settings come from the settings file (see minigpt.plumbing.settings: --settings,
else $MINIGPT_SETTINGS, else ./minigpt.toml); flags override it for this run
and change the file only with --save-settings. The prompt is echoed, then
the continuation streams to stdout, without control characters other than
newline and tab (no escape sequence reaches the terminal); a summary goes to
stderr. Ctrl+C stops after the current token. Each completion is appended to
the checkpoint's completions file (minigpt.plumbing.completions), where the terminal
app shows it too; --no-record leaves the file alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from minigpt.plumbing.completions import (
    CompletionsFileError,
    StoredCompletion,
    append_completion,
    completions_path,
    new_completion,
)
from minigpt.plumbing.corpus import read_text
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.fields import add_flags, flag_values
from minigpt.plumbing.paths import DEFAULT_CHECKPOINT
from minigpt.plumbing.settings import (
    SETTING_NAMES,
    SamplingSettings,
    field_specs,
    load_settings,
    save_settings,
    settings_path,
)
from minigpt.plumbing.terminal import printable, unescape

if TYPE_CHECKING:
    from minigpt.model import GPT
    from minigpt.tokenizer import Tokenizer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigpt-generate",
                                     description="Complete a prompt with a trained MiniGPT model.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, metavar="PATH",
                        help=f"model to sample from (default: {DEFAULT_CHECKPOINT})")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="", type=unescape, metavar="TEXT",
                        help="text to complete; \\n and \\t work (default: empty, start from a newline)")
    prompt.add_argument("--prompt-file", type=Path, metavar="PATH",
                        help="read the prompt from a UTF-8 file, as it is; - reads standard input")
    prompt.add_argument("--chat", action="store_true",
                        help="talk with the model as a character of its text: each line of standard input is "
                             "your turn, the model writes its character's (see the chat options)")
    parser.add_argument("--settings", type=Path, metavar="PATH",
                        help="sampling settings file (default: $MINIGPT_SETTINGS, else ./minigpt.toml)")
    parser.add_argument("--save-settings", action="store_true",
                        help="write the settings of this run (file plus flags) back to the settings file")
    parser.add_argument("--no-record", action="store_true",
                        help="do not append the completion to the checkpoint's completions file "
                             "(default: PATH.completions.jsonl beside the checkpoint)")
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token (slow)")
    # One token at a time is a chain of small operations: a second thread barely helps, and
    # waiting on it costs milliseconds per operation when other programs busy the cores.
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="CPU threads for torch (default: 1; 0 keeps torch's choice)")
    sampling = parser.add_argument_group("sampling settings", "These override the settings file for this run. "
                                         "The defaults are those used without a file.")
    add_flags(sampling, field_specs().values())  # --temperature, --top-k...: SamplingSettings' own words
    chat = parser.add_argument_group("chat options", "With --chat: the conversation is laid out in the template "
                                     "of the training text's speakers (or the settings file's [chat]).")
    chat.add_argument("--data", type=Path, metavar="PATH",
                      help="the text the model was trained on, for its speakers (default: data/input.txt)")
    chat.add_argument("--as", dest="user", metavar="NAME",
                      help="who you are (default: of the two who speak most, the one who speaks first)")
    chat.add_argument("--to", dest="model_name", metavar="NAME",
                      help="whom the model plays (default: the other of those two)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return generate_text(args)
    except MiniGPTError as e:  # every expected failure is one clear line
        print(f"minigpt-generate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C before the text started
        print(file=sys.stderr)
        return 130


def generate_text(args: argparse.Namespace) -> int:
    from minigpt.plumbing.checkpoint import load_checkpoint

    path = settings_path(args.settings)
    loaded = load_settings(path)
    for problem in loaded.problems:
        print(f"minigpt-generate: warning: {problem}", file=sys.stderr)
    settings = dataclasses.replace(loaded.sampling, **flag_values(args, SETTING_NAMES))
    if args.save_settings:
        save_settings(path, settings, loaded.document)
        print(f"minigpt-generate: saved the settings to {path}", file=sys.stderr)

    if not args.checkpoint.exists() and args.checkpoint == DEFAULT_CHECKPOINT:
        raise MiniGPTError(f"{args.checkpoint}: no such checkpoint; train one first with minigpt-train "
                           "or pass --checkpoint PATH")
    prompt = read_text(args.prompt_file, "--prompt-file") if args.prompt_file else args.prompt
    checkpoint = load_checkpoint(args.checkpoint)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    model = checkpoint.build_model("cpu").eval()
    if args.chat:
        from chat_cli import chat

        return chat(args, checkpoint, model, settings, loaded)
    settings = settings.seeded()  # a concrete seed, so the summary can say how to repeat this text
    status, text = stream(model, checkpoint.tokenizer, prompt, settings, use_cache=not args.no_cache)
    if not args.no_record:
        record(args.checkpoint, new_completion(prompt, text, checkpoint.step, settings, args.checkpoint,
                                               ended="cancelled" if status == 130 else "done"))
    return status


def record(checkpoint: Path, completion: StoredCompletion) -> None:
    """Append completion to the checkpoint's completions file; a failure is a warning, never an error."""
    path = completions_path(checkpoint)
    try:
        append_completion(path, completion)
    except CompletionsFileError as e:
        print(f"minigpt-generate: warning: {e}", file=sys.stderr)


def stream(model: GPT, tokenizer: Tokenizer, prompt: str, settings: SamplingSettings,
           use_cache: bool, echo: str | None = None) -> tuple[int, str]:
    """Echo the prompt (or echo, if given), stream the completion to stdout and a summary to stderr;
    return the exit status and the text. Ctrl+C ends the text after the current token, with status 130."""
    from minigpt.sampling import generate

    ctrl_c = threading.Event()
    # A bad prompt fails here, before any output.
    pieces = generate(model, tokenizer, prompt, settings, use_cache, should_stop=ctrl_c.is_set)
    echo = prompt if echo is None else echo
    started, count, last, text = time.perf_counter(), 0, echo[-1:] or "\n", []
    out = sys.stdout
    with ctrl_c_sets(ctrl_c):
        try:
            out.write(printable(echo))  # never an escape sequence to the terminal
            out.flush()
            for piece in pieces:
                text.append(piece.text)
                out.write(printable(piece.text))
                out.flush()
                count += 1
                last = piece.text[-1:] or last
            if last != "\n":
                out.write("\n")
                out.flush()
        except BrokenPipeError:  # e.g. piped into head: the reader has all it wants
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return 0, "".join(text)
        finally:
            pieces.close()
    seconds = time.perf_counter() - started
    how = "stopped by Ctrl+C after" if ctrl_c.is_set() else "generated"
    print(f"{summary_break(out)}[{how} {count} tokens in {seconds:.2f} s, {count / max(seconds, 1e-9):.0f} "
          f"tokens/s; seed {settings.seed}]", file=sys.stderr)
    return 130 if ctrl_c.is_set() else 0, "".join(text)


def summary_break(out) -> str:
    """What the summary starts with, so that it starts a line of its own. When the text goes
    through a pipe (`| tee`, `| less`) and the summary straight to the terminal, the text's
    end may reach the terminal after the summary: a newline of its own keeps them apart."""
    return "\n" if sys.stderr.isatty() and not out.isatty() else ""


@contextmanager
def ctrl_c_sets(event: threading.Event) -> Iterator[None]:
    """Within the block, Ctrl+C sets event instead of raising KeyboardInterrupt, which could
    land anywhere, e.g. between writing a piece of text and noting that it was written."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())
