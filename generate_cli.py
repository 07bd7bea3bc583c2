"""minigpt-generate: complete a prompt with a trained model, streaming the text.

    minigpt-generate --prompt "ROMEO:"
    minigpt-generate --checkpoint my.pt --temperature 0 --max-new-tokens 200
    minigpt-generate --prompt "Q:" --stop "\\n\\n" --seed 1 --save-settings

Sampling settings come from the settings file (see minigpt.settings: --settings,
else $MINIGPT_SETTINGS, else ./minigpt.toml); flags override it for this run
and change the file only with --save-settings. The prompt is echoed, then
the continuation streams to stdout, without control characters other than
newline and tab (no escape sequence reaches the terminal); a summary goes to
stderr. Ctrl+C stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

from minigpt.errors import MiniGPTError
from minigpt.paths import DEFAULT_CHECKPOINT
from minigpt.terminal import printable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt-generate", description="Complete a prompt with a trained MiniGPT model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The sampling settings flags override the settings file for this run. Without a file the\n"
               "defaults are: temperature 0.8, top_k 0, top_p 0.95, repetition_penalty 1.0,\n"
               "max_new_tokens 500, seed -1, no stop strings.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, metavar="PATH",
                        help=f"model to sample from (default: {DEFAULT_CHECKPOINT})")
    parser.add_argument("--prompt", default="", metavar="TEXT",
                        help="text to complete (default: empty, start from a newline)")
    parser.add_argument("--settings", type=Path, metavar="PATH",
                        help="sampling settings file (default: $MINIGPT_SETTINGS, else ./minigpt.toml)")
    parser.add_argument("--save-settings", action="store_true",
                        help="write the settings of this run (file plus flags) back to the settings file")
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token (slow)")
    # One token at a time is a chain of small operations: a second thread barely helps, and
    # waiting on it costs milliseconds per operation when other programs busy the cores.
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="CPU threads for torch (default: 1; 0 keeps torch's choice)")
    sampling = parser.add_argument_group("sampling settings")
    add = sampling.add_argument
    add("--temperature", type=float, metavar="T", help="0 (greedy) to 100; higher is more random")
    add("--top-k", type=int, metavar="K", help="sample from the k most likely tokens; 0 is off")
    add("--top-p", type=float, metavar="P", help="sample from the smallest set of tokens reaching this probability, "
                                                 "in (0, 1]; 1 is off")
    add("--repetition-penalty", type=float, metavar="R", help="in (0, 10]; above 1 discourages repeats")
    add("--max-new-tokens", type=int, metavar="N", help="tokens to generate, 1 to 100000")
    add("--seed", type=int, metavar="S", help="same seed, settings and prompt give the same text; -1 is random")
    add("--stop", action="append", metavar="TEXT", help="stop before this text (repeatable; \\n, \\t work)")
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
    from minigpt.checkpoint import load_checkpoint
    from minigpt.settings import load_settings, save_settings, settings_path

    path = settings_path(args.settings)
    loaded = load_settings(path)
    for problem in loaded.problems:
        print(f"minigpt-generate: warning: {problem}", file=sys.stderr)
    settings = dataclasses.replace(loaded.sampling, **setting_flags(args))
    if args.save_settings:
        save_settings(path, settings, loaded.document)
        print(f"minigpt-generate: saved the settings to {path}", file=sys.stderr)

    if not args.checkpoint.exists() and args.checkpoint == DEFAULT_CHECKPOINT:
        raise MiniGPTError(f"{args.checkpoint}: no such checkpoint; train one first with minigpt-train "
                           "or pass --checkpoint PATH")
    checkpoint = load_checkpoint(args.checkpoint)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    model = checkpoint.build_model("cpu").eval()
    if settings.seed == -1:  # draw it here so the summary can say how to repeat this text
        settings = dataclasses.replace(settings, seed=random.randrange(2**63))
    return stream(model, checkpoint.tokenizer, args.prompt, settings, use_cache=not args.no_cache)


def setting_flags(args: argparse.Namespace) -> dict:
    names = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens", "seed")
    flags = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.stop is not None:
        flags["stop"] = tuple(unescape(s) for s in args.stop)
    return flags


def unescape(text: str) -> str:
    """Read \\n, \\t and \\\\ the way people type them on a command line."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    out, chars = [], iter(text)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append(escapes.get(nxt, c + nxt))
        else:
            out.append(c)
    return "".join(out)


def stream(model, tokenizer, prompt: str, settings, use_cache: bool) -> int:
    from minigpt.sampling import generate

    pieces = generate(model, tokenizer, prompt, settings, use_cache)  # a bad prompt fails here, before any output
    started, count, last = time.perf_counter(), 0, prompt[-1:] or "\n"
    out = sys.stdout
    try:
        out.write(printable(prompt))  # never an escape sequence to the terminal
        out.flush()
        for piece in pieces:
            out.write(printable(piece.text))
            out.flush()
            count += 1
            last = piece.text[-1:] or last
        stopped = False
    except KeyboardInterrupt:
        stopped = True
    except BrokenPipeError:  # e.g. piped into head: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0
    finally:
        pieces.close()
    if last != "\n":
        out.write("\n")
        out.flush()
    seconds = time.perf_counter() - started
    how = "stopped by Ctrl+C after" if stopped else "generated"
    print(f"[{how} {count} tokens in {seconds:.2f} s, {count / max(seconds, 1e-9):.0f} tokens/s; "
          f"seed {settings.seed}]", file=sys.stderr)
    return 130 if stopped else 0


if __name__ == "__main__":
    raise SystemExit(main())
