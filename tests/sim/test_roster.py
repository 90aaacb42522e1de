"""The roster a router compares: only replicas due by an arrival are caught up, the least busy is found as a full
scan would find it (lowest number on ties), and its heaps keep every replica once, in order, as keys move."""

from __future__ import annotations

import math

import numpy as np

from fleetwise.sim.roster import KeyedHeap, Roster


class _Replica:
    """A replica reduced to what a roster reads: scripted completions at given times."""

    def __init__(self, index: int, outstanding: int = 0) -> None:
        self.index = index
        self.outstanding = outstanding
        self.finishes: list[float] = []  # completion times still ahead, sorted
        self.caught_up: list[bool] = []  # per `catch_up` call: whether it had anything to run

    def next_change(self) -> float:
        return self.finishes[0] if self.finishes else math.inf

    def catch_up(self, now: float) -> None:
        self.caught_up.append(self.next_change() <= now)
        while self.finishes and self.finishes[0] <= now:
            self.finishes.pop(0)
            self.outstanding -= 1

    def take(self, finish: float) -> None:
        """A request arrives; it will finish at `finish`."""
        self.outstanding += 1
        self.finishes = sorted([*self.finishes, finish])


def _scan(replicas: list[_Replica], now: float) -> int:
    """What a router did before: catch every replica up, then the fewest outstanding, lowest number on ties."""
    for replica in replicas:
        replica.catch_up(now)
    return min(range(len(replicas)), key=lambda p: (replicas[p].outstanding, replicas[p].index))


def test_the_least_busy_is_the_fewest_outstanding_then_the_lowest_number() -> None:
    replicas = [_Replica(5, 2), _Replica(9, 1), _Replica(2, 1), _Replica(7, 3)]
    roster = Roster(replicas)  # type: ignore[arg-type]
    assert roster.least_busy() == 2  # replica 2 beats replica 9 on the tie
    replicas[2].take(10.0)
    roster.placed(2)
    assert roster.least_busy() == 1
    assert roster.holds(7) and not roster.holds(3)


def test_only_replicas_due_by_the_arrival_are_caught_up_and_choices_match_a_full_scan() -> None:
    rng = np.random.default_rng(0)
    count = 40
    replicas, shadow = [_Replica(i) for i in range(count)], [_Replica(i) for i in range(count)]
    roster = Roster(replicas)  # type: ignore[arg-type]
    now = 0.0
    for _ in range(3000):
        now += float(rng.exponential(0.01))
        roster.catch_up(now)
        chosen = roster.least_busy()
        assert chosen == _scan(shadow, now)
        finish = now + float(rng.exponential(0.3))
        for group in (replicas, shadow):
            group[chosen].take(finish)
        roster.placed(chosen)
    calls = [due for r in replicas for due in r.caught_up]
    assert all(calls) and len(calls) <= 3000  # every call ran a completion; a scan makes one per replica...
    assert sum(len(r.caught_up) for r in shadow) == 3000 * count
    assert sum(sum(r.caught_up) for r in shadow) <= 3000  # ...of which as few had anything to run


def test_a_keyed_heap_keeps_the_smallest_key_on_top_as_keys_move() -> None:
    rng = np.random.default_rng(4)
    keys = rng.permutation(50).astype(float).tolist()
    heap = KeyedHeap(list(keys))
    for _ in range(3000):
        assert heap.top() == int(np.argmin(keys)) and heap.top_key() == min(keys)
        item = int(rng.integers(50))
        keys[item] = float(rng.integers(0, 10_000)) + rng.random() if rng.random() < 0.95 else math.inf
        heap.update(item, keys[item])
    assert sorted(heap.heap) == list(range(50))  # every item once, however often it moved
    assert all(heap.heap[heap.slot[i]] == i for i in range(50))
    assert math.isinf(KeyedHeap([]).top_key())
