"""The loss chart's curves: a series of bounded size, however long training runs."""

from __future__ import annotations

from collections.abc import Iterable


class DownsampledSeries:
    """(x, y) points, at most `capacity` of them. When full, neighbouring
    pairs are merged into their mean, halving the resolution of the old
    points, so memory and plotting time stay flat over a long run while the
    curve keeps its shape."""

    def __init__(self, capacity: int = 512) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.xs: list[float] = []
        self.ys: list[float] = []

    def __len__(self) -> int:
        return len(self.xs)

    def extend(self, points: Iterable[tuple[float, float]]) -> None:
        for x, y in points:
            self.xs.append(x)
            self.ys.append(y)
            if len(self.xs) > self.capacity:
                self._halve()

    def _halve(self) -> None:
        xs, ys = self.xs, self.ys
        last = len(xs) % 2  # an odd point out stays as it is
        self.xs = [(xs[i] + xs[i + 1]) / 2 for i in range(0, len(xs) - last, 2)] + xs[len(xs) - last:]
        self.ys = [(ys[i] + ys[i + 1]) / 2 for i in range(0, len(ys) - last, 2)] + ys[len(ys) - last:]

    def clear(self) -> None:
        self.xs, self.ys = [], []
