"""Timed events of a fleet run, each a small typed value: autoscaler ticks, spot notices and stops, replicas
becoming ready. The fleet keeps them in a heap ordered by time, then by the order they were scheduled."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AutoscaleTick:
    """The autoscalers look at every pool (every `control_interval_s`)."""


@dataclass(frozen=True, slots=True)
class SpotNotice:
    """AWS's two-minute warning for a spot replica of a pool."""

    pool: int


@dataclass(frozen=True, slots=True)
class SpotStop:
    """The warned spot replica goes away."""

    pool: int


@dataclass(frozen=True, slots=True)
class ReplicaReady:
    """A launched replica of a pool starts serving (requests waiting for one can go)."""

    pool: int


Event = AutoscaleTick | SpotNotice | SpotStop | ReplicaReady


class EventQueue:
    """Events by time; ties keep the order in which they were scheduled."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Event]] = []
        self._order = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, when: float, event: Event) -> None:
        """Schedule `event` at `when`."""
        heapq.heappush(self._heap, (when, next(self._order), event))

    def next_time(self) -> float:
        """When the earliest event happens."""
        return self._heap[0][0]

    def pop_until(self, now: float) -> tuple[float, Event] | None:
        """The earliest event if it happens at or before `now`, removed from the queue; else None."""
        if not self._heap or self._heap[0][0] > now:
            return None
        when, _, event = heapq.heappop(self._heap)
        return when, event
