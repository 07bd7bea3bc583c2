"""`python -m bench completions` (from the repository root): a long completions
file against minigpt-tui's start.

A completions file of --entries completions (500 characters of text each,
as the default max_new_tokens makes them) is written to a temporary project
folder, then three figures are measured:

* loading its newest EARLIER_SHOWN with minigpt.plumbing.completions.load_recent
  (the app's read, from the end of the file), and reading all of it (the
  export's read), the median of --repeats;
* in the app (headless Textual), seconds from start to those completions
  shown in the list;
* the first paint of minigpt-tui in a pseudo-terminal, with the file and
  without it: the file is read after the first paint, so the two should match.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.app import first_paint_seconds
from bench.interrupt import run_async
from bench.timing import median_seconds
from minigpt.plumbing.completions import completions_path, load_recent, new_completion
from minigpt.plumbing.settings import SamplingSettings
from tui.app import MiniGPTApp
from tui.options import parse_options
from tui.views.completions import EARLIER_SHOWN

TEXT_CHARS = 500
EVERY = 10**9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entries", type=int, default=10_000, help="completions in the file")
    parser.add_argument("--repeats", type=int, default=5, help="times each figure is measured (the median is shown)")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder, "model.pt")
        file = completions_path(checkpoint)
        write_file(file, args.entries)
        size = file.stat().st_size / 1e6
        print(f"completions file: {args.entries:,} entries, {size:.1f} MB")
        newest = median_seconds(lambda: load_recent(file, EARLIER_SHOWN), args.repeats)
        print(f"load the newest {EARLIER_SHOWN}: {1000 * newest:.1f} ms  (target < 1 s)")
        every = median_seconds(lambda: load_recent(file, EVERY), args.repeats)
        print(f"read all {args.entries:,} (export): {1000 * every:.0f} ms")
        shown = run_async(seconds_until_shown(checkpoint))
        print(f"in the app, from start to the newest {EARLIER_SHOWN} shown: {shown:.2f} s  (headless Textual)")

    without = statistics.median(first_paint_seconds() for _ in range(args.repeats))
    with_file = statistics.median(first_paint_seconds(prepare=lambda f: write_file(completions_path(f / "model.pt"),
                                                                                    args.entries))
                                  for _ in range(args.repeats))
    print(f"first paint of minigpt-tui: {without:.2f} s without the file, {with_file:.2f} s with it")
    return 0


def write_file(path: Path, entries: int) -> None:
    """A completions file of entries plausible completions."""
    rng = random.Random(0)
    words = "the of and to a in that is was he for it with as his on be at by i".split()
    with path.open("w", encoding="utf-8") as f:
        for i in range(entries):
            text = " ".join(rng.choice(words) for _ in range(TEXT_CHARS // 3))[:TEXT_CHARS]
            completion = new_completion(f"prompt {i}\n", text, i, SamplingSettings(seed=i), "checkpoints/model.pt")
            f.write(json.dumps(completion.to_record(), ensure_ascii=False) + "\n")


async def seconds_until_shown(checkpoint: Path) -> float:
    """Start the app (tiny preset) on checkpoint's folder; seconds until its newest completions are listed."""
    previous = Path.cwd()
    os.chdir(checkpoint.parent)  # the prompt history lives in the project folder
    try:
        app = MiniGPTApp(parse_options(["--preset", "tiny", "--checkpoint", str(checkpoint),
                                        "--settings", str(checkpoint.parent / "minigpt.toml")]))
        started = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            while len(app.query(".-earlier")) < EARLIER_SHOWN:
                await pilot.pause(0.005)
            return time.perf_counter() - started
    finally:
        os.chdir(previous)
