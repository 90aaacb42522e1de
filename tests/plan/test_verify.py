"""Verification in the simulator: p95 checks, replicas sized while they help and could win, the day riskiest hour
first, runs shared between options, hours and plans."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.plan.capacity import Option, build_options
from fleetwise.plan.context import PlanContext
from fleetwise.plan.costing import Deployment, PoolPlan, buy_pool
from fleetwise.plan.demand import build_demand
from fleetwise.plan.sizing import MAX_REPAIRS, Sizing
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import Check, Runs, Verifier, _assign, _check
from tests.plan.synthetic import option

SPEC = PlanSpec(purchase=["on-demand"], startup_s=0)  # SLOs 1000 ms TTFT, 100 ms TPOT
DAY = np.array([5] * 12 + [10] * 12)  # replicas: 5 in the quiet half of the day, 10 at the peak


# --- the p95 rule and the routing shares -----------------------------------------------------------------------


def test_a_check_passes_when_both_p95s_are_within_the_slos() -> None:
    ttft = np.linspace(0.1, 0.9, 100)  # seconds
    tpot = np.full(100, 0.05)
    check = _check(SPEC, ttft, tpot)
    assert check.passed and check.requests == 100 and check.goodput == 1.0
    assert check.ttft_ms_p95 == pytest.approx(float(np.percentile(ttft, 95)) * 1e3, abs=0.01)
    assert check.tpot_ms_p95 == pytest.approx(50.0)


def test_a_check_fails_on_the_p95_even_when_most_requests_meet_the_slo() -> None:
    ttft = np.array([0.2] * 90 + [1.5] * 10)  # 10% over 1 s: the p95 is over
    check = _check(SPEC, ttft, np.full(100, 0.05))
    assert not check.passed and check.goodput == pytest.approx(0.9)
    slow_tokens = _check(SPEC, np.full(100, 0.2), np.array([0.05] * 90 + [0.2] * 10))
    assert not slow_tokens.passed and slow_tokens.goodput == pytest.approx(0.9)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the p95 of infinities
def test_dropped_requests_miss_every_slo() -> None:
    ttft = np.array([0.2] * 90 + [np.inf] * 10)
    check = _check(SPEC, ttft, np.full(100, 0.05))
    assert not check.passed and check.ttft_ms_p95 is None and check.goodput == pytest.approx(0.9)


def test_single_token_outputs_have_no_tpot_and_do_not_fail_it() -> None:
    check = _check(SPEC, np.full(10, 0.2), np.full(10, np.nan))
    assert check.passed and check.tpot_ms_p95 is None and check.goodput == 1.0


def test_an_empty_window_passes() -> None:
    assert _check(SPEC, np.array([]), np.array([])) == Check(None, None, 1.0, 0, True)


def _pool(name: str, share: list[float], replicas: np.ndarray = DAY, capacity: list[float] | None = None) -> PoolPlan:
    return buy_pool(SPEC, option(name, capacity or [1.0] * len(share), 1.0), np.array(share), replicas)


def test_requests_are_routed_in_each_buckets_shares() -> None:
    pools = [_pool("a.x", [0.25, 1.0]), _pool("b.x", [0.75, 0.0])]
    bucket_of = np.array([0] * 20000 + [1] * 1000)
    owner = _assign(pools, bucket_of, bucket_of, seed=1)  # type: ignore[arg-type]  # only len(requests) is read
    assert np.mean(owner[:20000] == 0) == pytest.approx(0.25, abs=0.02)
    assert (owner[20000:] == 0).all()  # the second bucket goes only where it is sent
    assert (_assign(pools[:1], bucket_of, bucket_of, seed=1) == 0).all()  # type: ignore[arg-type]


# --- sizing: replicas added while the p95 misses (the simulator replaced by a rule) -------------------------------


def _verifier(needed: list[int], calls: list[list[int]], spec: PlanSpec = SPEC,
              improves: bool = True) -> Verifier:
    """A Verifier whose simulation says pool i holds its SLO with `needed[i]` replicas (TTFT falls with more)."""
    demand = SimpleNamespace(peak_requests=None, buckets=SimpleNamespace(of_request=None))
    verifier = Verifier(SimpleNamespace(spec=spec, demand=demand))  # type: ignore[arg-type]

    def simulate(pools: list[PoolPlan], counts: list[int], *_: object) -> tuple[Check, list[Check]]:
        calls.append(list(counts))
        per_pool = []
        for need, count in zip(needed, counts, strict=True):
            ttft = spec.slo.ttft_p95_ms * (need / count if improves else 1.5)
            per_pool.append(Check(ttft, 10.0, 1.0, 100, ttft <= spec.slo.ttft_p95_ms))
        worst = max(per_pool, key=lambda c: c.ttft_ms_p95 or 0.0)
        return Check(worst.ttft_ms_p95, 10.0, 1.0, 100 * len(counts), all(c.passed for c in per_pool)), per_pool

    verifier.simulate = simulate  # type: ignore[method-assign]
    return verifier


def test_a_deployment_that_passes_the_peak_is_left_as_it_was() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0])], "single")
    peak = _verifier([10], calls).peak(deployment)
    assert peak.check.passed and peak.added == 0 and peak.deployment is deployment and calls == [[10]]
    assert not peak.stopped


def test_the_peak_check_finds_the_fewest_replicas_that_pass_and_scales_every_hour() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0])], "single")
    peak = _verifier([12], calls).peak(deployment)
    assert calls == [[10], [11], [13], [12]]  # +1 (10% of 10), +2 (10% of 11, rounded up), then back to 12
    assert peak.check.passed and peak.added == 2  # the old repair kept 13, its first count that passed
    assert list(peak.deployment.pools[0].replicas) == [6] * 12 + [12] * 12  # quiet hours scaled by 12/10
    assert peak.deployment.monthly_usd > deployment.monthly_usd
    assert list(deployment.pools[0].replicas) == list(DAY)  # the screened deployment is not changed


def test_replicas_go_to_the_pool_furthest_from_its_slo() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0, 0.0]), _pool("b.x", [0.0, 1.0])], "mix")
    peak = _verifier([10, 12], calls).peak(deployment)
    assert calls[1] == [10, 11] and peak.check.passed
    assert peak.deployment.pools[0].replicas.max() == 10 and peak.deployment.pools[1].replicas.max() == 12
    assert peak.added == 2


def test_repairs_stop_after_max_repairs_rounds() -> None:
    calls: list[list[int]] = []
    peak = _verifier([100], calls).peak(Deployment([_pool("a.x", [1.0])], "single"))
    assert len(calls) == MAX_REPAIRS + 1 and not peak.check.passed and not peak.stopped
    assert peak.added == calls[-1][0] - 10


def test_repairs_stop_when_more_replicas_no_longer_help() -> None:
    calls: list[list[int]] = []
    peak = _verifier([10], calls, improves=False).peak(Deployment([_pool("a.x", [1.0])], "single"))
    assert not peak.check.passed and len(calls) == 2  # one round added, no closer to the SLO: stop


def test_replicas_stop_being_added_once_the_deployment_would_cost_the_bound() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0])], "single")
    peak = _verifier([14], calls).peak(deployment, bound=deployment.monthly_usd * 1.15)
    assert calls == [[10], [11]]  # 13 replicas would cost more than 1.15 x 10: never simulated
    assert peak.stopped and not peak.check.passed and peak.deployment.pools[0].replicas.max() == 13
    assert peak.deployment.monthly_usd >= deployment.monthly_usd * 1.15  # the cost is a lower bound


# --- the day, riskiest hours first (the hour's simulation replaced) ----------------------------------------------


def _day_verifier(arrivals: list[float], verdict: dict[int, tuple[bool, int]],
                  calls: list[int]) -> Verifier:
    """A Verifier whose hour check passes, or fails, or passes with replicas added: verdict[hour] = (passes, added).
    The load of each hour is its arrivals (one bucket, one request/s per replica at the screening target)."""
    demand = SimpleNamespace(arrivals_per_s=lambda hour: arrivals[hour], bucket_rates=np.array(arrivals)[:, None])
    verifier = Verifier(SimpleNamespace(spec=SPEC, demand=demand))  # type: ignore[arg-type]

    def size_hour(deployment: Deployment, replicas: list[np.ndarray], hour: int, bound: float) -> Sizing[Check]:
        calls.append(hour)
        passes, extra = verdict.get(hour, (True, 0))
        counts = tuple(int(r[hour]) + extra for r in replicas)
        return Sizing(counts, Check(100.0, 10.0, 1.0, 50, passes), "passed" if passes else "missed")

    verifier._size_hour = size_hour  # type: ignore[method-assign]
    return verifier


def test_hours_alike_are_simulated_once() -> None:
    calls: list[int] = []
    flat = Deployment([_pool("a.x", [1.0], np.full(24, 3))], "single")
    day = _day_verifier([2.0] * 24, {}, calls).day(flat)
    assert calls == [0] and len(day.checks) == 24 and day.passed and day.deployment is flat
    diurnal = Deployment([_pool("a.x", [1.0])], "single")
    calls.clear()
    _day_verifier([1.0] * 12 + [2.0] * 12, {}, calls).day(diurnal)
    assert calls == [0, 12]  # as busy per replica: in hour order


def test_an_hour_without_arrivals_is_not_simulated() -> None:
    calls: list[int] = []
    arrivals = [0.0] * 6 + [1.0] * 18
    day = _day_verifier(arrivals, {}, calls).day(Deployment([_pool("a.x", [1.0])], "single"))
    assert 0 not in calls and day.checks[0] == Check(None, None, 1.0, 0, True)


def test_the_busiest_hours_per_replica_are_checked_first_and_the_first_miss_ends_the_day() -> None:
    calls: list[int] = []
    arrivals = [float(h + 1) for h in range(24)]  # every hour different; 5 replicas until noon, then 10
    verifier = _day_verifier(arrivals, {10: (False, 0)}, calls)
    day = verifier.day(Deployment([_pool("a.x", [1.0])], "single"))
    assert calls == [11, 23, 22, 10]  # 12/5 and 24/10 requests/s per replica, 23/10, then 11/5: it misses there
    assert day.missed == 10 and not day.passed and not day.checks[10].passed and set(day.checks) == {11, 23, 22, 10}


def test_an_hour_repaired_gets_its_replicas_and_nothing_else_changes() -> None:
    calls: list[int] = []
    arrivals = [float(h + 1) for h in range(24)]
    given = Deployment([_pool("a.x", [1.0])], "single")
    day = _day_verifier(arrivals, {14: (True, 2)}, calls).day(given)
    assert day.passed and len(day.checks) == 24 and [c.passed for c in day.by_hour()] == [True] * 24
    expected = DAY.copy()
    expected[14] += 2
    assert list(day.deployment.pools[0].replicas) == list(expected)
    assert list(given.pools[0].replicas) == list(DAY)  # the deployment passed in is unchanged
    assert day.deployment.monthly_usd == pytest.approx(given.monthly_usd * (DAY.sum() + 2) / DAY.sum())


def test_the_day_stops_once_replicas_added_make_it_cost_the_bound() -> None:
    calls: list[int] = []
    arrivals = [float(h + 1) for h in range(24)]
    given = Deployment([_pool("a.x", [1.0])], "single")
    day = _day_verifier(arrivals, {23: (True, 2)}, calls).day(given, bound=given.monthly_usd * 1.01)
    assert day.stopped and not day.passed and day.missed is None
    assert calls == [11, 23]  # hour 23 needed two more replicas: it can no longer win, no more hours checked
    assert day.deployment.monthly_usd >= given.monthly_usd * 1.01


# --- the real simulator ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def g6e(catalog: Catalog, calibration: CalibrationTable) -> tuple[PlanContext, list[Option]]:
    """Llama-3.1-8B on chat-diurnal, one L40S shape on two instance sizes (xlarge: 1 GPU, 12xlarge: 4)."""
    spec = PlanSpec(instances=["g6e.xlarge", "g6e.12xlarge"], dtypes=["bf16"], engines=["vllm"])
    model = load_model(spec.model)
    demand = build_demand(spec, model)
    options, _ = build_options(spec, model, demand, catalog, calibration)
    by_instance = {o.instance: o for o in options if o.tp == 1}
    return PlanContext(spec, model, demand, catalog, calibration), [by_instance["g6e.xlarge"],
                                                                    by_instance["g6e.12xlarge"]]


def test_an_hour_that_misses_gets_one_replica_at_a_time_for_at_most_max_repairs_rounds(
        g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    verifier = Verifier(context)  # real hourly windows; the simulator replaced by a rule
    need, tried = 3, []

    def simulate(pools: list[PoolPlan], counts: list[int], *_: object) -> tuple[Check, list[Check]]:
        tried.append(counts[0])  # the hour holds its SLO with `need` replicas
        ttft = context.spec.slo.ttft_p95_ms * need / counts[0]
        check = Check(ttft, 10.0, 1.0, 100, ttft <= context.spec.slo.ttft_p95_ms)
        return check, [check]

    verifier.simulate = simulate  # type: ignore[method-assign]
    one = Deployment([buy_pool(context.spec, xlarge, np.ones(len(context.demand.buckets)),
                               np.ones(24, dtype=np.int64))], "single")
    day = verifier.day(one)
    assert day.passed and len(day.checks) == 24
    assert (day.deployment.pools[0].replicas == need).all() and tried[:3] == [1, 2, 3]
    need, tried = 1 + MAX_REPAIRS + 1, []
    day = verifier.day(one)
    assert len(day.checks) == 1 and day.missed is not None  # the day stops at the first hour that misses
    assert tried == list(range(1, MAX_REPAIRS + 2))  # one replica added per round, MAX_REPAIRS rounds


def _starved(context: PlanContext, chosen: Option) -> tuple[Deployment, np.ndarray]:
    given = np.ones(24, dtype=np.int64)
    share = np.ones(len(context.demand.buckets))
    return Deployment([buy_pool(context.spec, chosen, share, given)], "single"), given


def test_verification_adds_replicas_when_screening_was_optimistic(g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    starved, _ = _starved(context, xlarge)  # one replica all day for a peak that needs two
    peak = Verifier(context).peak(starved)
    check, grown = peak.check, peak.deployment
    assert check.passed and check.requests == len(context.demand.peak_requests)
    assert peak.added >= 1 and grown.pools[0].replicas.max() == 1 + peak.added
    assert grown.monthly_usd > starved.monthly_usd
    assert check.ttft_ms_p95 is not None and check.ttft_ms_p95 <= context.spec.slo.ttft_p95_ms


def test_day_check_leaves_the_deployment_it_was_given_unchanged(g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    starved, given = _starved(context, xlarge)
    day = Verifier(context).day(starved)
    grown = day.deployment
    assert (starved.pools[0].replicas == 1).all() and (given == 1).all()  # neither the pool nor the caller's array
    assert grown.pools[0].replicas.max() > 1 and day.passed and len(day.checks) == 24
    assert grown.monthly_usd > starved.monthly_usd
    quiet = int(np.argmin(context.demand.hourly_rate))
    assert grown.pools[0].replicas[quiet] == 1  # the quiet night needs no more than one


def test_options_alike_on_different_instance_sizes_share_their_runs(g6e: tuple[PlanContext, list[Option]],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    context, (xlarge, twelve) = g6e
    runs: list[str] = []
    real_run = Verifier._run

    def counted(self: Verifier, chosen: Option, replicas: int, requests: object) -> tuple[np.ndarray, np.ndarray]:
        runs.append(chosen.instance)
        return real_run(self, chosen, replicas, requests)  # type: ignore[arg-type]

    monkeypatch.setattr(Verifier, "_run", counted)
    verifier = Verifier(context)
    replicas = np.full(24, 2, dtype=np.int64)
    share = np.ones(len(context.demand.buckets))
    first = verifier.peak(Deployment([buy_pool(context.spec, xlarge, share, replicas)], "single"))
    second = verifier.peak(Deployment([buy_pool(context.spec, twelve, share, replicas)], "single"))
    assert runs == ["g6e.xlarge"]  # same GPU, TP, dtype and batch: one simulation for both
    assert first.check == second.check and verifier.runs.simulations == 1
    assert math.isclose(first.deployment.pools[0].replicas.max(), second.deployment.pools[0].replicas.max())


def test_a_verifier_given_another_ones_runs_simulates_nothing_again(g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    starved, _ = _starved(context, xlarge)
    runs = Runs()
    first = Verifier(context, runs).peak(starved)
    made = runs.simulations
    assert made >= 2 and runs.requests >= made * 1000  # the peak window at each count tried
    again = Verifier(context, runs).peak(starved)  # e.g. a what-if that changes only prices
    assert runs.simulations == made and again.check == first.check and again.added == first.added
