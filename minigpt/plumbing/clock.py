"""The clock of a training run: how much time the run has used. With a time
budget (`--time 10m`) it also says where the learning-rate schedule stands,
and when to stop so that the last evaluation and save land just before the
deadline; without one (budget 0) it only counts, for the charts and the log.

Time counts from the program's start (start-up is part of the budget) plus
what earlier sessions of the run spent (a resumed run goes on with the same
schedule). The consumer of Trainer.run() pauses training by not asking for
the next event; a gap of more than PAUSE seconds between two events is such
a pause and does not count. Because the schedule reads the clock at every
step, it stays whole when the machine slows down or speeds up mid-run.
"""

from __future__ import annotations

import time

PAUSE = 1.0  # seconds: a longer wait for the consumer is a pause, not work
EXIT_MARGIN = 0.5  # seconds kept for the program to end after the last save
EVALUATIONS = 10  # evaluations per budget, the last one at the end...
MIN_EVAL_GAP = 30.0  # ...but at most one every this many seconds: each costs a few training steps


class BudgetClock:
    def __init__(self, budget: float, spent: float = 0.0, started: float | None = None) -> None:
        now = time.monotonic()
        self.budget = budget
        self.used = spent + (now - started if started is not None else 0.0)
        self._last = now
        self.eval_interval = max(budget / EVALUATIONS, MIN_EVAL_GAP)
        self._next_eval = (self.used // self.eval_interval + 1) * self.eval_interval
        self.step_seconds = 0.0  # recent time of one training step (count before the step, step_done after)
        self.final_seconds: float | None = None  # what the end of the run takes, once an evaluation is measured

    def count(self, *, after_wait: bool = False) -> float:
        """Add the time since the last count, and return it; after_wait: the loop
        was handed to the consumer meanwhile, and a long gap there was a pause."""
        now = time.monotonic()
        gap, self._last = now - self._last, now
        if after_wait and gap > PAUSE:
            return 0.0
        self.used += gap
        return gap

    def step_done(self) -> None:
        """Count a training step, and keep a moving average of their time."""
        seconds = self.count()
        self.step_seconds = seconds if not self.step_seconds else 0.9 * self.step_seconds + 0.1 * seconds

    @property
    def left(self) -> float:
        return self.budget - self.used

    def reserve(self, final_batches: int) -> float:
        """Seconds to keep for the final evaluation, save, score of the validation
        split and exit. Before one is measured: final_batches batches, forward
        only (about a third of a step each, counted as half), plus a sample and a save."""
        guess = final_batches * self.step_seconds / 2 + 1.0
        return (self.final_seconds if self.final_seconds is not None else guess) + EXIT_MARGIN

    def progress(self, final_batches: int) -> float:
        """How far the schedule is, from 0 to 1 a step or two before the final
        evaluation must begin, so that the last steps run at the schedule's floor."""
        end = self.budget - self.reserve(final_batches) - 2 * self.step_seconds
        return min(max(self.used / end, 0.0), 1.0) if end > 0 else 1.0

    def time_to_stop(self, final_batches: int) -> bool:
        """Whether one more step would leave too little time for what ends the run."""
        return self.used + self.step_seconds + self.reserve(final_batches) >= self.budget

    def time_to_evaluate(self) -> bool:
        if self.used < self._next_eval:
            return False
        self._next_eval += self.eval_interval
        return True
