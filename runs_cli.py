"""minigpt-runs: the training runs in a folder, as a table, and their curves overlaid.

    minigpt-runs                              # the runs in checkpoints/
    minigpt-runs runs/ --plot small big       # their validation curves, overlaid in the terminal
    minigpt-runs --plot small big --x tokens --y bpc

Each run is a metrics log (NAME.jsonl, beside NAME.pt) that minigpt-train and
minigpt-tui keep; see minigpt.plumbing.runlog.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_CHECKPOINT
from minigpt.plumbing.runs import Run, XAxis, YAxis, load_runs
from minigpt.plumbing.terminal import format_seconds

X_LABELS = {"step": "step", "tokens": "training tokens seen", "time": "time the run used (s)"}
Y_LABELS = {"loss": "val loss (nats per token)", "bpc": "val bits per character"}
PLOT_SIZE = (100, 25)  # characters, when stdout is not a terminal
MARKERS = "*o+x#@"  # one a run, when the plot has no colours


class RunsError(MiniGPTError, ValueError):
    """A folder without runs, or a run name that is not there."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt-runs", description="List training runs and overlay their validation curves.")
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_CHECKPOINT.parent,
                        help="folder holding the runs' metrics logs (*.jsonl), searched with its subfolders "
                             "(default: %(default)s)")
    parser.add_argument("--plot", nargs="+", metavar="NAME", help="draw these runs' validation curves, overlaid")
    parser.add_argument("--x", choices=["step", "tokens", "time"], default="step",
                        help="the plot's x-axis (default: %(default)s)")
    parser.add_argument("--y", choices=["loss", "bpc"], default="loss",
                        help="the plot's y-axis: loss (nats per token) or bits per character (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return show_runs(args)
    except MiniGPTError as e:
        print(f"minigpt-runs: error: {e}", file=sys.stderr)
        return 2


def show_runs(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise RunsError(f"{args.folder}: no such folder; pass the folder that holds the runs' .jsonl logs")
    runs, warnings = load_runs(args.folder)
    for warning in warnings:
        print(f"minigpt-runs: warning: {warning}", file=sys.stderr)
    if not runs:
        raise RunsError(f"{args.folder}: no runs found (a run's metrics log is NAME.jsonl, written by "
                        "minigpt-train and minigpt-tui)")
    chosen = pick_runs(runs, args.plot) if args.plot else []
    print(runs_table(runs))
    if chosen:
        print(plot_runs(chosen, args.x, args.y, colour=sys.stdout.isatty()))
    return 0


def runs_table(runs: list[Run]) -> str:
    """The table, as text: one row a run."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    # final: the whole validation split, scored once a run reaches its end; best: the lowest evaluation on the way
    for column in ("run", "parameters", "shape", "tokenizer", "steps", "time", "final val loss", "final bits/char",
                   "best val loss", "best bits/char", "date"):
        table.add_column(column, justify="left" if column in ("run", "shape", "tokenizer", "date") else "right")
    for run in runs:
        table.add_row(run.name, f"{run.parameters:,}" if run.parameters else "?", run.shape, run.tokenizer,
                      f"{run.steps:,}", format_seconds(run.elapsed) if run.elapsed is not None else "?",
                      _figure(run.final_val_loss), _figure(run.final_val_bpc),
                      _figure(run.best_val_loss), _figure(run.best_val_bpc), run.date)
    console = Console(width=200, record=True, file=io.StringIO())  # recorded, then returned as plain text
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _figure(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def pick_runs(runs: list[Run], names: list[str]) -> list[Run]:
    by_name = {run.name: run for run in runs}
    if unknown := [name for name in names if name not in by_name]:
        raise RunsError(f"no run named {', '.join(unknown)}; the runs are: {', '.join(by_name)}")
    return [by_name[name] for name in names]


def plot_runs(runs: list[Run], x: XAxis, y: YAxis, colour: bool) -> str:
    """The runs' validation curves, overlaid in one plot, as text. Without
    colour (a file, a pipe) each run has its own marker instead."""
    import shutil

    import plotext as plt

    plt.clear_figure()
    width, height = shutil.get_terminal_size(PLOT_SIZE) if colour else PLOT_SIZE
    plt.plotsize(width, min(height, PLOT_SIZE[1]))
    drawn: tuple[float, ...] = ()  # every x drawn
    for number, run in enumerate(runs):
        points = run.curve(x, y)
        if not points:
            print(f"minigpt-runs: warning: {run.name} has no evaluations to draw by {x}", file=sys.stderr)
            continue
        xs, ys = zip(*points, strict=True)
        plt.plot(xs, ys, marker="braille" if colour else MARKERS[number % len(MARKERS)], label=run.label)
        drawn += xs
    if drawn:
        ticks = round_ticks(min(drawn), max(drawn))
        plt.xticks(ticks, [tick_label(tick) for tick in ticks])
    plt.title(f"validation: {Y_LABELS[y]} by {X_LABELS[x]}")
    plt.xlabel(X_LABELS[x])
    chart = plt.build()
    return chart if colour else plt.uncolorize(chart)


def round_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """At least about count ticks at round numbers (1, 2 or 5 times a power of ten) from
    low to high, where plotext's own split the range evenly (100.0 363.2 626.5)."""
    if high <= low:
        return [low]
    rough = (high - low) / count
    power = 10 ** math.floor(math.log10(rough))
    step = max(multiple * power for multiple in (1, 2, 5) if multiple * power <= rough)
    return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]


def tick_label(value: float) -> str:
    """500, 1.5k, 2M: short, for an axis of steps, tokens or seconds."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


if __name__ == "__main__":
    sys.exit(main())
