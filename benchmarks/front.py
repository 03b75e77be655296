"""The accuracy-latency front of a set of cells, and how far other cells stand from it.

A point is ``(latency, accuracy, cell)``: lower latency and higher accuracy are better.
"""

from __future__ import annotations

import bisect
from typing import Sequence

Point = tuple[float, float, str]


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points that no other point beats: none as fast or faster is as accurate. By latency."""
    front: list[Point] = []
    for latency, accuracy, cell in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((latency, accuracy, cell))
    return front


def front_accuracy(front: Sequence[Point], latency: float) -> float:
    """The best accuracy of a front's cells no slower than ``latency`` (the fastest cell's if none is)."""
    index = bisect.bisect_right([p[0] for p in front], latency) - 1
    return front[max(index, 0)][1]


def hypervolume(points: Sequence[Point], reference: tuple[float, float]) -> float:
    """The area the points dominate beyond ``reference`` (latency, accuracy): every (x, y) with
    x at most ``reference``'s latency and y at least its accuracy that some point is as fast as
    and as accurate as."""
    slowest, lowest = reference
    inside = [p for p in points if p[0] < slowest and p[1] > lowest]
    front = pareto_front(inside)
    ends = [p[0] for p in front[1:]] + [slowest]
    return sum((end - latency) * (accuracy - lowest) for (latency, accuracy, _), end in zip(front, ends))
