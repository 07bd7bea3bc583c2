"""The loss chart's curves: a series of bounded size, however long training runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class DownsampledSeries:
    """Points of a few numbers each, e.g. (step, seconds, loss), at most
    `capacity` of them. When full, neighbouring pairs are merged into their
    mean, halving the resolution of the old points, so memory and plotting
    time stay flat over a long run while the curve keeps its shape."""

    def __init__(self, capacity: int = 512) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.points: list[tuple[float, ...]] = []

    def __len__(self) -> int:
        return len(self.points)

    def column(self, index: int) -> list[float]:
        """One number of every point: column(0) of (step, seconds, loss) points is the steps."""
        return [point[index] for point in self.points]

    def extend(self, points: Iterable[Sequence[float]]) -> None:
        for point in points:
            self.points.append(tuple(point))
            if len(self.points) > self.capacity:
                self._halve()

    def _halve(self) -> None:
        points = self.points
        last = len(points) % 2  # an odd point out stays as it is
        merged = [tuple((a + b) / 2 for a, b in zip(points[i], points[i + 1], strict=True))
                  for i in range(0, len(points) - last, 2)]
        self.points = merged + points[len(points) - last:]
