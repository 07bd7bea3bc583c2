"""minigpt-train: train a MiniGPT model from the command line.

    minigpt-train                          # default preset, data/input.txt or the built-in corpus
    minigpt-train --preset quick --data my.txt
    minigpt-train --config run.toml --set lr=1e-3 --max-iters 5000

Training resumes from the checkpoint at --out when one exists (the original
design's behaviour); --from-scratch starts over, --resume insists on one.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from minigpt import config as cfg
from minigpt.errors import MiniGPTError
from minigpt.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA
from minigpt.terminal import format_seconds, printable

SHAPE_KEYS = ("block_size", "d_model", "n_heads", "n_layers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt-train", description="Train a character-level GPT on a text file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--data", type=Path, default=None,
                     help="UTF-8 text to train on (default: data/input.txt, else the built-in corpus)")
    run.add_argument("--download", choices=["shakespeare"],
                     help="fetch Tiny Shakespeare into the --data path (default data/input.txt) first")
    run.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to write (and resume from)")
    start = run.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="resume from --out; fail if it does not exist")
    start.add_argument("--from-scratch", action="store_true", help="ignore an existing checkpoint at --out")
    run.add_argument("--log", type=Path, default=None, help="JSON-lines metrics log (default: beside --out)")
    run.add_argument("--no-sample", action="store_true", help="do not print a sample at each evaluation")

    cfg.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return train(args)
    except MiniGPTError as e:  # every expected failure is one clear line
        print(f"minigpt-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C before training started: nothing to save
        print("minigpt-train: interrupted before training started; nothing was written", file=sys.stderr)
        return 130


def train(args: argparse.Namespace) -> int:
    config, flags = cfg.from_arguments(args)

    from rich.console import Console

    from minigpt.corpus import choose_corpus, download_shakespeare

    console = Console(stderr=True)
    if args.download:
        target = args.data or DEFAULT_DATA
        if target.exists():
            console.print(f"{target} already exists; not downloading over it")
        else:
            console.print(f"downloading Tiny Shakespeare to {target} ...")
            download_shakespeare(target)
        args.data = target
    corpus = choose_corpus(args.data)  # a bad file fails here, before PyTorch is even imported

    from minigpt.checkpoint import CheckpointError, load_checkpoint
    from minigpt.trainer import Trainer

    resume = None
    if args.out.exists() and not args.from_scratch:
        resume = load_checkpoint(args.out)
        # Documented choice: a resumed model keeps its shape; say so when the user asked for another.
        changed = [f"{k} = {getattr(config, k)}" for k in SHAPE_KEYS
                   if k in explicit_keys(args, flags) and getattr(config, k) != getattr(resume.model_config, k)]
        if changed:
            console.print(f"note: the model shape comes from {args.out}; ignoring {', '.join(changed)}"
                          " (use --from-scratch for a new model)")
    elif args.resume:
        raise CheckpointError(f"{args.out}: no checkpoint to resume from (drop --resume to start a new run)")

    trainer = Trainer(config, corpus, checkpoint_path=args.out, resume=resume)
    check_out_path(args.out)
    describe_run(console, trainer, corpus.name, corpus.length, resume is not None, args.out)
    if trainer.step >= config.max_iters:
        console.print(f"{args.out} is already at step {trainer.step} of max_iters {config.max_iters}; "
                      "raise --max-iters to train further")
        return 0
    log_path = args.log or args.out.with_suffix(".jsonl")
    outcome = run_with_progress(console, trainer, log_path, show_samples=not args.no_sample)
    if outcome.save_error:
        raise CheckpointError(f"{outcome.save_error}; the training since the last good save is lost, and any "
                              "earlier checkpoint there is intact; free some space or pass another --out, then run "
                              "again")
    if outcome.stopped_by:
        console.print(f"stopped at step {trainer.step}; checkpoint saved to {args.out}")
        return 128 + outcome.stopped_by  # the shell's convention: 130 for Ctrl+C, 143 for SIGTERM
    console.print(f"done: step {trainer.step}, best val loss {trainer.best_val_loss:.4f}, saved to {args.out}")
    return 0


def explicit_keys(args: argparse.Namespace, flags: dict) -> set[str]:
    """The hyperparameters this command line sets, by flag, --set or --config."""
    keys = set(flags) | {cfg.parse_assignment(text)[0] for text in args.set}
    if args.config:
        keys |= set(cfg.load_toml(args.config))
    return keys


def check_out_path(out: Path) -> None:
    """Fail now, not at the first save minutes from now, if --out cannot be written."""
    from minigpt.checkpoint import CheckpointError

    if out.is_dir():
        raise CheckpointError(f"{out}: is a directory; pass --out with a file name such as {out / 'model.pt'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:
        raise CheckpointError(f"{out.parent}: cannot write a checkpoint there ({e.strerror or e}); "
                              "pass --out with a writable place") from None


def describe_run(console, trainer, corpus_name: str, n_chars: int, resumed: bool, out: Path) -> None:
    c = trainer.model_config
    start = f"resuming {out} at step {trainer.step}" if resumed else "training from scratch"
    console.print(f"{start} on {corpus_name} ({n_chars:,} characters, vocabulary {c.vocab_size})")
    console.print(f"model: {trainer.num_parameters / 1e6:.2f}M parameters, {c.n_layers} layers, d_model {c.d_model}, "
                  f"{c.n_heads} heads, block {c.block_size}; device {trainer.device.type}, "
                  f"{str(trainer.dtype).removeprefix('torch.')}")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class RunOutcome:
    stopped_by: int = 0  # the signal (SIGINT: Ctrl+C, SIGTERM: kill) that stopped the run, if one did
    save_error: str | None = None  # why the latest save failed, if it did


def run_with_progress(console, trainer, log_path: Path, show_samples: bool) -> RunOutcome:
    """Drive the trainer with a progress bar.

    The first Ctrl+C (or SIGTERM, as `kill` and service managers send) asks the
    trainer to stop after its current step and save; further ones are ignored
    until the process exits, so the save they might interrupt completes."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from minigpt.trainer import EvalEvent, SavedEvent, SaveFailedEvent, StepEvent

    outcome = RunOutcome()

    def on_stop_signal(signum, frame):
        # Both ignored from now until the process ends, interpreter shutdown included.
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        outcome.stopped_by = signum
        trainer.request_stop()
        console.print(f"{signal.Signals(signum).name}: stopping after this step and saving "
                      "(Ctrl+C again does not interrupt the save) ...")

    previous = {stop_signal: signal.signal(stop_signal, on_stop_signal) for stop_signal in STOP_SIGNALS}
    fields = "loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[speed]}  ETA {task.fields[eta]}"
    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn(fields)]
    log = MetricsLog(log_path, console)
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("train", total=trainer.config.max_iters, completed=trainer.step,
                                     loss="-", val="-", speed="-", eta="-")
            last_tps = 0.0
            for event in trainer.run():
                if isinstance(event, StepEvent):
                    last_tps = event.tokens_per_sec
                    progress.update(task, completed=event.step, loss=f"{event.loss:.4f}",
                                    speed=f"{event.tokens_per_sec:,.0f} tok/s", eta=format_seconds(event.eta))
                    if event.step % 10 == 0:
                        log.write({"event": "step", "step": event.step, "loss": event.loss, "lr": event.lr,
                                        "tokens_per_sec": event.tokens_per_sec, "elapsed": event.elapsed})
                elif isinstance(event, EvalEvent):
                    progress.update(task, val=f"{event.val_loss:.4f}")
                    log.write({"event": "eval", "step": event.step, "train_loss": event.train_loss,
                                    "val_loss": event.val_loss, "train_bpc": event.train_bpc,
                                    "val_bpc": event.val_bpc, "tokens_per_sec": last_tps})
                    progress.console.print(f"step {event.step}: train {event.train_loss:.4f}  val {event.val_loss:.4f}"
                                           f" ({event.val_bpc:.3f} bits/char)")
                    if show_samples:
                        progress.console.print(escape(printable(event.sample)), style="dim", highlight=False)
                elif isinstance(event, SaveFailedEvent):
                    outcome.save_error = event.error
                    progress.console.print(f"[red]warning:[/] {escape(event.error)}; the previous checkpoint is intact"
                                           " and training goes on")
                elif isinstance(event, SavedEvent):
                    outcome.save_error = None
    finally:
        if not outcome.stopped_by:
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)
    return outcome


class MetricsLog:
    """The JSON-lines metrics log, opened for each record. A failed write (a
    full disk) is reported once and training goes on: the log must not cost the run."""

    def __init__(self, path: Path, console) -> None:
        self.path, self.console, self.failed = path, console, False

    def write(self, record: dict) -> None:
        record["time"] = round(time.time(), 3)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as log:
                log.write(json.dumps(record) + "\n")
        except OSError as e:
            if not self.failed:
                self.console.print(f"warning: cannot write the metrics log {self.path} ({e.strerror or e}); "
                                   "training goes on", markup=False)
            self.failed = True


if __name__ == "__main__":
    sys.exit(main())
