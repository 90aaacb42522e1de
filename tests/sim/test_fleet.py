"""Fleets: specs checked when made, every request accounted for, spot interruptions, autoscaling, scaling cost."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf import CalibrationTable
from fleetwise.sim import Autoscale, FleetRun, FleetSpec, Slo, Spot, run_fleet, run_pool, summarize
from fleetwise.sim.pool import SPOT_NOTICE_S
from fleetwise.workload import Arrivals, Lengths, Requests, Workload, generate
from tests.sim.builders import poisson as _workload
from tests.sim.builders import pool_spec as _spec


def _phases(*phases: tuple[float, float]) -> Requests:
    """Poisson phases of (rate, seconds), one after another."""
    parts, start = [], 0.0
    for rate, seconds in phases:
        part = _workload(rate, seconds)
        parts.append(part.select(np.ones(len(part), dtype=bool), shift_s=-start))
        start += seconds
    return Requests(*(np.concatenate([getattr(p, name) for p in parts])
                      for name in ("arrival_s", "prompt_tokens", "output_tokens", "prefix_id", "prefix_tokens")))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"pools": ()}, "a fleet needs at least one pool"),
     ({"router": "fastest"}, "unknown router 'fastest'"),
     ({"router": "cost-aware"}, r"the cost-aware router needs a TTFT SLO \(--slo-ttft-ms\)"),
     ({"control_interval_s": 0.0}, "the control interval must be a positive number of seconds"),
     ({"control_interval_s": float("nan")}, "the control interval must be a positive number of seconds"),
     ({"slo_ttft_ms": -1.0}, "the TTFT SLO must be a positive number of milliseconds"),
     ({"slo_ttft_ms": float("inf")}, "the TTFT SLO must be a positive number of milliseconds"),
     ({"seed": -1}, "the seed must not be negative")],
    ids=["no-pools", "router", "cost-aware-without-slo", "zero-interval", "nan-interval", "negative-slo",
         "infinite-slo", "negative-seed"],
)
def test_a_fleet_spec_out_of_range_is_refused_when_made(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"pools": (_spec(),)}
    values.update(overrides)
    with pytest.raises(FleetwiseError, match=message):
        FleetSpec(**values)  # type: ignore[arg-type]


def test_an_empty_workload_is_refused(catalog: Catalog, calibration: CalibrationTable) -> None:
    empty = Requests(np.zeros(0), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(FleetwiseError, match="no requests"):
        run_pool(_spec(), empty, catalog, calibration)


def test_every_request_is_completed_or_dropped_with_a_reason(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = generate(Workload(duration_s=100.0, arrivals=Arrivals(process="gamma", rate_per_s=20.0,
                                                                     burstiness_cv=3.0),
                                 prompt_tokens=Lengths(distribution="lognormal", mean=1500, std=1500,
                                                       maximum=200_000),
                                 output_tokens=Lengths(distribution="lognormal", mean=300, std=300), seed=5))
    requests.prompt_tokens[[0, 7]] = 150_000  # beyond Llama-3.1's 131,072-token context
    run = run_pool(_spec(replicas=2), requests, catalog, calibration)
    done = np.isfinite(run.log.finish_s)
    assert done.sum() + len(run.log.dropped) == len(requests)
    assert all(run.log.dropped.values())
    assert not any(done[i] for i in run.log.dropped)
    assert set(run.log.dropped) == {0, 7} and "131072" in run.log.dropped[0]
    assert np.all(run.log.first_token_s[done] <= run.log.finish_s[done])
    assert np.all(requests.arrival_s[done] <= run.log.admitted_s[done])
    assert np.all(run.log.admitted_s[done] <= run.log.first_token_s[done])
    assert run.makespan_s == pytest.approx(float(np.nanmax(run.log.finish_s)))
    for pool in run.pools:  # every KV block came back (cached prefixes aside)
        assert all(slot.sim.used_blocks == 0 and slot.sim.outstanding == 0 for slot in pool.slots)


def _spot_fleet(seed: int) -> FleetSpec:
    spot = _spec(replicas=2, purchase="spot", spot=Spot(interruptions_per_hour=12.0), startup_s=60.0)
    return FleetSpec(pools=(spot,), seed=seed)


# long generations (about two and a quarter minutes each) outlive the two-minute notice, so some are re-queued
SPOT_REQUESTS = dict(rate=0.05, duration=900.0, prompt=512, output=12_000)


def test_the_same_seed_gives_the_same_result(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(**SPOT_REQUESTS)  # type: ignore[arg-type]
    first = summarize(run_fleet(_spot_fleet(11), requests, catalog, calibration), requests)
    again = summarize(run_fleet(_spot_fleet(11), requests, catalog, calibration), requests)
    other = run_fleet(_spot_fleet(12), requests, catalog, calibration)
    assert first == again
    assert first.pools[0].spot_interruptions > 0
    assert summarize(other, requests) != first  # the seed draws the interruptions


def test_spot_interruptions_requeue_and_never_lose_requests(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(**SPOT_REQUESTS)  # type: ignore[arg-type]
    run = run_fleet(_spot_fleet(11), requests, catalog, calibration)
    report = summarize(run, requests)
    pool = report.pools[0]
    assert pool.spot_interruptions > 0 and report.requeued > 0
    assert report.completed == len(requests) and report.dropped == 0
    requeued = run.log.requeues > 0
    assert np.isfinite(run.log.finish_s[requeued]).all()  # re-queued, then completed
    assert pool.replicas_launched == 2 + pool.spot_interruptions  # each notice launches a replacement
    warned = [slot for slot in run.pools[0].slots if slot.interrupt_s + SPOT_NOTICE_S < run.makespan_s]
    assert warned
    for slot in warned:
        assert slot.stopped_s == pytest.approx(slot.interrupt_s + SPOT_NOTICE_S)  # stopped at the deadline
        served = (run.log.replica == slot.sim.index) & (run.log.requeues == 0)
        assert np.all(requests.arrival_s[served] <= slot.interrupt_s)  # nothing routed after the notice
    # replacements overlap the replicas they replace, yet the spot price keeps the fleet cheaper
    assert pool.replica_hours > 2 * report.makespan_s / 3600.0
    on_demand = summarize(run_pool(_spec(replicas=2), requests, catalog, calibration), requests)
    assert on_demand.pools[0].replica_hours == pytest.approx(2 * on_demand.makespan_s / 3600.0, rel=1e-3)
    assert report.cost_usd < on_demand.cost_usd


def _autoscaled(catalog: Catalog, calibration: CalibrationTable) -> tuple[FleetRun, Requests]:
    requests = _phases((1.0, 300.0), (40.0, 300.0), (1.0, 600.0))
    spec = _spec(startup_s=60.0, autoscale=Autoscale(min_replicas=1, max_replicas=6, target_inflight=8,
                                                     scale_down_cooldown_s=60.0))
    return run_pool(spec, requests, catalog, calibration), requests


def test_the_autoscaler_follows_load_after_the_startup_delay(catalog: Catalog, calibration: CalibrationTable) -> None:
    run, requests = _autoscaled(catalog, calibration)
    slots = run.pools[0].slots
    ready = dict(run.samples)
    assert all(counts == (1,) for t, counts in ready.items() if t < 300.0)  # quiet: one replica
    launches = [slot.launched_s for slot in slots[1:]]
    assert launches and min(launches) >= 300.0  # nothing launched before the load rose
    assert all(slot.ready_s == slot.launched_s + 60.0 for slot in slots[1:])
    first = min(launches)
    assert all(counts == (1,) for t, counts in ready.items() if t < first + 60.0)  # none serves before start-up
    assert max(counts[0] for t, counts in ready.items() if 300.0 <= t < 600.0) > 1
    assert all(1 <= counts[0] <= 6 for counts in ready.values())
    assert run.samples[-1][1] == (1,)  # back to the minimum once the load fell and the cool-down passed
    assert summarize(run, requests).completed == len(requests)


def test_doubling_traffic_raises_autoscaled_cost(catalog: Catalog, calibration: CalibrationTable) -> None:
    policy = Autoscale(min_replicas=1, max_replicas=8, target_inflight=8)
    reports = []
    for rate in (10.0, 20.0):
        requests = _workload(rate, 300.0)
        reports.append(summarize(run_pool(_spec(autoscale=policy), requests, catalog, calibration), requests))
    # at 10/s the in-flight count already asks for a second replica; at 20/s for more of them
    assert reports[0].pools[0].replicas_launched > 1
    assert reports[1].pools[0].replicas_launched > reports[0].pools[0].replicas_launched
    assert reports[1].cost_usd > reports[0].cost_usd


def test_a_cached_compiled_artifact_shortens_scale_up_by_the_compile_time(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(30.0, 200.0)
    policy = Autoscale(min_replicas=1, max_replicas=4, target_inflight=4)
    startup, compile_s = 20.0, 120.0
    compiling = run_pool(_spec(autoscale=policy, startup_s=startup, compile_s=compile_s), requests, catalog,
                         calibration)
    cached = run_pool(_spec(autoscale=policy, startup_s=startup, compile_s=compile_s, compiled_cache=True),
                      requests, catalog, calibration)

    def first_scale_up(run: FleetRun) -> float:
        return min(t for t, counts in run.samples if counts[0] > 1)

    # both runs are identical until the first launch; then one replica waits for the compiler and one does not
    assert first_scale_up(compiling) - first_scale_up(cached) == pytest.approx(compile_s)
    assert first_scale_up(compiling) >= startup + compile_s


def test_more_load_raises_latency_and_more_replicas_lower_it(catalog: Catalog, calibration: CalibrationTable) -> None:
    light, heavy = _workload(2.0, 60.0), _workload(60.0, 60.0)
    slo = Slo(ttft_ms=500, tpot_ms=30)
    alone = summarize(run_pool(_spec(), light, catalog, calibration), light, slo)
    crowded = summarize(run_pool(_spec(), heavy, catalog, calibration), heavy, slo)
    scaled = summarize(run_pool(_spec(replicas=4), heavy, catalog, calibration), heavy, slo)
    assert crowded.tpot_ms.p50 > alone.tpot_ms.p50
    assert scaled.e2e_s.p90 < crowded.e2e_s.p90
    assert scaled.goodput > crowded.goodput  # one replica cannot keep 60 requests/s within the SLO; four can
    assert scaled.goodput == alone.goodput == 1.0
