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

import math
import time

PAUSE = 1.0  # seconds: a longer wait for the consumer is a pause, not work
EXIT_MARGIN = 0.5  # seconds kept for the program to end after the last save
EVALUATIONS = 10  # evaluations per budget, the last one at the end...
MIN_EVAL_GAP = 30.0  # ...but at most one every this many seconds: each costs a few training steps
SPEED_WINDOW = 3.0  # seconds: the time of a step is averaged over about this long, however many steps


class BudgetClock:
    def __init__(self, budget: float, spent: float = 0.0, started: float | None = None) -> None:
        now = time.monotonic()
        self.budget = budget
        self.used = spent + (now - started if started is not None else 0.0)
        self._last = now
        self.eval_interval = max(budget / EVALUATIONS, MIN_EVAL_GAP)
        self._next_eval = (self.used // self.eval_interval + 1) * self.eval_interval
        self.step_seconds = 0.0  # recent time of one training step (count before the step, step_done after)
        self._steps = 0  # steps counted by step_done
        self._recent_steps = self._recent_seconds = 0.0  # the steps after the first, and their time, fading
        self.final_seconds: float | None = None  # what an evaluation and a save took, once measured

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
        """Count a training step, and keep the mean time of the steps of the last
        SPEED_WINDOW seconds or so (older ones fade out). A window of a fixed number
        of steps spanned a fraction of a second on a small model, shorter than the
        time between two readings of it: each reading was the speed of a moment,
        jumping with whatever else the machine did just then. The first step, which
        pays for warm-up, counts only until the second."""
        seconds = self.count()
        self._steps += 1
        if self._steps == 1:
            self.step_seconds = seconds
            return
        fade = math.exp(-seconds / SPEED_WINDOW)
        self._recent_steps = self._recent_steps * fade + 1
        self._recent_seconds = self._recent_seconds * fade + seconds
        self.step_seconds = self._recent_seconds / self._recent_steps

    @property
    def left(self) -> float:
        return self.budget - self.used

    def reserve(self, eval_iters: int) -> float:
        """Seconds to keep for the final evaluation, save and exit. Before one
        is measured: evaluating is eval_iters batches of each split, forward
        only (about a third of a step each), plus a sample and a save."""
        final = self.final_seconds if self.final_seconds is not None else eval_iters * self.step_seconds + 1.0
        return final + EXIT_MARGIN

    def progress(self, eval_iters: int) -> float:
        """How far the schedule is, from 0 to 1 a step or two before the final
        evaluation must begin, so that the last steps run at the schedule's floor."""
        end = self.budget - self.reserve(eval_iters) - 2 * self.step_seconds
        return min(max(self.used / end, 0.0), 1.0) if end > 0 else 1.0

    def time_to_stop(self, eval_iters: int) -> bool:
        """Whether one more step would leave too little time for the final evaluation and save."""
        return self.used + self.step_seconds + self.reserve(eval_iters) >= self.budget

    def time_to_evaluate(self) -> bool:
        if self.used < self._next_eval:
            return False
        self._next_eval += self.eval_interval
        return True
