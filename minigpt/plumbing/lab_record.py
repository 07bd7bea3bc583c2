"""What a Lab experiment leaves on disk, and reading it back.

    checkpoints/lab/width/
        experiment.json     the record: the experiment, its time (or steps) per variant,
                            the text and the base config every variant started from
        d-32.pt, d-32.jsonl the first variant: a normal run, its checkpoint and metrics log
        d-64.pt, ...

A variant's result is read from its run log (minigpt.plumbing.runs), so
minigpt-runs, the app's runs picker and the Lab all read the same figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.experiments import Experiment
from minigpt.plumbing.runs import Run, run_of_checkpoint
from minigpt.plumbing.terminal import format_seconds

RECORD = "experiment.json"
FORMAT = 1  # raise it when a key of the record changes meaning


class LabError(MiniGPTError, ValueError):
    """An experiment cannot run or be shown; the message says why and what to do."""


@dataclass(frozen=True)
class Budget:
    """What every variant gets: seconds of wall time (start-up included), or a number of steps."""

    seconds: float = 0.0
    steps: int = 0

    def __str__(self) -> str:
        return f"{format_seconds(self.seconds)} per variant" if self.seconds else f"{self.steps:,} steps per variant"


@dataclass(frozen=True)
class Record:
    """An experiment as the Lab ran it: enough to resume it exactly, and to show it later."""

    experiment: Experiment
    budget: Budget
    data: str | None  # the --data path, or None for data/input.txt or the built-in corpus
    corpus: str  # the text's name
    base: dict[str, Any]  # the config every variant started from, before its own overrides
    started: tuple[str, ...] = ()  # the variants begun since the record was made (a checkpoint left by an
    done: tuple[str, ...] = ()  # earlier --fresh run is not resumed); and those that have used their budget

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "experiment": self.experiment.to_dict(), "seconds": self.budget.seconds,
                           "steps": self.budget.steps, "data": self.data, "corpus": self.corpus, "base": self.base,
                           "started": list(self.started), "done": list(self.done)}, indent=1).encode()


def variant_checkpoint(folder: Path, variant: str) -> Path:
    return folder / f"{variant}.pt"


def save_record(folder: Path, record: Record) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / RECORD, record.to_json())


def load_record(folder: Path) -> Record | None:
    """The record in folder, None when there is none; LabError when it cannot be read."""
    path = folder / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise LabError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e}); run the experiment with "
                       "--fresh to start it over") from None
    try:
        if data["format"] > FORMAT:
            raise LabError(f"{path}: written by a newer MiniGPT (format {data['format']}); upgrade MiniGPT")
        return Record(Experiment.from_dict(data["experiment"]), Budget(data["seconds"], data["steps"]),
                      data["data"], data["corpus"], dict(data["base"]), tuple(data["started"]),
                      tuple(data["done"]))
    except (KeyError, TypeError) as e:
        raise LabError(f"{path}: not a record of the Lab ({type(e).__name__}: {e}); run the experiment with "
                       "--fresh to start it over") from None


@dataclass(frozen=True)
class VariantResult:
    """A variant's figures, as its run log tells them."""

    name: str
    parameters: int
    steps: int
    tokens: int  # training tokens seen
    seconds: float  # wall time the run used, start-up included
    val_loss: float  # nats per token, on the whole validation split (see of)
    val_bpc: float  # bits per character: what compares tokenizers
    sample: str  # the text it wrote at its last evaluation
    run: Run  # the whole log: curves and samples

    @classmethod
    def of(cls, name: str, run: Run) -> VariantResult | None:
        """None until the run has been evaluated. The figure is the whole validation split's
        score of its last weights; a log written before runs were scored at their end
        has only its evaluations, and the best of them stands in."""
        if run.final_val_loss is not None and run.final_val_bpc is not None:
            val_loss, val_bpc = run.final_val_loss, run.final_val_bpc
        else:
            val_loss, val_bpc = run.best_val_loss, run.best_val_bpc
        if val_loss is None or val_bpc is None or not math.isfinite(val_bpc):
            return None
        samples = run.samples()
        last = run.last_step or {}
        return cls(name, run.parameters or 0, run.steps, int(last.get("tokens") or 0), run.elapsed or 0.0,
                   val_loss, val_bpc, samples[-1].text if samples else "", run)


def read_results(folder: Path, experiment: Experiment) -> tuple[dict[str, VariantResult], list[str]]:
    """The result of each variant that has one, by name, and the warnings of reading their logs."""
    results, warnings = {}, []
    for variant in experiment.variants:
        run, problems = run_of_checkpoint(variant_checkpoint(folder, variant.name))
        warnings += problems
        if run and (result := VariantResult.of(variant.name, run)):
            results[variant.name] = result
    return results, warnings
