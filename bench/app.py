"""`python -m bench tui` (from the repository root): what minigpt-tui costs
training, and how fast it answers.

Three figures, measured in one run:

* training tokens/s of the same preset and steps: headless, a bare loop over
  Trainer.run() in the main thread (as minigpt-train runs it) and in a
  thread (as the app runs it), and inside the app (headless Textual:
  everything but the write to the terminal) while the user watches; the
  headless runs come before and after the app, so that a change in the
  machine's load shows up;
* key-press-to-screen latency while the app trains, after those steps: the
  time from a key event reaching the app to the first screen update that
  shows its effect (a character typed into the prompt), and the training
  tokens/s while the user types;
* first paint: seconds from starting `minigpt-tui` in a pseudo-terminal to its
  first screen, interpreter start-up included.

headless_app() and type_a_key() serve the soak and stream benchmarks too.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import inspect
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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path, PurePath

import torch
from textual import events
from textual.message import Message
from textual.pilot import Pilot

from bench.interrupt import claim_signals, received, run_async
from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import Corpus, choose_corpus
from minigpt.plumbing.errors import MiniGPTError
from minigpt.trainer import StepEvent, Trainer
from tui.app import MiniGPTApp
from tui.messages import TrainingProgress
from tui.options import Options
from tui.widgets.prompt import PromptInput

FIRST_SCREEN_MARKER = b"loss by step"  # the chart's title, in the first frame
APP_CHECK_INTERVAL = 0.1  # seconds between two checks that the app still runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", choices=list(cfg.PRESETS))
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per run")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--data", type=Path, help="corpus (default: data/input.txt, else the built-in one)")
    parser.add_argument("--size", default="120x40", help="terminal size of the headless app, WIDTHxHEIGHT")
    parser.add_argument("--typing-steps", type=int, default=100, help="steps trained in the app while keys are typed")
    parser.add_argument("--key-interval", type=float, default=0.2, help="seconds between two timed key presses")
    parser.add_argument("--threads", type=int, help="torch threads for every run (default: torch's choice)")
    parser.add_argument("--no-first-paint", action="store_true", help="skip the first-paint measurement")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(args)
    corpus = choose_corpus(args.data)
    tokens_per_step = config.batch_size * config.block_size
    print(f"preset {args.preset}: {args.steps} timed steps after {args.warmup_steps}, "
          f"{tokens_per_step} tokens/step, corpus {corpus.name}, {torch.get_num_threads()} torch threads")

    main_thread, worker_thread = [], []
    for runs in (main_thread, worker_thread):
        runs.append(headless_tokens_per_sec(config, corpus, args.warmup_steps, runs is worker_thread))
    print(f"headless, main thread:   {main_thread[0]:9,.0f} tokens/s")
    print(f"headless, worker thread: {worker_thread[0]:9,.0f} tokens/s")
    in_app, typing, latencies = run_async(app_run(config, args))
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
    print(f"inside the app while a key is typed every {args.key_interval:g} s: {typing:,.0f} tokens/s "
          f"({typing / statistics.fmean(headless):.1%} of headless)")

    print(f"key-press-to-screen while training: {latency_summary(latencies)}  (target p95 < 100 ms)")
    if not args.no_first_paint:
        print(f"first paint of minigpt-tui: {first_paint_seconds():.2f} s  (target < 1 s)")
    return 0


def run_config(args: argparse.Namespace) -> cfg.TrainConfig:
    """What every side of the comparison trains: the preset's shape, for its steps."""
    return fixed_shape(cfg.preset(args.preset), args.warmup_steps + args.steps)


def fixed_shape(config: cfg.TrainConfig, max_iters: int) -> cfg.TrainConfig:
    """config as a run of max_iters steps, without a time budget or evaluations. With a
    budget, the app would have the shape chooser pick a model for it (a far smaller one
    than the preset's at a short budget), and the benchmark would compare two models."""
    return replace(config, time_budget=0.0, max_iters=max_iters, eval_interval=10_000_000)


def headless_tokens_per_sec(config: cfg.TrainConfig, corpus: Corpus, warmup_steps: int,
                            in_thread: bool = False) -> float:
    """Tokens/s of a bare loop over the trainer's events, timed after the warm-up steps."""
    trainer = Trainer(config, corpus)
    if not in_thread:
        return _time_steps(trainer, warmup_steps)
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(_time_steps, trainer, warmup_steps).result()
        finally:  # interrupted: the thread ends after its step, rather than after all of them
            trainer.request_stop()


def _time_steps(trainer: Trainer, warmup_steps: int) -> float:
    config = trainer.config
    started = None
    for event in trainer.run():
        if isinstance(event, StepEvent) and event.step == warmup_steps:
            started = time.perf_counter()
        if isinstance(event, StepEvent) and event.step == config.max_iters:
            seconds = time.perf_counter() - started
            return (config.max_iters - warmup_steps) * config.batch_size * config.block_size / seconds
    raise RuntimeError("training ended early")


def _beside_the_app(css_path: str | PurePath | list[str | PurePath] | None) -> list[Path]:
    """The app's CSS files as absolute paths: Textual looks for relative ones beside the
    file that defines the app's class, which for a subclass defined here is bench/."""
    paths = [] if css_path is None else [css_path] if isinstance(css_path, str | PurePath) else css_path
    return [Path(inspect.getfile(MiniGPTApp)).parent / path for path in paths]


class TimedApp(MiniGPTApp):
    """The app, noting when a screen update first shows the prompt holding `expected`."""

    CSS_PATH = _beside_the_app(MiniGPTApp.CSS_PATH)

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.expected: str | None = None
        self.shown = asyncio.Event()
        self.shown_at = 0.0

    def _display(self, screen, renderable) -> None:  # Textual's hook for a finished screen update
        if renderable is not None and self.expected is not None:
            if self.query_one("#prompt", PromptInput).text == self.expected:
                self.shown_at, self.expected = time.perf_counter(), None
                self.shown.set()
        super()._display(screen, renderable)


@asynccontextmanager
async def headless_app(config: cfg.TrainConfig, args: argparse.Namespace,
                       message_hook: Callable[[Message], None] | None = None
                       ) -> AsyncIterator[tuple[TimedApp, Pilot]]:
    """The app on a fresh checkpoint and settings file in a temporary folder, loaded.

    However the benchmark ends (done, failed, or cancelled by SIGINT or
    SIGTERM), the app's work is ended before the app is shut down
    (leave_quietly), and its threads have finished before the folder goes.
    The app's own SIGTERM handler is overridden: it would quit the app and
    leave the benchmark waiting for it. Should the app end by itself, the
    benchmark fails rather than waits."""
    width, height = (int(n) for n in args.size.split("x"))
    loop = asyncio.get_running_loop()
    app_threads = ThreadPoolExecutor(thread_name_prefix="app")  # where the app's thread workers run
    loop.set_default_executor(app_threads)
    with tempfile.TemporaryDirectory() as folder:
        try:
            os.environ["MINIGPT_SETTINGS"] = str(Path(folder, "minigpt.toml"))  # never the user's file
            app = TimedApp(Options(config=config, data=args.data, checkpoint=Path(folder, "model.pt")))
            async with app.run_test(size=(width, height), message_hook=message_hook) as pilot:
                claim_signals()  # taken back from the app, which installed its SIGTERM handler on mount
                try:
                    async with _failing_if_the_app_ends(app):
                        while app.run_state == "loading":
                            await asyncio.sleep(0.05)
                        if app.session is None:
                            raise MiniGPTError(f"the app could not load: {app.load_message}")
                        yield app, pilot
                finally:
                    await leave_quietly(app)
        finally:
            app_threads.shutdown()  # the threads have been told to end: at most a training step and a save
            loop.set_default_executor(ThreadPoolExecutor())


async def leave_quietly(app: MiniGPTApp) -> None:
    """Cancel the completion, stop training (the trainer saves) and wait for every worker
    of the app, so that none of them reports to an app that is shutting down: its
    handlers then fail (no screen left, a widget without its app), and the failure
    would be raised in place of the benchmark's outcome."""
    if not app.is_running:
        return
    for worker in list(app.workers):
        if worker.group == "generate":  # its thread returns at the next token, posting nothing more
            worker.cancel()
    app.action_stop_training()
    while app.is_running and app.run_state in ("training", "paused", "stopping", "saving"):
        await asyncio.sleep(0.05)
    await asyncio.gather(*(worker.wait() for worker in list(app.workers)), return_exceptions=True)  # cancelled too


@asynccontextmanager
async def _failing_if_the_app_ends(app: MiniGPTApp) -> AsyncIterator[None]:
    """Cancel the benchmark (this task) if the app stops running inside, and raise MiniGPTError instead."""
    benchmark = asyncio.current_task()
    assert benchmark is not None
    ended = False

    async def watch() -> None:
        nonlocal ended
        while app.is_running:
            await asyncio.sleep(APP_CHECK_INTERVAL)
        ended = True
        benchmark.cancel()

    watcher = asyncio.create_task(watch())
    try:
        yield
    except asyncio.CancelledError:
        if ended and not received():
            benchmark.uncancel()
            raise MiniGPTError(f"the app ended during the benchmark (return code {app.return_code})") from None
        raise
    finally:
        watcher.cancel()


async def app_run(config: cfg.TrainConfig, args: argparse.Namespace) -> tuple[float, float, list[float]]:
    """Train inside the headless app: first the timed steps while the user
    watches, then --typing-steps more while keys are typed into the prompt.
    Returns tokens/s of each phase and the latency of every key."""
    config = replace(config, max_iters=config.max_iters + args.typing_steps)
    progress: list[tuple[float, int]] = []  # (when, step) of each progress message

    def note(message: Message) -> None:
        if isinstance(message, TrainingProgress):
            progress.append((time.perf_counter(), message.last.step))

    async with headless_app(config, args, note) as (app, pilot):
        await pilot.press("t")
        print(f"inside the app: training {config.max_iters:,} steps, keys typed after step "
              f"{args.warmup_steps + args.steps:,}...")
        typing_from = args.warmup_steps + args.steps
        while not progress or progress[-1][1] < typing_from:
            await asyncio.sleep(0.05)
        app.action_focus_prompt()
        await asyncio.sleep(0.05)
        latencies = []
        while progress[-1][1] < config.max_iters:
            latencies.append(await type_a_key(app, "abcdefghij"[len(latencies) % 10]))
            await asyncio.sleep(args.key_interval)
    watching = _tokens_per_sec(progress, args.warmup_steps, typing_from, config)
    typing = _tokens_per_sec(progress, typing_from, config.max_iters, config)
    return watching, typing, latencies


def _tokens_per_sec(progress: list[tuple[float, int]], first: int, last: int, config: cfg.TrainConfig) -> float:
    """Training speed between the progress messages at steps first and last (or just after)."""
    start = next((t, s) for t, s in progress if s >= first)
    end = next((t, s) for t, s in progress if s >= last)
    if end[1] == start[1]:
        raise MiniGPTError(f"steps {first:,} to {last:,} went by between two progress messages: time more steps")
    return (end[1] - start[1]) * config.batch_size * config.block_size / (end[0] - start[0])


def latency_summary(seconds: list[float]) -> str:
    if not seconds:
        return "no keys timed"
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} keys"


async def type_a_key(app: TimedApp, character: str) -> float:
    """Send one key as the terminal driver would; seconds until a screen update shows it."""
    prompt = app.query_one("#prompt", PromptInput)
    if len(prompt.text) >= 40:
        prompt.text = ""
        await asyncio.sleep(0.05)
    app.shown.clear()
    app.expected = prompt.text + character
    sent = time.perf_counter()
    app.post_message(events.Key(character, character))
    await app.shown.wait()
    return app.shown_at - sent


def first_paint_seconds(timeout: float = 20.0, prepare: Callable[[Path], object] | None = None) -> float:
    """Start minigpt-tui in a 120x40 pseudo-terminal and time its first screen; prepare(folder),
    if given, first puts files in the project folder (the checkpoint is folder/model.pt)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.set_blocking(controller, False)
    script = shutil.which("minigpt-tui", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "tui.app"]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MINIGPT_SETTINGS": str(Path(folder, "minigpt.toml"))}
        if prepare:
            prepare(Path(folder))
        started = time.perf_counter()
        process = subprocess.Popen([*command, "--checkpoint", str(Path(folder, "model.pt"))],
                                   stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=folder)
        try:
            os.close(terminal)
            output = b""
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
