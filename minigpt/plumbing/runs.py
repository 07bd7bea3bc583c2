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

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from minigpt.plumbing import completions, conversations
from minigpt.plumbing.runlog import log_path

XAxis = Literal["step", "tokens", "time"]
YAxis = Literal["loss", "bpc"]
X_KEYS = {"step": "step", "tokens": "tokens", "time": "elapsed"}
Y_KEYS = {"loss": "val_loss", "bpc": "val_bpc"}
EVAL_KEYS = ("step", "val_loss", "val_bpc")  # what an eval line needs to be drawn


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
    def date(self) -> str:
        return datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M") if self.started else "?"

    def curve(self, x: XAxis = "step", y: YAxis = "loss") -> list[tuple[float, float]]:
        """The validation curve, as (x, y) points; evaluations lacking x (an old log's tokens) are left out."""
        x_key, y_key = X_KEYS[x], Y_KEYS[y]
        return [(e[x_key], e[y_key]) for e in self.evals if _is_number(e.get(x_key))]

    def chart_points(self) -> tuple[list[tuple[int, float, float]], list[tuple[int, float, float]]]:
        """The train and validation losses as (step, seconds used, loss), as the app's chart takes them."""
        def points(records: list[dict], loss: str) -> list[tuple[int, float, float]]:
            return [(r["step"], r["elapsed"], r[loss]) for r in records
                    if _is_number(r.get("elapsed")) and _is_number(r.get(loss))]

        return points(self.train, "loss"), points(self.evals, "val_loss")

    def samples(self) -> list[Sample]:
        """The sample drawn at each evaluation (logs from before samples were logged have none)."""
        return [Sample(int(e["step"]), e["val_loss"], e["sample"]) for e in self.evals
                if isinstance(e.get("sample"), str)]


def find_logs(folder: Path) -> list[Path]:
    """The metrics logs in folder and its subfolders, by name (not the completions and conversations beside them)."""
    others = (completions.SUFFIX, conversations.SUFFIX)
    return sorted(path for path in folder.rglob("*.jsonl") if path.is_file() and not path.name.endswith(others))


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
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        warnings.append(f"{path}: cannot be read ({e.strerror or e}); left out")
        return None
    run = Run(name, path)
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            cut = number == len(lines)  # no newline after it: the write was cut short
            why = "cut short (half-written)" if cut else "not a JSON record"
            warnings.append(f"{path}:{number}: {why}; line skipped")
        elif not _add(run, record):
            warnings.append(f"{path}:{number}: not a metrics record of MiniGPT; line skipped")
    if not (run.evals or run.last_step or run.info):
        warnings.append(f"{path}: holds no training records; left out")
        return None
    return run


def _parse(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _add(run: Run, record: dict) -> bool:
    """Add one record to run; False if it is not one this module knows."""
    kind = record.get("event")
    if kind == "run":
        if record.get("resumed_from") == 0:  # a new run in the same log: the older one is replaced
            run.evals, run.train, run.last_step, run.started = [], [], None, None
        run.info = record
        run.started = run.started or record.get("started")
        return True
    if not _is_number(record.get("step")):
        return False
    if kind == "eval":
        if not all(_is_number(record.get(key)) for key in EVAL_KEYS):
            return False
        run.evals.append(record)
    elif kind == "step":
        run.train.append(record)
    else:
        return False
    run.last_step = record
    if run.started is None and _is_number(record.get("time")):
        run.started = record["time"] - (record.get("elapsed") or 0.0)  # an old log, without run lines
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
