"""minigpt-train: train a MiniGPT model from the command line.

    minigpt-train                          # default preset, data/input.txt or the built-in corpus
    minigpt-train --preset quick --data my.txt
    minigpt-train --config run.toml --set lr=1e-3 --max-iters 5000
    torchrun --standalone --nproc_per_node=2 -m train_cli --grad-accum 2   # one model, two processes (DDP)

Training resumes from the checkpoint at --out when one exists (the original
design's behaviour); --from-scratch starts over, --resume insists on one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from minigpt.plumbing import config as cfg
from minigpt.plumbing.driver import Driver, Watcher
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_DATA
from minigpt.plumbing.session import add_run_arguments, start_of
from minigpt.plumbing.terminal import format_seconds, printable

if TYPE_CHECKING:
    from rich.progress import Progress

PROGRAM_START = time.monotonic()  # a time budget counts the program's start-up too


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigpt-train", description="Train a GPT on a text file.")
    run = add_run_arguments(parser)
    run.add_argument("--download", choices=["shakespeare"],
                     help="fetch Tiny Shakespeare into the --data path (default: data/input.txt) first")
    run.add_argument("--log", type=Path, default=None, metavar="PATH",
                     help="JSON-lines metrics log (default: beside --out)")
    run.add_argument("--no-sample", action="store_true", help="do not print a sample at each evaluation")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    program = "minigpt-train"
    try:
        world = None
        if "WORLD_SIZE" in os.environ:  # under torchrun; only then is PyTorch imported this early
            from minigpt.plumbing.distributed import from_environment

            world = from_environment()
            if world and not world.is_main:
                program += f" (rank {world.rank})"  # each rank says what stopped it
        return train(args, world)
    except MiniGPTError as e:  # every expected failure is one clear line
        print(f"{program}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C before training started: nothing to save
        print("minigpt-train: interrupted before training started; nothing was written", file=sys.stderr)
        return 130


def train(args: argparse.Namespace, world=None) -> int:
    """world: this process's place in a torchrun run, or None outside torchrun."""
    config, explicit_keys = cfg.from_arguments(args)
    if world is None:
        return train_one(args, config, explicit_keys, world)
    from minigpt.plumbing.distributed import join, leave

    finished_cleanly = False
    try:
        status = train_one(args, config, explicit_keys, join(world, config.device))
        finished_cleanly = True
        return status
    finally:
        leave(finished_cleanly)


def train_one(args: argparse.Namespace, config, explicit_keys, world) -> int:
    """Train as the only process, or as one rank of a torchrun run: rank 0 alone shows and logs."""

    from rich.console import Console

    from minigpt.plumbing.checkpoint import CheckpointError
    from minigpt.plumbing.corpus import download_shakespeare
    from minigpt.plumbing.session import open_session

    console = Console(stderr=True, quiet=bool(world and not world.is_main))
    if args.download:
        target = args.data or DEFAULT_DATA
        if target.exists():
            console.print(f"{target} already exists; not downloading over it")
        else:
            console.print(f"downloading Tiny Shakespeare to {target} ...")
            download_shakespeare(target)
        args.data = target
    with console.status("starting…") as status:  # the corpus, a checkpoint, the tokenizer's merges, the shape
        session = open_session(config, explicit_keys, args.data, args.out, start_of(args), progress=status.update,
                               world=world, retime=args.retime)
    if session.shape_choice:
        console.print(session.shape_choice, markup=False, soft_wrap=True)  # one line, also in a log
    for line in session.summary():
        console.print(line, markup=False)
    for note in session.notes:
        console.print(f"note: {note}", markup=False)
    if session.finished:
        return 0
    trainer = session.trainer
    outcome = run_with_progress(console, session, args.log, keep_log=not world or world.is_main,  # rank 0 alone
                                show_samples=not args.no_sample)
    if outcome.save_error:
        raise CheckpointError(f"{outcome.save_error}; the training since the last good save is lost, and any "
                              "earlier checkpoint there is intact; free some space or pass another --out, then run "
                              "again")
    if outcome.stopped_by or trainer.stop_requested:  # by a signal here, or (under torchrun) on another rank
        console.print(f"stopped at step {trainer.step}; checkpoint saved to {args.out}")
        return 128 + (outcome.stopped_by or signal.SIGTERM)  # the shell's convention: 130 for Ctrl+C, 143 for SIGTERM
    final = trainer.final_score  # the whole validation split, scored at the run's end
    scored = f"final val loss {final.loss:.4f} ({final.bpc:.3f} bits/char, the whole validation split), " \
        if final else ""
    console.print(f"done: step {trainer.step}, {scored}best val loss {trainer.best_val_loss:.4f}, saved to {args.out}",
                  markup=False, soft_wrap=True)  # one line, also in a log
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class RunOutcome:
    stopped_by: int = 0  # the signal (SIGINT: Ctrl+C, SIGTERM: kill) that stopped the run, if one did
    save_error: str | None = None  # why the latest save failed, if it did


def run_with_progress(console, session, log: Path | None, keep_log: bool, show_samples: bool) -> RunOutcome:
    """Drive the session's trainer with a progress bar (ProgressBar), keeping its metrics log
    at log (by default beside the checkpoint) if keep_log.

    The first Ctrl+C (or SIGTERM, as `kill` and service managers send) asks the
    trainer to stop after its current step and save; further ones are ignored
    until the process exits, so the save they might interrupt completes."""
    from rich.progress import BarColumn, Progress, TextColumn

    trainer, outcome = session.trainer, RunOutcome()

    def on_stop_signal(signum, frame):
        # Both ignored from now until the process ends, interpreter shutdown included.
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        outcome.stopped_by = signum
        trainer.request_stop()
        console.print(f"{signal.Signals(signum).name}: stopping after this step and saving "
                      "(Ctrl+C again does not interrupt the save) ...")

    fields = ("{task.fields[where]}  loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[speed]}  "
              "{task.fields[left]}")
    previous = {stop_signal: signal.signal(stop_signal, on_stop_signal) for stop_signal in STOP_SIGNALS}
    try:
        with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn(fields), console=console) as progress:
            bar = ProgressBar(progress, trainer, outcome, show_samples)
            Driver(session, bar, log, keep_log).run(started=PROGRAM_START)
    finally:
        if not (outcome.stopped_by or trainer.stop_requested):  # stopping (maybe by another rank): let it end
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)
    return outcome


class ProgressBar(Watcher):
    """minigpt-train's view of a run: a progress bar, a line (and a sample) at each evaluation, warnings."""

    def __init__(self, progress: Progress, trainer, outcome: RunOutcome, show_samples: bool) -> None:
        self.progress, self.console, self.trainer = progress, progress.console, trainer
        self.outcome, self.show_samples = outcome, show_samples
        self.task = progress.add_task("train", total=1.0, where=where(trainer, trainer.step), loss="-", val="-",
                                      speed="-", left="")

    def on_step(self, event) -> None:
        left = "left" if self.trainer.config.time_budget else "ETA"
        self.progress.update(self.task, completed=event.progress, where=where(self.trainer, event.step),
                             loss=f"{event.loss:.4f}", speed=f"{event.tokens_per_sec:,.0f} tok/s",
                             left=f"{left} {format_seconds(event.eta)}")

    def on_eval(self, event) -> None:
        self.progress.update(self.task, val=f"{event.val_loss:.4f}")
        self.console.print(f"step {event.step}: train {event.train_loss:.4f}  val {event.val_loss:.4f}"
                           f" ({event.val_bpc:.3f} bits/char)")
        if self.show_samples:
            self.console.print(printable(event.sample), style="dim", highlight=False, markup=False)

    def on_saved(self, event) -> None:
        self.outcome.save_error = None

    def on_save_failed(self, event) -> None:
        from rich.markup import escape

        self.outcome.save_error = event.error
        self.console.print(f"[red]warning:[/] {escape(event.error)}; the previous checkpoint is intact and training "
                           "goes on")

    def on_log_failed(self, message: str) -> None:
        self.console.print(f"warning: {message}", markup=False)

    def on_speed_corrected(self, event) -> None:
        self.console.print(f"note: {event.description}", markup=False, soft_wrap=True)


def where(trainer, step: int) -> str:
    """How far the run is: step of max_iters, or time used of the budget."""
    budget = trainer.config.time_budget
    if budget:
        return f"{format_seconds(trainer.time_spent)}/{format_seconds(budget)} step {step:,}"
    return f"{step:,}/{trainer.config.max_iters:,}"


if __name__ == "__main__":
    sys.exit(main())
