"""The loss chart's curves: a series of bounded size, however long training runs.

A curve drawn live must be the one drawn again when the app reopens the run
from its metrics log. So a series keeps only the steps the log keeps (a
multiple of `every`), and groups them by step number, never by when they
arrived: the steps in (k-1)w+1 .. kw form bucket k, drawn as their mean.
When there are more than `capacity` buckets, the width w doubles and each
pair of neighbours becomes one. Whatever the batches the points came in, the
same points give the same curve, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class DownsampledSeries:
    """Points of a few numbers each, the step first, e.g. (step, seconds, loss),
    in at most `capacity` buckets (and the first point, kept as it is: where
    the curve starts)."""

    def __init__(self, capacity: int = 512, every: int = 1) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.every = every  # only steps that are a multiple of this are kept
        self.width = every  # steps per bucket
        self._first: tuple[float, ...] | None = None
        self._buckets: dict[int, tuple[list[float], int]] = {}  # bucket -> (sums of each number, count)

    def __len__(self) -> int:
        return len(self._buckets) + (self._first is not None)

    @property
    def points(self) -> list[tuple[float, ...]]:
        """The first point, then the mean of each bucket, in step order."""
        means = [tuple(total / count for total in sums) for _, (sums, count) in sorted(self._buckets.items())]
        return [self._first, *means] if self._first is not None else means

    def column(self, index: int) -> list[float]:
        """One number of every point: column(0) of (step, seconds, loss) points is the steps."""
        return [point[index] for point in self.points]

    def extend(self, points: Iterable[Sequence[float]]) -> None:
        for point in points:
            if self.every == 1 or point[0] % self.every == 0:  # the Lab's x is seconds, not a step
                self._add(tuple(point))

    def _add(self, point: tuple[float, ...]) -> None:
        if self._first is None:
            self._first = point
            return
        key = self._bucket(point[0])
        sums, count = self._buckets.get(key, ([0.0] * len(point), 0))
        self._buckets[key] = ([total + value for total, value in zip(sums, point, strict=True)], count + 1)
        if len(self._buckets) > self.capacity:
            self._widen()

    def _bucket(self, step: float) -> int:
        return -int(-step // self.width)  # ceil(step / width): bucket k holds steps (k-1)w+1 .. kw

    def _widen(self) -> None:
        """Twice the steps per bucket: each pair of neighbouring buckets becomes one."""
        self.width *= 2
        merged: dict[int, tuple[list[float], int]] = {}
        for key, (sums, count) in sorted(self._buckets.items()):
            new = -(-key // 2)
            if new in merged:
                totals, seen = merged[new]
                merged[new] = ([a + b for a, b in zip(totals, sums, strict=True)], seen + count)
            else:
                merged[new] = (sums, count)
        self._buckets = merged
