"""The fewest replicas that pass a check: step up from the screened counts, then bisect the last step.

Screening sizes every pool first, and its counts are the floor. A probe checks one set of counts (the caller keeps
every run, so counts tried before, or by an option that behaves the same, cost nothing). While the deployment misses,
the pool furthest from its SLO grows by `step(count)`, never past what MAX_REPAIRS such rounds reach. Once the
deployment passes, each grown pool is bisected between its last missing count and its passing one, so the counts
returned are the smallest that passed, not the last step taken. The search gives up (missed) when a probe comes no
closer to the SLO than the one before (a compiled batch that sets TPOT whatever the load) or every pool is at its
ceiling, and stops (stopped) when the next counts would cost at least `bound`: the deployment could no longer win.

Stepping, not galloping (doubling the step after each miss): the screened count is rarely more than a few steps
short, and within MAX_REPAIRS steps a doubling search never takes fewer probes than steps plus one bisection
(a miss two steps short: 3 probes stepping, 4 galloping), so the cheaper search is the plain one, bisected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

MAX_REPAIRS = 4  # rounds of `step` that bound the replicas added, before a deployment misses the SLO in simulation
HELPS = 0.99  # a probe must come at least 1% closer to the SLO than the one before it, or the search gives up
PASSED, MISSED, STOPPED = "passed", "missed", "stopped"


class Verdict(Protocol):
    """What a probe answers: whether the counts passed."""

    @property
    def passed(self) -> bool:
        """True when the counts hold the SLOs."""
        ...


V = TypeVar("V", bound=Verdict)
Probe = Callable[[tuple[int, ...]], tuple[V, Sequence[V]]]  # counts -> the whole deployment's verdict and each pool's


@dataclass(frozen=True)
class Sizing(Generic[V]):
    """Where the search ended: the counts, their verdict, and how it ended (PASSED, MISSED or STOPPED)."""

    counts: tuple[int, ...]  # passed: the smallest found; missed: the last probed; stopped: the next, never probed
    verdict: V  # the verdict at `counts` (stopped: at the last counts probed)
    outcome: str


def ceiling(count: int, step: Callable[[int], int]) -> int:
    """The most replicas MAX_REPAIRS rounds of `step` reach from `count`."""
    for _ in range(MAX_REPAIRS):
        count += step(count)
    return count


def smallest_passing(probe: Probe[V], start: Sequence[int], step: Callable[[int], int], excess: Callable[[V], float],
                     cost: Callable[[tuple[int, ...]], float] | None = None, bound: float = math.inf,
                     known: Callable[[tuple[int, ...]], bool] = lambda counts: False) -> Sizing[V]:
    """The smallest counts from `start` up that pass `probe`; `excess` says how far a verdict is from the SLOs and
    `cost` what counts cost (USD), stopping when they would cost at least `bound` unless `known` says their probe
    costs nothing (its runs were kept)."""
    counts = tuple(start)
    top = [ceiling(c, step) for c in counts]
    missing = [c - 1 for c in counts]  # per pool, the highest count known to miss (below the floor: none)
    whole, pools = probe(counts)
    previous = excess(whole)
    while not whole.passed:
        growable = [i for i, c in enumerate(counts) if c < top[i]]
        if not growable:
            return Sizing(counts, whole, MISSED)
        worst = max(growable, key=lambda i: excess(pools[i]))
        trial = _with(counts, worst, min(counts[worst] + step(counts[worst]), top[worst]))
        if cost is not None and not known(trial) and cost(trial) >= bound:
            return Sizing(trial, whole, STOPPED)
        missing[worst], counts = counts[worst], trial
        whole, pools = probe(counts)
        if not whole.passed and excess(whole) > previous * HELPS:
            return Sizing(counts, whole, MISSED)
        previous = excess(whole)
    for pool, low in enumerate(missing):
        while counts[pool] - low > 1:
            trial = _with(counts, pool, (low + counts[pool]) // 2)
            verdict, _ = probe(trial)
            if verdict.passed:
                counts, whole = trial, verdict
            else:
                low = trial[pool]
    return Sizing(counts, whole, PASSED)


def _with(counts: tuple[int, ...], pool: int, count: int) -> tuple[int, ...]:
    return (*counts[:pool], count, *counts[pool + 1:])
