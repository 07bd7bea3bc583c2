"""minigpt-lab: experiments that answer a question with measurements on this machine.

    minigpt-lab list                            # the experiments, and those run here already
    minigpt-lab run attention-and-mlp           # each variant for 1 minute, on data/input.txt or the built-in text
    minigpt-lab run width --time 30s --data my.txt
    minigpt-lab run my-experiment.toml          # a learner's own (see minigpt.plumbing.experiments)
    minigpt-lab show attention-and-mlp          # the table, the curves overlaid, a sample of each, the conclusion
    minigpt-lab report attention-and-mlp > results.md

Each variant is a normal run in checkpoints/lab/NAME/ (minigpt-runs reads
them). Ctrl+C saves the variant in progress; `run` again resumes the
experiment where it stopped.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from minigpt.plumbing import config as cfg
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.experiments import BUILTINS, find_experiment
from minigpt.plumbing.lab_record import RECORD, Budget, LabError, Record, VariantResult, load_record, read_results
from minigpt.plumbing.paths import DEFAULT_LAB
from minigpt.plumbing.terminal import format_seconds, printable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console
    from rich.status import Status

    from minigpt.plumbing.lab import LabEvent, LabRun
    from minigpt.trainer import Event

MIN_SECONDS = 10.0  # a variant's start-up counts against its time: less would leave it little to train
SAMPLE_LINES = 4  # of each variant's sample, in show and report
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigpt-lab", description="Experiments: variants of a run trained one "
                                     "after another, each for the same time, and what their results say.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the experiments, built in and run here")
    run = commands.add_parser("run", help="run (or resume) an experiment",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("experiment", metavar="NAME|FILE", help="a built-in experiment, or an experiment file (.toml)")
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--time", default="1m", metavar="DURATION",
                        help="wall time of each variant, start-up included: 30s, 1m, 2.5m...")
    budget.add_argument("--steps", type=int, metavar="N", help="a number of steps for each variant instead of a time "
                                                               "(repeatable to the bit, but not equal in time)")
    run.add_argument("--data", type=Path, help="UTF-8 text to train on (default: data/input.txt, else the built-in "
                                               "corpus)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a hyperparameter of every variant (e.g. dtype=float32)")
    run.add_argument("--fresh", action="store_true", help="train every variant from scratch, replacing an earlier run")
    for name, help in (("show", "the results: table, curves, samples, conclusion"),
                       ("report", "the results as Markdown")):
        command = commands.add_parser(name, help=help)
        command.add_argument("experiment", metavar="NAME|FILE")
    for command in commands.choices.values():
        command.add_argument("--folder", type=Path, default=DEFAULT_LAB, help="where the Lab keeps its experiments")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return list_experiments(args.folder)
        if args.command == "run":
            return run(args)
        return show(args.folder, args.experiment, markdown=args.command == "report")
    except MiniGPTError as e:
        print(f"minigpt-lab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started: nothing to save
        print("minigpt-lab: interrupted before training started", file=sys.stderr)
        return 130


def list_experiments(folder: Path) -> int:
    print("Built in (minigpt-lab run NAME):")
    for experiment in BUILTINS.values():
        missing = experiment.missing_keys()
        needs = f"  [needs {', '.join(missing)}: not in this version yet]" if missing else ""
        print(f"  {experiment.name:<18} {experiment.question}{needs}")
    paths = sorted(folder.glob(f"*/{RECORD}"))
    if paths:
        print(f"\nRun here ({folder}; minigpt-lab show NAME):")
    for path in paths:
        try:
            record = load_record(path.parent)
        except LabError as e:
            print(f"minigpt-lab: warning: {e}", file=sys.stderr)
            continue
        assert record is not None
        print(f"  {path.parent.name:<18} {len(record.done)}/{len(record.experiment.variants)} variants done, "
              f"{record.budget}, on {record.corpus}")
    return 0


def parse_budget(args: argparse.Namespace) -> Budget:
    if args.steps is not None:
        if args.steps < 1:
            raise LabError(f"--steps {args.steps}: expected a number of steps, 1 or more")
        return Budget(steps=args.steps)
    try:
        seconds = cfg.parse_duration(args.time)
    except ValueError:
        raise LabError(f"--time {args.time!r}: expected a duration such as 30s, 1m or 2.5m") from None
    if seconds < MIN_SECONDS:
        raise LabError(f"--time {args.time}: each variant needs at least {MIN_SECONDS:g}s, its start-up included")
    return Budget(seconds=seconds)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from minigpt.plumbing.lab import LabRun

    experiment = find_experiment(args.experiment)
    budget = parse_budget(args)
    overrides = dict(cfg.parse_assignment(text) for text in args.set)
    console = Console(stderr=True)
    with console.status("reading the text…") as status:
        lab = LabRun(experiment, budget, args.folder, args.data, overrides, args.fresh, progress=status.update)
        console.print(f"[bold]{experiment.name}[/]: {experiment.question}", highlight=False)
        console.print(f"{len(experiment.variants)} variants, {budget}, on {lab.corpus.name} "
                      f"({lab.corpus.length:,} characters); in {lab.folder}", highlight=False)
        stopped_by = _present(console, lab, lab.run(), status)
    if stopped_by is not None:
        console.print(f"stopped; each variant finished so far is kept, the one in progress is saved: "
                      f"`minigpt-lab run {args.experiment}` resumes it", highlight=False)
        return 128 + (stopped_by or signal.SIGINT)
    print(summary(args.folder / experiment.name, markdown=False, curves=False))
    return 0


def _present(console: Console, lab: LabRun, events: Iterator[LabEvent], status: Status) -> int | None:
    """Show the events with a progress bar per variant; the stop signal if the run was stopped, else None.
    The first Ctrl+C (or SIGTERM) saves the variant in progress and stops; further ones wait for the save."""
    from rich.progress import BarColumn, Progress, TextColumn

    from minigpt.plumbing.lab import ExperimentStopped, LabNote, VariantDone, VariantStarted, VariantTraining

    stopped_by: list[int] = []

    def on_stop_signal(signum, frame):
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        stopped_by.append(signum)
        lab.request_stop()
        console.print(f"{signal.Signals(signum).name}: stopping after this step and saving …")

    previous = {stop_signal: signal.signal(stop_signal, on_stop_signal) for stop_signal in STOP_SIGNALS}
    columns = [TextColumn("{task.description}"), BarColumn(bar_width=24), TextColumn("{task.fields[figures]}")]
    progress = Progress(*columns, console=console)
    tasks: dict[int, int] = {}
    try:
        with progress:
            for event in events:
                status.update("")
                if isinstance(event, VariantStarted):
                    size = len(lab.experiment.variants)
                    if event.resumed and lab.trainer:
                        progress.console.print(f"{event.variant.name}: resumed at step {lab.trainer.step:,}, "
                                               f"{format_seconds(lab.trainer.time_spent)} used", highlight=False)
                    tasks[event.index] = progress.add_task(f"[{event.index + 1}/{size}] {event.variant.name:<14}",
                                                           total=1.0, figures="")
                elif isinstance(event, VariantTraining):
                    progress.update(tasks[event.index], **_figures(lab, event.event))
                elif isinstance(event, VariantDone):
                    verdict = f"{event.result.val_bpc:.3f} bits/char" if event.result else "no evaluation in its log"
                    if event.index in tasks:
                        progress.update(tasks[event.index], completed=1.0, figures=f"done: {verdict}")
                    else:
                        progress.console.print(f"{lab.experiment.variants[event.index].name}: done earlier, {verdict}",
                                               highlight=False)
                elif isinstance(event, LabNote):
                    progress.console.print(f"note: {event.text}", markup=False, highlight=False)
                elif isinstance(event, ExperimentStopped):
                    return stopped_by[0] if stopped_by else 0
    finally:
        if not stopped_by:
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)
    return None


def _figures(lab: LabRun, event: Event) -> dict:
    """A trainer event as the fields of its variant's progress bar."""
    from minigpt.trainer import EvalEvent, SaveFailedEvent, StepEvent

    if isinstance(event, StepEvent):
        where = (f"{format_seconds(event.elapsed)}/{format_seconds(lab.budget.seconds)}" if lab.budget.seconds
                 else f"{event.step:,}/{lab.budget.steps:,}")
        return {"completed": event.progress, "figures": f"{where}  step {event.step:,}  loss {event.loss:.3f}  "
                                                        f"{event.tokens_per_sec:,.0f} tok/s"}
    if isinstance(event, EvalEvent):
        return {"figures": f"step {event.step:,}  val {event.val_loss:.3f} ({event.val_bpc:.3f} bits/char)"}
    if isinstance(event, SaveFailedEvent):
        return {"figures": f"[red]save failed:[/] {event.error}"}
    return {}


# --- show and report ------------------------------------------------------------------------------

COLUMNS = ("variant", "parameters", "tokens seen", "steps", "time", "val loss", "bits/char", "state")


def show(folder: Path, name_or_path: str, markdown: bool) -> int:
    name = find_experiment(name_or_path).name if name_or_path.endswith(".toml") else name_or_path
    print(summary(folder / name, markdown, curves=True))
    return 0


def summary(folder: Path, markdown: bool, curves: bool) -> str:
    """An experiment's results as text or Markdown: the table, the curves, a sample of each variant, the
    conclusion (or what is left to run)."""
    from minigpt.plumbing.conclusions import conclude

    record = load_record(folder)
    if record is None:
        raise LabError(f"{folder}: no results yet; run the experiment first (minigpt-lab run {folder.name})")
    experiment = record.experiment
    results, warnings = read_results(folder, experiment)
    for warning in warnings:
        print(f"minigpt-lab: warning: {warning}", file=sys.stderr)
    rows = [_row(record, variant.name, results.get(variant.name)) for variant in experiment.variants]
    parts = [f"# {experiment.name}: {experiment.question}" if markdown else f"{experiment.name}: {experiment.question}",
             f"{len(experiment.variants)} variants, {record.budget}, on {record.corpus}"
             + (f"; command: `minigpt-lab run {_command(record)}`" if markdown else ""),
             _markdown_table(rows) if markdown else _text_table(rows)]
    if curves and (runs := [result.run for result in results.values()]):
        from runs_cli import plot_runs

        chart = plot_runs(runs, "time" if record.budget.seconds else "step", "bpc", colour=False)
        parts.append(f"```text\n{chart}\n```" if markdown else chart)
    if curves:
        parts += [_sample(name, result, markdown) for name, result in results.items()]
    if len(record.done) == len(experiment.variants) and len(results) == len(experiment.variants):
        conclusion = conclude(experiment, {name: result.val_bpc for name, result in results.items()})
        parts.append(f"**Conclusion.** {conclusion}" if markdown else f"Conclusion: {conclusion}")
    else:
        parts.append(f"{len(record.done)} of {len(experiment.variants)} variants done: "
                     f"`minigpt-lab run {_command(record)}` runs the rest, then concludes.")
    return "\n\n".join(parts)


def _command(record: Record) -> str:
    name = record.experiment.name if record.experiment.source == "built-in" else record.experiment.source
    budget = f"--time {format_seconds(record.budget.seconds)}" if record.budget.seconds \
        else f"--steps {record.budget.steps}"
    return f"{name} {budget}" + (f" --data {record.data}" if record.data else "")


def _row(record: Record, name: str, result: VariantResult | None) -> tuple[str, ...]:
    state = "done" if name in record.done else "part-way" if name in record.started else "waiting"
    if result is None:
        return (name, *("-" * 6), state)
    return (name, f"{result.parameters:,}", f"{result.tokens:,}", f"{result.steps:,}", format_seconds(result.seconds),
            f"{result.val_loss:.4f}", f"{result.val_bpc:.4f}", state)


def _text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(COLUMNS, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width)
                       in enumerate(zip(row, widths, strict=True))).rstrip() for row in (COLUMNS, *rows)]
    return "\n".join(lines)


def _markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 2) + ["---"]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _sample(name: str, result: VariantResult, markdown: bool) -> str:
    lines = printable(result.sample, tab="    ").strip("\n").splitlines()[:SAMPLE_LINES]
    text = "\n".join(lines)
    if markdown:
        return f"Sample of **{name}** (step {result.steps:,}):\n\n```text\n{text}\n```"
    return f"Sample of {name} (step {result.steps:,}):\n" + "\n".join(f"  {line}" for line in lines)


if __name__ == "__main__":
    sys.exit(main())
