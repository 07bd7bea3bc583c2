"""A run's metrics log: one JSON object a line (minigpt.plumbing.jsonlines), beside the checkpoint
(checkpoints/model.pt -> checkpoints/model.jsonl). minigpt-train and the app
both keep it, so that any run can be compared with any other (minigpt.plumbing.runs).

Each training session appends:
    {"event": "run", ...}    what the run is: config, model, tokenizer, device, number format, start time
    {"event": "step", ...}   every LOG_EVERY steps (and the session's last): loss, lr, tokens/s
    {"event": "eval", ...}   every evaluation: train and val loss, bits per character, the sample
    {"event": "final", ...}  a run's end: final_val_loss and final_val_bpc, its last weights scored
                             on the whole validation split, and scored_tokens
Every line has "time" (Unix seconds), "elapsed" (seconds the run has used, all its
sessions, pauses not) and "tokens" (training tokens seen). Appending never
loses an earlier session: a resumed run continues its log, a new one starts
after the old lines (its run line says "resumed_from": 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from minigpt.plumbing.jsonlines import JsonLinesError, append_record
from minigpt.plumbing.paths import RUN_LOG_SUFFIX

if TYPE_CHECKING:
    from minigpt.trainer import Event, StepEvent, Trainer

LOG_EVERY = 10  # steps between step lines: a line a step would make the log the run's biggest file
FORMAT = 1  # the run line's "format": raise it when a key changes meaning


def log_path(checkpoint: Path) -> Path:
    """Where the log of the run saved at checkpoint is kept."""
    return checkpoint.with_suffix(RUN_LOG_SUFFIX)


def run_record(trainer: Trainer, corpus: str, started: float) -> dict:
    """What a session of this run is: enough to name it in a table of runs and to redo it."""
    from minigpt.plumbing.device import dtype_name

    return {"event": "run", "format": FORMAT, "started": round(started, 3), "resumed_from": trainer.step,
            "elapsed": trainer.time_spent, "tokens": tokens_seen(trainer, trainer.step),
            "parameters": trainer.num_parameters, "model": asdict(trainer.model_config),
            "tokenizer": trainer.tokenizer.kind, "vocab_size": trainer.tokenizer.vocab_size,
            "chars_per_token": round(trainer.splits.train_chars_per_token, 4), "corpus": corpus,
            "device": trainer.device.type, "dtype": dtype_name(trainer.dtype), "config": trainer.config.to_dict()}


def tokens_seen(trainer: Trainer, step: int) -> int:
    """Training tokens seen by the end of step (at this run's batch, block and accumulation sizes)."""
    return step * trainer.tokens_per_step


class RunLog:
    """Writes a trainer's events to its log. A failed write (a full disk) is
    reported once, through on_error, and training goes on: the log must not
    cost the run."""

    def __init__(self, path: Path, trainer: Trainer, corpus: str,
                 on_error: Callable[[str], None] = lambda message: None) -> None:
        """corpus: the name of the text the run trains on."""
        self.path = path.absolute()  # the log goes where the run started, whatever the directory is by then
        self.trainer, self.on_error = trainer, on_error
        self.failed = False
        self._run_line: dict | None = run_record(trainer, corpus, time.time())  # until it is written
        self._last_step: StepEvent | None = None  # the latest step, and whether it has its line
        self._last_step_logged = True

    def record(self, event: Event) -> None:
        from minigpt.trainer import EvalEvent, FinalScoreEvent, StepEvent

        if not isinstance(event, StepEvent | EvalEvent | FinalScoreEvent):
            return  # a save is not a metric
        if self._run_line is not None:  # written with the first metric: a session that never trains adds nothing
            self._write(self._run_line)
            self._run_line = None
        if isinstance(event, StepEvent):
            self._last_step, self._last_step_logged = event, False
            if event.step % LOG_EVERY == 0:
                self._write_step(event)
        elif isinstance(event, EvalEvent):
            self._write({"event": "eval", "step": event.step, "train_loss": event.train_loss,
                         "val_loss": event.val_loss, "train_bpc": event.train_bpc, "val_bpc": event.val_bpc,
                         "tokens_per_sec": self._last_step.tokens_per_sec if self._last_step else 0.0,
                         "elapsed": event.elapsed, "tokens": tokens_seen(self.trainer, event.step),
                         "sample": event.sample})
        elif isinstance(event, FinalScoreEvent):
            self._write({"event": "final", "step": event.step, "final_val_loss": event.val_loss,
                         "final_val_bpc": event.val_bpc, "scored_tokens": event.tokens, "elapsed": event.elapsed,
                         "tokens": tokens_seen(self.trainer, event.step)})

    def finish(self) -> None:
        """The session's last step, if its line is not written yet (the run's last learning rate too)."""
        if self._last_step is not None and not self._last_step_logged:
            self._write_step(self._last_step)

    def _write_step(self, event: StepEvent) -> None:
        self._last_step_logged = True
        self._write({"event": "step", "step": event.step, "loss": event.loss, "lr": event.lr,
                     "tokens_per_sec": event.tokens_per_sec, "elapsed": event.elapsed,
                     "tokens": tokens_seen(self.trainer, event.step)})

    def _write(self, record: dict) -> None:
        record["time"] = round(time.time(), 3)
        try:
            append_record(self.path, record)
        except JsonLinesError as e:
            if not self.failed:
                self.on_error(f"cannot write the metrics log {self.path} ({e.reason}); training goes on")
            self.failed = True
