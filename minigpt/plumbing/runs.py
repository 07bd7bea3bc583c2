"""Reading the runs in a folder back from their metrics logs (minigpt.plumbing.runlog),
for a table of runs and their curves side by side.

    runs, warnings = load_runs(Path("checkpoints"))
    for run in runs:
        print(run.name, run.parameters, run.best_val_loss, run.curve("tokens", "bpc"))

A log may be cut short (a crash mid-write) or damaged: a line that is not a
record is skipped with a warning naming the file and the line, and the rest
of the run is still read. A log that holds a new run after an old one (the
same --out trained with --from-scratch) reads as its latest run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from minigpt.plumbing.fields import is_number
from minigpt.plumbing.jsonlines import read_lines
from minigpt.plumbing.paths import is_run_log
from minigpt.plumbing.runlog import log_path

XAxis = Literal["step", "tokens", "time"]
YAxis = Literal["loss", "bpc"]
X_KEYS = {"step": "step", "tokens": "tokens", "time": "elapsed"}
Y_KEYS = {"loss": "val_loss", "bpc": "val_bpc"}
EVAL_KEYS = ("step", "val_loss", "val_bpc")  # what an eval line needs to be drawn
FINAL_KEYS = ("final_val_loss", "final_val_bpc")  # what a final line needs


@dataclass
class Sample:
    step: int
    val_loss: float
    text: str


@dataclass
class Run:
    name: str  # the log's path in the folder, without .jsonl: "model", "small/model"
    path: Path
    info: dict = field(default_factory=dict)  # the latest session's run line ({} for a log older than run lines)
    started: float | None = None  # Unix time the run's first session started
    evals: list[dict] = field(default_factory=list, repr=False)
    train: list[dict] = field(default_factory=list, repr=False)  # the step lines
    last_step: dict | None = None  # the latest line with a step
    final: dict | None = None  # the latest final line: the whole validation split scored at the run's end

    @property
    def parameters(self) -> int | None:
        return self.info.get("parameters")

    @property
    def tokenizer(self) -> str:
        """e.g. "char" or "bpe 1024"."""
        kind = self.info.get("tokenizer")
        if kind is None:
            return "?"
        return f"bpe {self.info.get('vocab_size', '?')}" if kind == "bpe" else kind

    @property
    def shape(self) -> str:
        """e.g. "d64x2": width and layers."""
        model = self.info.get("model") or {}
        return f"d{model['d_model']}x{model['n_layers']}" if {"d_model", "n_layers"} <= model.keys() else "?"

    @property
    def label(self) -> str:
        """The run's name with its size and tokenizer, for a chart's legend."""
        size = f"{self.parameters / 1e6:.2f}M {self.shape}" if self.parameters else "size ?"
        return f"{self.name} ({size}, {self.tokenizer})"

    @property
    def steps(self) -> int:
        return int(self.last_step["step"]) if self.last_step else 0

    @property
    def elapsed(self) -> float | None:
        """Seconds the run has used, all sessions."""
        return self.last_step.get("elapsed") if self.last_step else None

    @property
    def best_val_loss(self) -> float | None:
        return min((e["val_loss"] for e in self.evals), default=None)

    @property
    def best_val_bpc(self) -> float | None:
        return min((e["val_bpc"] for e in self.evals), default=None)

    @property
    def final_val_loss(self) -> float | None:
        """The loss of the run's last weights on the whole validation split, if its latest step was its end."""
        return self._final("final_val_loss")

    @property
    def final_val_bpc(self) -> float | None:
        return self._final("final_val_bpc")

    def _final(self, key: str) -> float | None:
        return self.final[key] if self.final and self.final["step"] == self.steps else None

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M") if self.started else "?"

    def curve(self, x: XAxis = "step", y: YAxis = "loss") -> list[tuple[float, float]]:
        """The validation curve, as (x, y) points; evaluations lacking x (an old log's tokens) are left out."""
        x_key, y_key = X_KEYS[x], Y_KEYS[y]
        return [(e[x_key], e[y_key]) for e in self.evals if is_number(e.get(x_key))]

    def chart_points(self) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
        """The train points as (step, seconds used, loss, learning rate; NaN where an old log lacks
        it) and the validation points as (step, seconds used, loss), as the app's chart takes them."""
        train = [(r["step"], r["elapsed"], r["loss"], r["lr"] if is_number(r.get("lr")) else math.nan)
                 for r in self.train if is_number(r.get("elapsed")) and is_number(r.get("loss"))]
        val = [(r["step"], r["elapsed"], r["val_loss"]) for r in self.evals
               if is_number(r.get("elapsed")) and is_number(r.get("val_loss"))]
        return train, val

    def samples(self) -> list[Sample]:
        """The sample drawn at each evaluation (logs from before samples were logged have none)."""
        return [Sample(int(e["step"]), e["val_loss"], e["sample"]) for e in self.evals
                if isinstance(e.get("sample"), str)]


def find_logs(folder: Path) -> list[Path]:
    """The metrics logs in folder and its subfolders, by name (not the project's other JSON-lines files)."""
    return sorted(path for path in folder.rglob("*.jsonl") if path.is_file() and is_run_log(path))


def load_runs(folder: Path) -> tuple[list[Run], list[str]]:
    """Every run in folder, and a warning for each line or log that could not be read."""
    runs, warnings = [], []
    for path in find_logs(folder):
        run = read_run(path, path.relative_to(folder).with_suffix("").as_posix(), warnings)
        if run is not None:
            runs.append(run)
    return runs, warnings


def run_of_checkpoint(checkpoint: Path) -> tuple[Run | None, list[str]]:
    """The run saved at checkpoint, as its log tells it (None for a run without a log), and the log's warnings."""
    log, warnings = log_path(checkpoint), []
    return (read_run(log, log.stem, warnings) if log.exists() else None), warnings


def read_run(path: Path, name: str, warnings: list[str]) -> Run | None:
    """The run a log holds, or None (with a warning) when it holds none; every unreadable line adds a warning."""
    try:
        lines = read_lines(path)
    except OSError as e:
        warnings.append(f"{path}: cannot be read ({e.strerror or e}); left out")
        return None
    run = Run(name, path)
    for line in lines:
        if line.record is None:
            why = "cut short (half-written)" if line.cut else "not a JSON record"
            warnings.append(f"{path}:{line.number}: {why}; line skipped")
        elif not _add(run, line.record):
            warnings.append(f"{path}:{line.number}: not a metrics record of MiniGPT; line skipped")
    if not (run.evals or run.last_step or run.info):
        warnings.append(f"{path}: holds no training records; left out")
        return None
    return run


def _add(run: Run, record: dict) -> bool:
    """Add one record to run; False if it is not one this module knows."""
    kind = record.get("event")
    if kind == "run":
        if record.get("resumed_from") == 0:  # a new run in the same log: the older one is replaced
            run.evals, run.train, run.last_step, run.started, run.final = [], [], None, None, None
        run.info = record
        run.started = run.started or record.get("started")
        return True
    if not is_number(record.get("step")):
        return False
    if kind == "eval":
        if not all(is_number(record.get(key)) for key in EVAL_KEYS):
            return False
        run.evals.append(record)
    elif kind == "step":
        run.train.append(record)
    elif kind == "final":
        if not all(is_number(record.get(key)) for key in FINAL_KEYS):
            return False
        run.final = record
    else:
        return False
    run.last_step = record
    if run.started is None and is_number(record.get("time")):
        run.started = record["time"] - (record.get("elapsed") or 0.0)  # an old log, without run lines
    return True

