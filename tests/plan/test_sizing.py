"""The replica search: the smallest passing counts from the screened ones, found in few probes, stopped by cost."""

# A probe here is a rule, not the simulator: pool i passes with `need[i]` replicas or more, and the whole deployment
# passes when every pool does. Each test states the rule and asserts the counts found and the probes made.

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from fleetwise.plan.sizing import MAX_REPAIRS, MISSED, PASSED, STOPPED, ceiling, smallest_passing
from fleetwise.plan.verify import hour_step, peak_step


@dataclass(frozen=True)
class Verdict:
    """How far counts are from passing: `excess` <= 1 passes (like p95 over its SLO)."""

    excess: float

    @property
    def passed(self) -> bool:
        return self.excess <= 1.0


class Rule:
    """Pool i passes with need[i] replicas or more; its excess falls as need / count (or stays, when `flat`)."""

    def __init__(self, need: list[int], flat: bool = False) -> None:
        self.need, self.flat, self.probes = need, flat, []  # type: list[tuple[int, ...]]

    def __call__(self, counts: tuple[int, ...]) -> tuple[Verdict, list[Verdict]]:
        self.probes.append(counts)
        pools = [Verdict(1.5 if self.flat and c < n else n / c) for n, c in zip(self.need, counts, strict=True)]
        return Verdict(max(p.excess for p in pools)), pools


def _excess(verdict: Verdict) -> float:
    return verdict.excess


def test_counts_that_pass_at_once_are_probed_once() -> None:
    rule = Rule([4])
    sizing = smallest_passing(rule, (5,), peak_step, _excess)
    assert sizing.outcome == PASSED and sizing.counts == (5,) and rule.probes == [(5,)]


def test_small_pools_step_one_replica_at_a_time_to_the_exact_count() -> None:
    rule = Rule([8])
    sizing = smallest_passing(rule, (5,), peak_step, _excess)
    assert sizing.outcome == PASSED and sizing.counts == (8,)
    assert rule.probes == [(5,), (6,), (7,), (8,)]  # a tenth of a pool under 10 is one replica


def test_a_step_that_overshoots_is_bisected_back_to_the_smallest_count_that_passes() -> None:
    rule = Rule([97])
    sizing = smallest_passing(rule, (95,), peak_step, _excess)
    assert sizing.outcome == PASSED and sizing.counts == (97,)  # the old repair stopped at 105, its first pass
    assert rule.probes[:2] == [(95,), (105,)] and len(rule.probes) <= 2 + math.ceil(math.log2(10))
    rule = Rule([12])
    assert smallest_passing(rule, (10,), peak_step, _excess).counts == (12,)
    assert rule.probes == [(10,), (11,), (13,), (12,)]  # 11 -> 13 is a tenth of 11, rounded up; 12 is checked


def test_a_deployment_that_never_passes_misses_at_the_ceiling() -> None:
    rule = Rule([100])
    sizing = smallest_passing(rule, (10,), peak_step, _excess)
    assert sizing.outcome == MISSED and sizing.counts == (ceiling(10, peak_step),) == (17,)
    assert len(rule.probes) == MAX_REPAIRS + 1 and not sizing.verdict.passed
    hour = smallest_passing(Rule([9]), (3,), hour_step, _excess)
    assert hour.outcome == MISSED and hour.counts == (3 + MAX_REPAIRS,)  # an hour adds one replica per round


def test_the_search_gives_up_when_more_replicas_no_longer_help() -> None:
    rule = Rule([20], flat=True)  # a compiled batch: the same excess whatever the count, until far away
    sizing = smallest_passing(rule, (10,), peak_step, _excess)
    assert sizing.outcome == MISSED and rule.probes == [(10,), (11,)]


def test_the_pool_furthest_from_its_slo_grows_first_and_every_grown_pool_is_bisected() -> None:
    rule = Rule([10, 14])
    sizing = smallest_passing(rule, (10, 10), peak_step, _excess)
    assert sizing.outcome == PASSED and sizing.counts == (10, 14)
    assert all(c[0] == 10 for c in rule.probes)  # the first pool passes as it is: never grown


def test_the_search_stops_before_counts_that_would_cost_the_bound() -> None:
    rule = Rule([20])
    sizing = smallest_passing(rule, (10,), peak_step, _excess, cost=lambda c: 100.0 * c[0], bound=1250.0)
    assert sizing.outcome == STOPPED and sizing.counts == (13,)  # $1,300 >= $1,250: not simulated
    assert rule.probes == [(10,), (11,)] and not sizing.verdict.passed
    free = Rule([20])
    kept = smallest_passing(free, (10,), peak_step, _excess, cost=lambda c: 100.0 * c[0], bound=1250.0,
                            known=lambda counts: counts == (13,))  # that run was made already: it costs nothing
    assert free.probes == [(10,), (11,), (13,)] and kept.outcome == STOPPED and kept.counts == (15,)


def test_the_first_counts_are_probed_even_when_they_cost_the_bound() -> None:
    rule = Rule([4])
    sizing = smallest_passing(rule, (5,), peak_step, _excess, cost=lambda c: 100.0 * c[0], bound=1.0)
    assert sizing.outcome == PASSED and rule.probes == [(5,)]


@pytest.mark.parametrize("seed", range(30))
def test_the_counts_found_are_the_smallest_an_exhaustive_search_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = int(rng.integers(1, 60))
    need = int(rng.integers(1, 2 * start + 2))
    top = ceiling(start, peak_step)
    passing = [c for c in range(start, top + 1) if c >= need]  # every count from the floor to the ceiling
    rule = Rule([need])
    sizing = smallest_passing(rule, (start,), peak_step, _excess)
    if passing:
        assert sizing.outcome == PASSED and sizing.counts == (passing[0],)
        assert (passing[0] - 1,) in rule.probes or passing[0] == start  # its neighbour below was seen to miss
    else:
        assert sizing.outcome == MISSED
    assert len(rule.probes) == len(set(rule.probes))  # no counts probed twice
    assert len(rule.probes) <= MAX_REPAIRS + 1 + math.ceil(math.log2(max(peak_step(top), 1)))
