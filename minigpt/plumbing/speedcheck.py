"""Checking the speed cache (minigpt.plumbing.shape) against the speed runs reach.

A rung timed while other programs busied the machine keeps a figure far
below what the machine does, and every later time budget would pick a
smaller model by it. So a run whose shape is a rung of the ladder compares
its own training speed with the cached figure, and where they differ by more
than CHANGE, the run's speed replaces it and an event says so:

    for event in checking_speed(trainer, trainer.run()):
        ...  # the trainer's events, then SpeedCorrected at the end if the cache was wrong

A run's speed is its pace over most of its steps (PACE_QUANTILE of the
tokens/s of its steps), so a busy moment within the run does not decide it either.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minigpt.plumbing.shape import LADDER, Rung, SpeedCache, timed_vocab
from minigpt.plumbing.terminal import format_age

if TYPE_CHECKING:
    from minigpt.trainer import Event, Trainer

CHANGE = 0.3  # a run this much faster or slower than the cached figure corrects it
SKIPPED_STEPS = 20  # a session's first steps: warm-up, and the moving average of a step's time settling
MIN_STEPS = 50  # steps after those before a run's speed is taken as the machine's
PACE_QUANTILE = 0.9  # a busy moment slows some steps: the faster ones tell the machine's pace


@dataclass(frozen=True)
class SpeedCorrected:
    """The speed cache had a rung's speed wrong by more than CHANGE; it now holds the run's."""

    rung: Rung
    cached: float  # tokens/s
    measured: float  # tokens/s, this run's pace
    age: float  # seconds since the cached figure was taken

    @property
    def description(self) -> str:
        return (f"the speed cache had {self.cached:,.0f} tokens/s for {self.rung.describe()} (timed "
                f"{format_age(self.age)}); this run trained at {self.measured:,.0f} tokens/s, so the cache now "
                "holds that, and the next time budget chooses its model by it")


def checking_speed(trainer: Trainer, events: Generator[Event, None, None]) -> Iterator[Event | SpeedCorrected]:
    """The trainer's events as they come; then, if the run's speed shows the
    speed cache wrong for its shape, SpeedCorrected (the cache is corrected)."""
    from minigpt.trainer import StepEvent

    speeds: list[float] = []
    try:
        for event in events:
            if isinstance(event, StepEvent):
                speeds.append(event.tokens_per_sec)
            yield event
    finally:
        events.close()
    correction = correct_cache(trainer, speeds[SKIPPED_STEPS:])
    if correction:
        yield correction


def correct_cache(trainer: Trainer, speeds: list[float]) -> SpeedCorrected | None:
    """Put the run's pace in the cache when it differs from the cached figure by more than CHANGE."""
    rung = rung_of(trainer)
    if rung is None or len(speeds) < MIN_STEPS:
        return None
    cache = SpeedCache(trainer.device, timed_vocab(trainer.tokenizer.vocab_size), trainer.config)
    cached, age = cache.get(rung, trainer.dtype), cache.age(rung, trainer.dtype)
    pace = sorted(speeds)[int(PACE_QUANTILE * (len(speeds) - 1))]
    if not cached or abs(pace - cached) <= CHANGE * cached:
        return None
    cache.record(rung, trainer.dtype, pace)
    cache.save()
    return SpeedCorrected(rung, cached, pace, age)


def rung_of(trainer: Trainer) -> Rung | None:
    """The rung whose timing this run repeats: the same shape and batch, trained as the timing
    trains it (one process, not compiled); None for any other run."""
    config, model = trainer.config, trainer.model_config
    if trainer.world.is_distributed or config.compile:
        return None
    shape = (model.block_size, model.d_model, model.n_layers, model.n_heads, config.batch_size)
    return next((rung for rung in LADDER
                 if (rung.block_size, rung.d_model, rung.n_layers, rung.n_heads, rung.batch_size) == shape), None)
