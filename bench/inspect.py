"""`python -m bench inspect` (from the repository root): what the Inspect view costs.

Two figures:

* one update of each view at --block-size tokens (default 256), the median of
  --repeats: the library's computations (a snapshot of the weights, the
  model's forward pass on its explicit attention path with the logit lens
  after every sublayer, scoring a whole block of text, replaying a
  generation) and the render of each widget
  of the view in the headless app (its text built for the screen);
* training tokens/s inside the headless app with the Inspect view closed,
  then open (refreshing its snapshot as it does while training), then closed
  again; the ratio open / closed (target >= 0.9).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from textual.message import Message
from textual.pilot import Pilot

from bench.app import _tokens_per_sec, headless_app
from bench.interrupt import run_async
from bench.timing import median_seconds
from minigpt.inspect import REPLAY_TOKENS, replay, score, trace
from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import choose_corpus
from minigpt.plumbing.device import dtype_name
from minigpt.plumbing.settings import SamplingSettings
from minigpt.trainer import Trainer
from tui.messages import TrainingProgress
from tui.views.inspect import InspectView
from tui.widgets.attention_map import AttentionGrid, AttentionMap
from tui.widgets.logit_lens import LogitLens
from tui.widgets.probability_bars import ProbabilityBars
from tui.widgets.token_strip import TokenStrip

# Every step of the sampler's distribution at work: penalty, temperature, top-k and top-p.
SETTINGS = SamplingSettings(temperature=0.8, top_k=40, top_p=0.95, repetition_penalty=1.1, seed=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", choices=list(cfg.PRESETS), help="the model's shape")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter, e.g. dtype=float32")
    parser.add_argument("--block-size", type=int, default=256, help="tokens of context (and of the inspected text)")
    parser.add_argument("--repeats", type=int, default=10, help="timed updates of each view (the median is shown)")
    parser.add_argument("--steps", type=int, default=150, help="timed training steps in each phase of the app run")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--data", type=Path, help="corpus (default: data/input.txt, else the built-in one)")
    parser.add_argument("--size", default="120x40", help="terminal size of the headless app, WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    # A step run (no time budget): the app then trains the very shape the library figures are timed on,
    # where a budget would have the shape chooser pick another.
    config = replace(cfg.resolve(args.preset, assignments=args.set), block_size=args.block_size, time_budget=0.0,
                     eval_interval=10_000_000, max_iters=args.warmup_steps + 3 * args.steps)
    corpus = choose_corpus(args.data)
    trainer = Trainer(config, corpus)
    c = trainer.model_config
    print(f"preset {args.preset} {' '.join(args.set)}: d_model {c.d_model} x {c.n_layers} layers x {c.n_heads} heads, "
          f"block {c.block_size}, {dtype_name(trainer.dtype)}, "
          f"{trainer.tokenizer.kind} tokenizer ({trainer.tokenizer.vocab_size:,} tokens), "
          f"{torch.get_num_threads()} torch threads")
    library_updates(trainer, args.repeats)
    closed, opened, closed_again, refreshes, renders = run_async(app_run(config, args))
    for name, seconds in renders.items():
        print(f"render {name:<28} {1000 * seconds:7.1f} ms")
    print(f"training in the app, Inspect closed: {closed:9,.0f} tokens/s")
    print(f"training in the app, Inspect open:   {opened:9,.0f} tokens/s  ({refreshes} refreshes of its snapshot)")
    print(f"training in the app, Inspect closed: {closed_again:9,.0f} tokens/s")
    print(f"open / closed (mean of the two closed runs): {opened / statistics.fmean([closed, closed_again]):.1%}"
          "  (target >= 90%)")
    return 0


def library_updates(trainer: Trainer, repeats: int) -> None:
    """The library's part of one update, each at a whole block of text."""
    block = trainer.model_config.block_size
    text = trainer.tokenizer.decode(trainer.splits.val[:block].tolist())
    model = trainer.snapshot()
    figures = {
        "snapshot of the weights": lambda: trainer.snapshot(),
        f"attention + logit lens ({block} tokens)": lambda: trace(model, trainer.tokenizer.encode(text)),
        f"score a text of {block} tokens": lambda: score(model, trainer.tokenizer, "", text, SETTINGS),
        f"replay a generation ({min(REPLAY_TOKENS, block - block // 2)} tokens)":
            lambda: replay(model, trainer.tokenizer, text[: block // 2], SETTINGS),
    }
    for name, work in figures.items():
        print(f"library {name:<36} {1000 * median_seconds(work, repeats):7.1f} ms")
    refresh = median_seconds(lambda: score(trainer.snapshot(), trainer.tokenizer, "", text, SETTINGS), repeats)
    print(f"library one refresh (snapshot + score)       {1000 * refresh:7.1f} ms  (target < 100 ms)")


async def app_run(config: cfg.TrainConfig, args: argparse.Namespace
                  ) -> tuple[float, float, float, int, dict[str, float]]:
    """Train in the headless app: the Inspect view closed, open, closed. Returns the
    tokens/s of each phase, the view's refreshes while open, and render times."""
    progress: list[tuple[float, int]] = []

    def note(message: Message) -> None:
        if isinstance(message, TrainingProgress):
            progress.append((time.perf_counter(), message.last.step))

    async def reach(step: int) -> None:
        while not progress or progress[-1][1] < step:
            await asyncio.sleep(0.05)

    bounds = [args.warmup_steps + i * args.steps for i in range(4)]
    async with headless_app(config, args, note) as (app, pilot):
        view = app.query_one(InspectView)
        app.action_inspect()
        while view.inspected is None:
            await asyncio.sleep(0.05)
        renders = await render_times(view, pilot, args.repeats)
        app.action_show_view("train-view")
        await pilot.press("t")
        print(f"inside the app: training {bounds[3]:,} steps, the Inspect view open from step {bounds[1]:,} "
              f"to {bounds[2]:,}...")
        await reach(bounds[1])
        app.action_inspect()
        refreshes, last = 0, view.inspected
        while not progress or progress[-1][1] < bounds[2]:
            await asyncio.sleep(0.05)
            if view.inspected is not last:
                refreshes, last = refreshes + 1, view.inspected
        app.action_show_view("train-view")
        await reach(bounds[3])
    return (*(_tokens_per_sec(progress, bounds[i], bounds[i + 1], config) for i in range(3)), refreshes, renders)


async def render_times(view: InspectView, pilot: Pilot, repeats: int) -> dict[str, float]:
    """Median seconds to step (new data for every widget) and to build each widget's text."""
    view.action_step(1_000_000)  # the last step: the fullest attention map
    await pilot.pause()
    times = {"a step (data to every widget)": median_seconds(view._show, repeats)}
    for widget in (view.query_one("#inspect-text", TokenStrip), view.query_one(ProbabilityBars),
                   view.query_one(AttentionMap), view.query_one(LogitLens)):
        times[type(widget).__name__] = median_seconds(widget.render, repeats)
    view.head = view.session.trainer.model_config.n_heads + 1  # the grid of every layer x head
    await pilot.pause()  # laid out, now that it is displayed
    times["AttentionGrid"] = median_seconds(view.query_one(AttentionGrid).render, repeats)
    view.head = 0
    return times
