"""Verification in the simulator: p95 checks, replicas added while they help, the day hour by hour, shared runs."""

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
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import MAX_REPAIRS, Check, Verifier, _assign, _check
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


# --- repairs: replicas added while the p95 misses (the simulator replaced by a rule) ------------------------------


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
    grown, check, added = _verifier([10], calls).peak(deployment)
    assert check.passed and added == 0 and grown is deployment and calls == [[10]]


def test_the_peak_check_adds_a_tenth_of_the_pool_at_a_time_and_scales_every_hour() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0])], "single")
    grown, check, added = _verifier([12], calls).peak(deployment)
    assert calls == [[10], [11], [13]]  # +1 (10% of 10), then +2 (10% of 11, rounded up)
    assert check.passed and added == 3
    assert list(grown.pools[0].replicas) == [7] * 12 + [13] * 12  # quiet hours scaled by 13/10, rounded up
    assert grown.monthly_usd > deployment.monthly_usd
    assert list(deployment.pools[0].replicas) == list(DAY)  # the screened deployment is not changed


def test_replicas_go_to_the_pool_furthest_from_its_slo() -> None:
    calls: list[list[int]] = []
    deployment = Deployment([_pool("a.x", [1.0, 0.0]), _pool("b.x", [0.0, 1.0])], "mix")
    grown, check, added = _verifier([10, 12], calls).peak(deployment)
    assert calls[1] == [10, 11] and check.passed
    assert grown.pools[0].replicas.max() == 10 and grown.pools[1].replicas.max() == added + 10


def test_repairs_stop_after_max_repairs_rounds() -> None:
    calls: list[list[int]] = []
    _, check, added = _verifier([100], calls).peak(Deployment([_pool("a.x", [1.0])], "single"))
    assert len(calls) == MAX_REPAIRS + 1 and not check.passed
    assert added == calls[-1][0] - 10


def test_repairs_stop_when_more_replicas_no_longer_help() -> None:
    calls: list[list[int]] = []
    _, check, _ = _verifier([10], calls, improves=False).peak(Deployment([_pool("a.x", [1.0])], "single"))
    assert not check.passed and len(calls) == 2  # one round added, no closer to the SLO: stop


# --- the day, hour by hour (the hour's simulation replaced) ------------------------------------------------------


def _day_verifier(arrivals: list[float], verdict: dict[int, tuple[bool, int]],
                  calls: list[int]) -> Verifier:
    """A Verifier whose hour check passes, or fails, or passes with replicas added: verdict[hour] = (passes, added)."""
    demand = SimpleNamespace(arrivals_per_s=lambda hour: arrivals[hour])
    verifier = Verifier(SimpleNamespace(spec=SPEC, demand=demand))  # type: ignore[arg-type]

    def check_hour(pools: list[PoolPlan], counts: list[int], hour: int) -> tuple[Check, list[int]]:
        calls.append(hour)
        passes, extra = verdict.get(hour, (True, 0))
        return Check(100.0, 10.0, 1.0, 50, passes), [c + extra for c in counts]

    verifier._check_hour = check_hour  # type: ignore[method-assign]
    return verifier


def test_hours_alike_are_simulated_once() -> None:
    calls: list[int] = []
    flat = Deployment([_pool("a.x", [1.0], np.full(24, 3))], "single")
    final, checks = _day_verifier([2.0] * 24, {}, calls).day(flat)
    assert calls == [0] and len(checks) == 24 and all(c.passed for c in checks) and final is flat
    diurnal = Deployment([_pool("a.x", [1.0])], "single")
    calls.clear()
    _day_verifier([1.0] * 12 + [2.0] * 12, {}, calls).day(diurnal)
    assert calls == [0, 12]


def test_an_hour_without_arrivals_is_not_simulated() -> None:
    calls: list[int] = []
    arrivals = [0.0] * 6 + [1.0] * 18
    _, checks = _day_verifier(arrivals, {}, calls).day(Deployment([_pool("a.x", [1.0])], "single"))
    assert 0 not in calls and checks[0] == Check(None, None, 1.0, 0, True)


def test_the_day_check_stops_at_the_first_hour_that_misses() -> None:
    calls: list[int] = []
    arrivals = [float(h + 1) for h in range(24)]  # every hour different
    _, checks = _day_verifier(arrivals, {5: (False, 0)}, calls).day(Deployment([_pool("a.x", [1.0])], "single"))
    assert len(checks) == 6 and not checks[-1].passed and calls == list(range(6))


def test_an_hour_repaired_gets_its_replicas_and_nothing_else_changes() -> None:
    calls: list[int] = []
    arrivals = [float(h + 1) for h in range(24)]
    given = Deployment([_pool("a.x", [1.0])], "single")
    final, checks = _day_verifier(arrivals, {14: (True, 2)}, calls).day(given)
    assert all(c.passed for c in checks) and len(checks) == 24
    expected = DAY.copy()
    expected[14] += 2
    assert list(final.pools[0].replicas) == list(expected)
    assert list(given.pools[0].replicas) == list(DAY)  # the deployment passed in is unchanged
    assert final.monthly_usd == pytest.approx(given.monthly_usd * (DAY.sum() + 2) / DAY.sum())


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
    grown, checks = verifier.day(one)
    assert all(c.passed for c in checks) and len(checks) == 24
    assert (grown.pools[0].replicas == need).all() and tried[:3] == [1, 2, 3]
    need, tried = 1 + MAX_REPAIRS + 1, []
    _, checks = verifier.day(one)
    assert len(checks) == 1 and not checks[0].passed  # the day stops at the first hour that misses
    assert tried == list(range(1, MAX_REPAIRS + 2))  # one replica added per round, MAX_REPAIRS rounds


def _starved(context: PlanContext, chosen: Option) -> tuple[Deployment, np.ndarray]:
    given = np.ones(24, dtype=np.int64)
    share = np.ones(len(context.demand.buckets))
    return Deployment([buy_pool(context.spec, chosen, share, given)], "single"), given


def test_verification_adds_replicas_when_screening_was_optimistic(g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    starved, _ = _starved(context, xlarge)  # one replica all day for a peak that needs two
    grown, check, added = Verifier(context).peak(starved)
    assert check.passed and check.requests == len(context.demand.peak_requests)
    assert added >= 1 and grown.pools[0].replicas.max() == 1 + added
    assert grown.monthly_usd > starved.monthly_usd
    assert check.ttft_ms_p95 is not None and check.ttft_ms_p95 <= context.spec.slo.ttft_p95_ms


def test_day_check_leaves_the_deployment_it_was_given_unchanged(g6e: tuple[PlanContext, list[Option]]) -> None:
    context, (xlarge, _) = g6e
    starved, given = _starved(context, xlarge)
    grown, day = Verifier(context).day(starved)
    assert (starved.pools[0].replicas == 1).all() and (given == 1).all()  # neither the pool nor the caller's array
    assert grown.pools[0].replicas.max() > 1 and all(c.passed for c in day) and len(day) == 24
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
    assert first[1] == second[1]
    assert math.isclose(first[0].pools[0].replicas.max(), second[0].pools[0].replicas.max())
