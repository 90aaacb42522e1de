"""The replicas a router compares, kept so that choosing the least busy one costs O(log R), not O(R), per arrival.

Two heaps over the same replicas, each holding every replica once and re-ordered in place when its key changes:
- by next change (`ReplicaSim.next_change`: the end of the decode stretch under way, just after the clock when there
  is prompt work, never when idle): on an arrival at t only the replicas whose next change is at or before t are
  brought up to t (`catch_up`); every other one has nothing to run before t, so its count is already current;
- by requests outstanding, then replica number: the least busy replica, lowest number on ties.

The roster sees every change it is told of: its own catch-ups and `placed` (a request routed to a replica). Anything
else that moves replicas (the autoscaler advancing them, a spot replica going away, a replica starting or being
drained) makes the router build a new roster.
"""

from __future__ import annotations

import math

from fleetwise.sim.replica import ReplicaSim


class KeyedHeap:
    """Items 0..n-1 in a binary heap by key, smallest first; `update` moves an item in place (a plain class with
    typed lists: compiled by mypyc, no tuple is built per operation). Equal keys come out in no set order."""

    __slots__ = ("heap", "keys", "slot")

    def __init__(self, keys: list[float]) -> None:
        self.keys = keys
        self.heap: list[int] = list(range(len(keys)))  # items in heap order
        self.slot: list[int] = list(range(len(keys)))  # item -> its place in `heap`
        for place in range(len(keys) // 2 - 1, -1, -1):  # heapify
            self._down(place, self.heap[place], keys[self.heap[place]])

    def top(self) -> int:
        """The item with the smallest key."""
        return self.heap[0]

    def top_key(self) -> float:
        """The smallest key (inf when empty)."""
        return self.keys[self.heap[0]] if self.heap else math.inf

    def update(self, item: int, key: float) -> None:
        """Give `item` a new key and move it to its place."""
        old = self.keys[item]
        self.keys[item] = key
        if key < old:
            self._up(self.slot[item], item, key)
        elif key > old:
            self._down(self.slot[item], item, key)

    def _up(self, place: int, item: int, key: float) -> None:
        heap, slot, keys = self.heap, self.slot, self.keys
        while place > 0:
            parent = (place - 1) >> 1
            above = heap[parent]
            if not key < keys[above]:
                break
            heap[place] = above
            slot[above] = place
            place = parent
        heap[place] = item
        slot[item] = place

    def _down(self, place: int, item: int, key: float) -> None:
        heap, slot, keys = self.heap, self.slot, self.keys
        size = len(heap)
        child = 2 * place + 1
        while child < size:
            child_key = keys[heap[child]]
            if child + 1 < size:
                right_key = keys[heap[child + 1]]
                if right_key < child_key:
                    child += 1
                    child_key = right_key
            if not child_key < key:
                break
            below = heap[child]
            heap[place] = below
            slot[below] = place
            place = child
            child = 2 * place + 1
        heap[place] = item
        slot[item] = place


class Roster:
    """Replicas by next change and by requests outstanding (a plain class: mypyc compiles it)."""

    __slots__ = ("due", "least", "position", "rank", "sims", "span")

    def __init__(self, sims: list[ReplicaSim]) -> None:
        self.sims = sims
        self.position: dict[int, int] = {sim.index: p for p, sim in enumerate(sims)}  # replica number -> position
        self.rank: list[int] = [0] * len(sims)  # position -> order of its replica number: ties go to the lowest
        for order, p in enumerate(sorted(range(len(sims)), key=lambda q: sims[q].index)):
            self.rank[p] = order
        self.span = float(len(sims))
        self.due = KeyedHeap([sim.next_change() for sim in sims])
        self.least = KeyedHeap([self._load(p) for p in range(len(sims))])

    def _load(self, p: int) -> float:
        """Requests outstanding, then replica number, as one key (exact while outstanding x replicas < 2^53)."""
        return self.sims[p].outstanding * self.span + self.rank[p]

    def catch_up(self, now: float) -> None:
        """Bring up to `now` every replica that has something to run before it (see `ReplicaSim.catch_up`)."""
        due = self.due
        while due.top_key() <= now:
            p = due.top()
            sim = self.sims[p]
            sim.catch_up(now)
            # caught up, a replica next changes after `now` (`next_change`); the guard only keeps this loop finite
            due.update(p, max(sim.next_change(), math.nextafter(now, math.inf)))
            self.least.update(p, self._load(p))

    def least_busy(self) -> int:
        """Position of the replica with the fewest requests outstanding (lowest replica number on ties)."""
        return self.least.top()

    def holds(self, replica: int) -> bool:
        """Whether the replica numbered `replica` is on this roster."""
        return replica in self.position

    def placed(self, replica: int) -> None:
        """A request was routed to the replica numbered `replica` (it was advanced to the arrival and queued it)."""
        p = self.position[replica]
        self.due.update(p, self.sims[p].next_change())
        self.least.update(p, self._load(p))
