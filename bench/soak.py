"""Long-run benchmarks of minigpt-tui, headless (Linux: they read /proc),
run from the repository root:

* `python -m bench soak --minutes N`: the app trains without end
  (evaluating, sampling and saving a checkpoint every --eval-interval
  steps) while a prompt is completed again as soon as the last completion
  ends; every --interval seconds it reports the process's memory (RSS), open
  file handles and threads. The memory must stay flat after the warm-up.
* `python -m bench stream --tokens 100000`: one completion of that
  many tokens streams into the generation pane while keys are typed into the
  prompt; reports the key-press-to-screen latency during the stream and at
  its end, and the memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from textual import events
from textual.pilot import Pilot

from bench.app import TimedApp, headless_app, latency_summary, type_a_key
from bench.interrupt import run_async
from minigpt.plumbing import config as cfg
from minigpt.plumbing.errors import MiniGPTError
from tui.widgets.prompt import PromptInput

PROMPT = "The "  # in the vocabulary of the built-in corpus and of Tiny Shakespeare
ENDLESS = 10_000_000  # max_iters for a run that outlasts any soak


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30, help="how long to run")
    parser.add_argument("--interval", type=float, default=60, help="seconds between two reports")
    parser.add_argument("--warmup-minutes", type=float, default=5,
                        help="memory is compared with the first report after this")
    _add_common_arguments(parser, preset="tiny")
    parser.add_argument("--eval-interval", type=int, default=500, help="steps between evaluations and saves")
    parser.add_argument("--max-new-tokens", type=int, default=500, help="tokens per completion")


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens", type=int, default=100_000, help="tokens in the one completion")
    _add_common_arguments(parser, preset="tiny")
    parser.add_argument("--keys", type=int, default=50, help="keys timed once the stream has ended")


def _add_common_arguments(parser: argparse.ArgumentParser, preset: str) -> None:
    parser.add_argument("--preset", default=preset, choices=list(cfg.PRESETS), help="model and training preset")
    parser.add_argument("--data", type=Path, help="corpus (default: data/input.txt, else the built-in one)")
    parser.add_argument("--size", default="120x40", help="terminal size of the headless app, WIDTHxHEIGHT")


# --- measuring the process ----------------------------------------------------------------

def rss_mib() -> float:
    """Resident memory of this process now (not its peak)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def _require_proc() -> None:
    if not Path("/proc/self/statm").exists():
        raise MiniGPTError("this benchmark reads /proc/self to measure memory and file handles: run it on Linux")


# --- driving the app ------------------------------------------------------------------------

async def complete(app: TimedApp, pilot: Pilot, max_new_tokens: int) -> None:
    """Type PROMPT into the prompt and press Enter, as a user would."""
    assert app.sampling is not None and app.session is not None
    if unknown := app.session.trainer.tokenizer.unknown_characters(PROMPT):
        raise MiniGPTError(f"the corpus lacks the prompt's characters {unknown!r}: use another --data")
    app.sampling = replace(app.sampling, max_new_tokens=max_new_tokens, seed=-1)
    app.action_focus_prompt()
    app.query_one("#prompt", PromptInput).text = PROMPT
    await pilot.pause()  # focus moves on the next refresh
    # Posted as the terminal driver would: pilot.press() would wait for the whole stream to end.
    app.post_message(events.Key("enter", "\r"))
    while not app.generating:
        await asyncio.sleep(0.01)


# --- soak ---------------------------------------------------------------------------------------

def run_soak(args: argparse.Namespace) -> int:
    _require_proc()
    return run_async(_soak(args))


async def _soak(args: argparse.Namespace) -> int:
    config = replace(cfg.preset(args.preset), max_iters=ENDLESS, eval_interval=args.eval_interval)
    print(f"soak: preset {args.preset}, evaluation and save every {args.eval_interval} steps, "
          f"completions of {args.max_new_tokens} tokens back to back, {args.minutes:g} minutes")
    print(f"{'minutes':>7} {'step':>9} {'completions':>11} {'RSS MiB':>8} {'files':>6} {'threads':>7}")
    rows: list[tuple[float, float, int]] = []  # minutes, RSS, open files
    async with headless_app(config, args) as (app, pilot):
        await pilot.press("t")
        started, completions, next_report = time.monotonic(), 0, 0.0
        while (elapsed := time.monotonic() - started) < 60 * args.minutes:
            if not app.generating:
                await complete(app, pilot, args.max_new_tokens)
                completions += 1
            if elapsed >= next_report:
                rows.append((elapsed / 60, rss_mib(), open_files()))
                step = app.progress.step
                print(f"{elapsed / 60:7.1f} {step:9,} {completions:11,} {rows[-1][1]:8.1f} {rows[-1][2]:6} "
                      f"{threading.active_count():7}", flush=True)
                next_report += args.interval
            await asyncio.sleep(0.1)
        latencies = [await type_a_key(app, "abcdefghij"[i % 10]) for i in range(20)]
        if app.run_state != "training":
            raise MiniGPTError(f"training is no longer running at the end (state {app.run_state})")
    print(f"key-press-to-screen at the end: {latency_summary(latencies)}")
    _report_flatness(rows, args.warmup_minutes)
    return 0


def _report_flatness(rows: list[tuple[float, float, int]], warmup_minutes: float) -> None:
    after = [row for row in rows if row[0] >= warmup_minutes]
    if len(after) < 2:
        print(f"too short to judge: fewer than two reports after the {warmup_minutes:g}-minute warm-up")
        return
    base_minutes, base_rss, base_files = after[0]
    peak = max(rss for _, rss, _ in after)
    final = after[-1][1]
    print(f"RSS after warm-up ({base_minutes:.1f} min): {base_rss:.1f} MiB; peak since {peak:.1f} MiB "
          f"({peak / base_rss - 1:+.1%}); at the end {final:.1f} MiB ({final / base_rss - 1:+.1%})  "
          f"(target: within 10%)")
    print(f"open files after warm-up {base_files}, at most {max(f for _, _, f in after)} since, "
          f"{after[-1][2]} at the end")


# --- stream ------------------------------------------------------------------------------------

def run_stream(args: argparse.Namespace) -> int:
    _require_proc()
    return run_async(_stream(args))


async def _stream(args: argparse.Namespace) -> int:
    config = cfg.preset(args.preset)
    async with headless_app(config, args) as (app, pilot):
        before = rss_mib()
        started = time.monotonic()
        await complete(app, pilot, args.tokens)
        print(f"streaming {args.tokens:,} tokens into the generation pane while keys are typed...")
        during = []
        while app.generating:  # typing into the prompt while the completion streams
            during.append(await type_a_key(app, "abcdefghij"[len(during) % 10]))
            await asyncio.sleep(0.2)
        seconds = time.monotonic() - started
        completion = app.completions.list.last_completion
        assert completion is not None
        after_stream = [await type_a_key(app, "abcdefghij"[i % 10]) for i in range(args.keys)]
        print(f"one completion of {args.tokens:,} tokens ({len(completion.text):,} characters shown, "
              f"{len(completion.query('.paragraph'))} paragraphs) in {seconds:.1f} s = "
              f"{args.tokens / seconds:,.0f} tokens/s into the pane")
        print(f"key-press-to-screen during the stream: {latency_summary(during)}")
        print(f"key-press-to-screen at the end:        {latency_summary(after_stream)}  (target p95 < 100 ms)")
        print(f"RSS before the stream {before:.1f} MiB, after {rss_mib():.1f} MiB")
    return 0
