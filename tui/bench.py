"""`python -m minigpt.bench tui`: what the app costs training, and how fast it answers.

Three figures, measured in one run:

* training tokens/s of the same preset and steps: headless, a bare loop over
  Trainer.run() in the main thread (as minigpt-train runs it) and in a
  thread (as the app runs it: PyTorch's speed differs between the two), and
  inside the app (headless Textual: everything but the write to the
  terminal); the headless runs come before and after the app, so that a
  change in the machine's load shows up;
* key-press-to-screen latency while the app trains: the time from a key
  event reaching the app to the first screen update that shows its effect
  (a character typed into the prompt);
* first paint: seconds from starting `minigpt-tui` in a pseudo-terminal to its
  first screen, interpreter start-up included.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch
from textual import events
from textual.widgets import Input

from minigpt import config as cfg
from minigpt.corpus import Corpus, choose_corpus
from minigpt.trainer import StepEvent, Trainer
from tui.app import MiniGPTApp
from tui.messages import TrainingProgress
from tui.options import Options

FIRST_SCREEN_MARKER = b"loss by step"  # the chart's title, in the first frame


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", choices=list(cfg.PRESETS))
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per run")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--data", type=Path, help="corpus (default: data/input.txt, else the built-in one)")
    parser.add_argument("--size", default="120x40", help="terminal size of the headless app, WIDTHxHEIGHT")
    parser.add_argument("--key-interval", type=float, default=0.2, help="seconds between two timed key presses")
    parser.add_argument("--threads", type=int, help="torch threads for every run (default: torch's choice)")
    parser.add_argument("--no-first-paint", action="store_true", help="skip the first-paint measurement")


def bench_tui(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = replace(cfg.preset(args.preset), max_iters=args.warmup_steps + args.steps,
                     eval_interval=10_000_000)  # no evaluation inside the timed steps
    corpus = choose_corpus(args.data)
    tokens_per_step = config.batch_size * config.block_size
    print(f"preset {args.preset}: {args.steps} timed steps after {args.warmup_steps}, "
          f"{tokens_per_step} tokens/step, corpus {corpus.name}, {torch.get_num_threads()} torch threads")

    main_thread, worker_thread = [], []
    for runs in (main_thread, worker_thread):
        runs.append(headless_tokens_per_sec(config, corpus, args.warmup_steps, runs is worker_thread))
    print(f"headless, main thread:   {main_thread[0]:9,.0f} tokens/s")
    print(f"headless, worker thread: {worker_thread[0]:9,.0f} tokens/s")
    in_app, latencies = asyncio.run(app_run(config, args))
    print(f"inside the app:          {in_app:9,.0f} tokens/s")
    for runs in (worker_thread, main_thread):
        runs.append(headless_tokens_per_sec(config, corpus, args.warmup_steps, runs is worker_thread))
    print(f"headless, worker thread: {worker_thread[1]:9,.0f} tokens/s")
    print(f"headless, main thread:   {main_thread[1]:9,.0f} tokens/s")
    headless = main_thread + worker_thread
    print(f"app / headless (mean of the four runs, {min(headless):,.0f} to {max(headless):,.0f}): "
          f"{in_app / statistics.fmean(headless):.1%}  (target >= 90%)")
    print(f"app / headless in a thread: {in_app / statistics.fmean(worker_thread):.1%}, "
          f"in the main thread: {in_app / statistics.fmean(main_thread):.1%}")

    ms = sorted(1000 * s for s in latencies)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"key-press-to-screen while training: median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
          f"max {ms[-1]:.1f} ms over {len(ms)} keys  (target p95 < 100 ms)")
    if not args.no_first_paint:
        print(f"first paint of minigpt-tui: {first_paint_seconds():.2f} s  (target < 1 s)")
    return 0


def headless_tokens_per_sec(config: cfg.TrainConfig, corpus: Corpus, warmup_steps: int,
                            in_thread: bool = False) -> float:
    """Tokens/s of a bare loop over the trainer's events, timed after the warm-up steps."""
    if in_thread:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(headless_tokens_per_sec, config, corpus, warmup_steps).result()
    trainer = Trainer(config, corpus)
    started = None
    for event in trainer.run():
        if isinstance(event, StepEvent) and event.step == warmup_steps:
            started = time.perf_counter()
        if isinstance(event, StepEvent) and event.step == config.max_iters:
            seconds = time.perf_counter() - started
            return (config.max_iters - warmup_steps) * config.batch_size * config.block_size / seconds
    raise RuntimeError("training ended early")


class TimedApp(MiniGPTApp):
    """The app, noting when a screen update first shows the prompt holding `expected`."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.expected: str | None = None
        self.shown = asyncio.Event()
        self.shown_at = 0.0

    def _display(self, screen, renderable) -> None:  # Textual's hook for a finished screen update
        if renderable is not None and self.expected is not None:
            if self.query_one("#prompt", Input).value == self.expected:
                self.shown_at, self.expected = time.perf_counter(), None
                self.shown.set()
        super()._display(screen, renderable)


async def app_run(config: cfg.TrainConfig, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Train inside the headless app while typing into its prompt; returns
    tokens/s over the timed steps and the latency of every key."""
    width, height = (int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MINIGPT_SETTINGS"] = str(Path(folder, "minigpt.toml"))  # never the user's file
        app = TimedApp(Options(config=config, data=args.data, checkpoint=Path(folder, "model.pt")))
        progress: list[tuple[float, int]] = []

        def note(message) -> None:
            if isinstance(message, TrainingProgress):
                progress.append((time.perf_counter(), message.last.step))

        async with app.run_test(size=(width, height), message_hook=note) as pilot:
            while app.run_state != "idle":
                await asyncio.sleep(0.05)
            await pilot.press("t", "slash")  # train, then type into the prompt
            latencies = []
            while not progress or progress[-1][1] < config.max_iters:
                if progress and progress[-1][1] >= args.warmup_steps:
                    latencies.append(await type_a_key(app, "abcdefghij"[len(latencies) % 10]))
                await asyncio.sleep(args.key_interval)
        start = next((t, s) for t, s in progress if s >= args.warmup_steps)
        end = progress[-1]
        tokens = (end[1] - start[1]) * config.batch_size * config.block_size
        return tokens / (end[0] - start[0]), latencies


async def type_a_key(app: TimedApp, character: str) -> float:
    """Send one key as the terminal driver would; seconds until a screen update shows it."""
    prompt = app.query_one("#prompt", Input)
    if len(prompt.value) >= 40:
        prompt.value = ""
        await asyncio.sleep(0.05)
    app.shown.clear()
    app.expected = prompt.value + character
    sent = time.perf_counter()
    app.post_message(events.Key(character, character))
    await app.shown.wait()
    return app.shown_at - sent


def first_paint_seconds(timeout: float = 20.0) -> float:
    """Start minigpt-tui in a 120x40 pseudo-terminal and time its first screen."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.set_blocking(controller, False)
    script = shutil.which("minigpt-tui", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "tui.app"]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MINIGPT_SETTINGS": str(Path(folder, "minigpt.toml"))}
        started = time.perf_counter()
        process = subprocess.Popen([*command, "--checkpoint", str(Path(folder, "model.pt"))],
                                   stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=folder)
        os.close(terminal)
        output = b""
        try:
            while FIRST_SCREEN_MARKER not in output:
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"no first screen within {timeout} s")
                select.select([controller], [], [], 0.01)
                try:
                    output += os.read(controller, 65536)
                except BlockingIOError:
                    pass
            return time.perf_counter() - started
        finally:
            process.kill()  # not terminate(): a stopped process would never act on SIGTERM, and wait() would hang
            process.wait(timeout=10)
            os.close(controller)
