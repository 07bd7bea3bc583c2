"""`python -m bench lab` (from the repository root): a Lab experiment at a given
time per variant, and each variant's wall time against its budget.

A variant's wall time runs from the moment the Lab begins setting it up (the
previous one's end) to the moment its result is read back: start-up, training,
evaluations and saves, as the learner waits for them. The Lab promises each
within 3% of its budget, and the whole experiment the sum of its variants plus
a few seconds (here without Python's own start-up, which comes once before).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from minigpt.plumbing import config as cfg
from minigpt.plumbing.experiments import find_experiment
from minigpt.plumbing.lab_record import Budget

TOLERANCE = 0.03  # of the budget: what the Lab promises


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default="attention-and-mlp", help="a built-in experiment or a .toml file")
    parser.add_argument("--time", default="1m", help="wall time of each variant, start-up included")
    parser.add_argument("--data", type=Path, help="the text (default: data/input.txt, else the built-in corpus)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter of every variant, e.g. dtype=float32")
    parser.add_argument("--keep", type=Path, metavar="FOLDER", help="keep the experiment's runs in FOLDER (default: "
                                                                  "a temporary folder, removed after)")


def run(args: argparse.Namespace) -> int:
    from minigpt.plumbing.lab import ExperimentDone, LabNote, LabRun, VariantDone

    experiment = find_experiment(args.experiment)
    budget = Budget(seconds=cfg.parse_duration(args.time))
    overrides = dict(cfg.parse_assignment(text) for text in args.set)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        started = time.monotonic()
        lab = LabRun(experiment, budget, root, args.data, overrides, fresh=True)
        print(f"{experiment.name}: {len(experiment.variants)} variants, {budget}, on {lab.corpus.name}; "
              f"{' '.join(args.set) or 'default settings'}")
        print(f"{'variant':<16} {'budget':>7} {'wall':>7} {'off by':>7}  {'steps':>7}  bits/char")
        off_budget, previous = [], time.monotonic()
        for event in lab.run():
            if isinstance(event, VariantDone):
                now = time.monotonic()
                wall, previous = now - previous, now
                off = wall / budget.seconds - 1
                off_budget.append(abs(off) > TOLERANCE)
                name = experiment.variants[event.index].name
                steps = f"{event.result.steps:,}" if event.result else "-"
                bpc = f"{event.result.val_bpc:.4f}" if event.result else "-"
                print(f"{name:<16} {budget.seconds:>6.1f}s {wall:>6.1f}s {off:>+7.1%}  {steps:>7}  {bpc}")
            elif isinstance(event, LabNote):
                print(f"note: {event.text}")
            elif isinstance(event, ExperimentDone):
                print(f"conclusion: {event.conclusion}")
        total = time.monotonic() - started
        expected = budget.seconds * len(experiment.variants)
        print(f"the whole experiment: {total:.1f}s for {len(experiment.variants)} x {budget.seconds:g}s "
              f"({total - expected:+.1f}s); variants off their budget by more than {TOLERANCE:.0%}: "
              f"{sum(off_budget)} of {len(off_budget)}")
    return 1 if any(off_budget) else 0
