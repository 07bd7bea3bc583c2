"""The clock of a training run: how much time the run has used. With a time
budget (`--time 10m`) it also says where the learning-rate schedule stands,
and when to stop so that the last evaluation and save land just before the
deadline; without one (budget 0) it only counts, for the charts and the log.

Time counts from the program's start (start-up is part of the budget) plus
what earlier sessions of the run spent (a resumed run goes on with the same
schedule). The consumer of Trainer.run() pauses training by not asking for
the next event; a gap of more than PAUSE seconds between two events is such
a pause and does not count. Because the schedule reads the clock at every
step, it stays whole when the machine slows down or speeds up mid-run; so
does the time kept for the last evaluation and save, which is counted in
steps of the machine's current pace (see final_seconds).
"""

from __future__ import annotations

import math
import time

from minigpt.plumbing.errors import MiniGPTError

PAUSE = 1.0  # seconds: a longer wait for the consumer is a pause, not work
EXIT_MARGIN = 0.5  # seconds kept for the program to end after the last save
EVALUATIONS = 10  # evaluations per budget, the last one at the end...
MIN_EVAL_GAP = 30.0  # ...but at most one every this many seconds: each costs a few training steps
PACE_STEPS = 2  # a new run's first steps, taken whatever the budget: the first pays for warm-up
SPEED_WINDOW = 3.0  # seconds: the time of a step is averaged over about this long, however many steps


class BudgetTooShort(MiniGPTError, ValueError):
    """A new run's time budget holds its start-up and one evaluation, but no training."""


class BudgetClock:
    def __init__(self, budget: float, spent: float = 0.0, started: float | None = None) -> None:
        now = time.monotonic()
        self.budget = budget
        self.start_up = now - started if started is not None else 0.0
        self.used = spent + self.start_up
        self.new_run = spent == 0  # the run's first session
        self._last = now
        self.eval_interval = max(budget / EVALUATIONS, MIN_EVAL_GAP)
        self._next_eval = (self.used // self.eval_interval + 1) * self.eval_interval
        self.step_seconds = 0.0  # recent time of one training step (count before the step, step_done after)
        self.steps = 0  # training steps in this session
        self._recent_steps = self._recent_seconds = 0.0  # the steps after the first, and their time, fading
        self._final: tuple[float, float] | None = None  # the latest evaluation and save: seconds, and a step's then

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
        self.steps += 1
        if self.steps == 1:
            self.step_seconds = seconds
            return
        fade = math.exp(-seconds / SPEED_WINDOW)
        self._recent_steps = self._recent_steps * fade + 1
        self._recent_seconds = self._recent_seconds * fade + seconds
        self.step_seconds = self._recent_seconds / self._recent_steps

    @property
    def final_seconds(self) -> float | None:
        """What the last evaluation and save will take, once one is measured: the
        latest one's time, scaled by how much faster or slower steps run now than
        then. An evaluation taken while other programs busied the machine would
        otherwise keep a quiet machine's run from its last seconds, and one taken
        on a quiet machine would let a busy one's run overshoot its deadline."""
        if self._final is None:
            return None
        seconds, step_then = self._final
        return seconds * self.step_seconds / step_then if step_then and self.step_seconds else seconds

    @final_seconds.setter
    def final_seconds(self, seconds: float) -> None:
        """Note what an evaluation and its save just took."""
        self._final = (seconds, self.step_seconds)

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
        """Whether one more step would leave too little time for what ends the run.
        A new run takes its first two steps regardless: the first pays for warm-up
        (with compile = true, for compiling: 20 s on a 2-core CPU), so only the
        second tells the pace, and with it how short a budget is too short (require_room)."""
        if self.new_run and self.steps < PACE_STEPS:
            return False
        return self.used + self.step_seconds + self.reserve(final_batches) >= self.budget

    def require_room(self, final_batches: int) -> None:
        """Raise BudgetTooShort when a new run's budget ended it at its first steps,
        the two it takes to tell its pace: it held the start-up and an evaluation but
        no training, and a model of two steps is not what anyone asked for. The
        message names the shortest budget that trains a third step on this machine,
        at its pace now."""
        if not (self.new_run and self.steps <= PACE_STEPS):
            return
        final = self.reserve(final_batches)
        shortest = math.ceil(self.used + self.step_seconds + final)  # what it has used, and a third step
        raise BudgetTooShort(
            f"a time budget (--time) of {self.budget:g} s is too short for this machine: it took "
            f"{self.start_up:.1f} s to start and needs about {final:.1f} s for the last evaluation, score and save, "
            f"which left no time to train; the shortest budget it can train in is about {shortest} s "
            f"(--time {shortest}s), and a useful one is minutes")

    def time_to_evaluate(self) -> bool:
        if self.used < self._next_eval:
            return False
        self._next_eval += self.eval_interval
        return True
