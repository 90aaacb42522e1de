"""The report of a run: every request accounted for, latencies that agree with predict, ITL, goodput, cost."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.predict import PredictRequest, predict
from fleetwise.sim import Slo, run_pool, summarize
from fleetwise.sim.itl import ITL_BIN_RATIO, ItlHistogram
from fleetwise.sim.metrics import (
    _itl_percentiles,
    _medians_by_bin,
    request_latencies,
)
from fleetwise.sim.request_log import RequestLog
from fleetwise.workload import Arrivals, Lengths, Requests, Sessions, Workload, generate
from tests.sim.builders import MODEL, exact_percentiles
from tests.sim.builders import poisson as _workload
from tests.sim.builders import pool_spec as _spec


def test_low_load_agrees_with_predict(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(0.05, 1000.0, prompt=1024, output=128)
    report = summarize(run_pool(_spec(), requests, catalog, calibration), requests)
    alone = predict(PredictRequest(model=load_model(MODEL), hardware="p5.48xlarge", tp=1, dtype="bf16", engine=None,
                                   mode="batch", load=1.0, input_tokens=1024, output_tokens=128), catalog,
                    calibration)
    assert report.completed == len(requests) >= 30
    assert report.ttft_ms.p50 == pytest.approx(alone.ttft_ms.p50, rel=0.03)
    assert report.tpot_ms.p50 == pytest.approx(alone.tpot_ms.p50, rel=0.03)
    assert report.itl_ms.p50 == pytest.approx(alone.itl_ms.p50, rel=0.03)
    # at this load a request waits at most for the step in progress
    assert report.queueing_delay_ms.p50 < 1.0
    assert report.queueing_delay_ms.p99 <= 1.5 * alone.itl_ms.p50


def test_itl_weights_each_step_by_the_tokens_it_produced() -> None:
    # 900 tokens from steps of 10 ms, 100 tokens from steps of 50 ms: p90 sits at the boundary, p95 above it
    itl = ItlHistogram()
    itl.add(0.010, 0.0, 100, 9.0)
    itl.add(0.050, 0.0, 100, 1.0)
    got = _itl_percentiles(itl)
    assert (got.p50, got.p90, got.p95, got.p99) == (10.0, 10.0, 50.0, 50.0)
    assert _itl_percentiles(ItlHistogram()).p50 is None


def test_a_runs_itl_percentiles_are_within_a_bin_of_those_of_every_gap(
        catalog: Catalog, calibration: CalibrationTable, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[tuple[float, float, int, float]] = []
    add = ItlHistogram.add

    def recording(itl: ItlHistogram, first: float, slope: float, steps: int, sequences: float) -> None:
        recorded.append((first, slope, steps, sequences))
        add(itl, first, slope, steps, sequences)

    monkeypatch.setattr(ItlHistogram, "add", recording)
    requests = _workload(30.0, 30.0, prompt=1024, output=200)
    report = summarize(run_pool(_spec(replicas=2), requests, catalog, calibration), requests)
    got = [report.itl_ms.p50, report.itl_ms.p90, report.itl_ms.p95, report.itl_ms.p99]
    exact = [v * 1e3 for v in exact_percentiles(recorded)]
    assert len(recorded) > 1000 and len({gap for gap, _, _, _ in recorded}) > 100
    assert got == pytest.approx(exact, rel=ITL_BIN_RATIO - 1, abs=1e-4)


def test_tpot_is_the_decode_time_per_token_after_the_first() -> None:
    requests = Requests(np.array([0.0, 1.0, 2.0]), np.array([10, 10, 10]), np.array([11, 1, 5]),
                        np.full(3, -1), np.zeros(3, dtype=np.int64))
    log = RequestLog.empty(3)
    log.first_token_s[:] = [0.5, 1.2, np.nan]
    log.finish_s[:] = [1.5, 1.2, np.nan]
    ttft, tpot, e2e = request_latencies(requests, log)
    assert ttft[:2].tolist() == pytest.approx([0.5, 0.2])
    assert tpot[0] == pytest.approx((1.5 - 0.5) / 10)  # ten gaps after the first token
    assert np.isnan(tpot[1])  # one output token: no TPOT
    assert e2e[:2].tolist() == pytest.approx([1.5, 0.2]) and np.isnan(e2e[2])


@pytest.mark.parametrize(("output", "goodput"), [(1, 1.0), (10, 0.0)])
def test_a_one_token_request_has_no_tpot_to_miss(catalog: Catalog, calibration: CalibrationTable, output: int,
                                                 goodput: float) -> None:
    requests = _workload(1.0, 20.0, output=output)
    report = summarize(run_pool(_spec(), requests, catalog, calibration), requests, Slo(tpot_ms=1e-6))
    assert report.completed == len(requests)
    assert report.goodput == goodput


def test_goodput_is_the_share_meeting_every_slo_given(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(2.0, 60.0)
    run = run_pool(_spec(), requests, catalog, calibration)
    ttft, _, e2e = request_latencies(requests, run.log)
    ttft_limit, e2e_limit = float(np.median(ttft)), float(np.percentile(e2e, 75))
    report = summarize(run, requests, Slo(ttft_ms=ttft_limit * 1e3, e2e_s=e2e_limit))
    expected = np.mean((ttft <= ttft_limit) & (e2e <= e2e_limit))
    assert 0.0 < expected < 1.0
    assert report.goodput == pytest.approx(expected, abs=1e-5)
    assert summarize(run, requests).goodput == 1.0  # no SLO: every completed request counts


def test_a_fixed_pool_is_billed_for_every_replica_over_the_makespan(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(5.0, 60.0)
    run = run_pool(_spec(replicas=3), requests, catalog, calibration)
    report = summarize(run, requests)
    pool = report.pools[0]
    hours = 3 * report.makespan_s / 3600.0
    assert pool.replicas_launched == 3 and pool.replica_hours == pytest.approx(hours, rel=1e-4)
    assert pool.instance_hours == pytest.approx(hours / 8, rel=1e-4)  # eight one-GPU replicas per p5.48xlarge
    assert report.cost_usd == pytest.approx(pool.usd_per_replica_hour * hours, rel=1e-4)
    produced = requests.output_tokens.sum()
    assert report.usd_per_million_output_tokens == pytest.approx(report.cost_usd / produced * 1e6, rel=1e-4)
    assert report.output_tokens_per_s == pytest.approx(produced / report.makespan_s, rel=1e-4)
    assert pool.requests_finished == report.completed == len(requests)
    assert 0.0 < report.busy_share < 1.0


def test_cached_conversations_hold_kv_beyond_the_running_sequences(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = generate(Workload(duration_s=300.0, arrivals=Arrivals(rate_per_s=0.5),
                                 prompt_tokens=Lengths(mean=2000), output_tokens=Lengths(mean=200),
                                 sessions=Sessions(turns=Lengths(mean=4), think_time_s=30.0,
                                                   user_tokens=Lengths(mean=100)), seed=9))
    warm = summarize(run_pool(_spec(), requests, catalog, calibration), requests)
    cold_requests = Requests(requests.arrival_s, requests.prompt_tokens, requests.output_tokens,
                             np.full(len(requests), -1), np.zeros(len(requests), int))
    cold = summarize(run_pool(_spec(), cold_requests, catalog, calibration), cold_requests)
    assert 0.0 < warm.kv_active_utilization < warm.kv_utilization <= 1.0
    assert cold.kv_active_utilization == cold.kv_utilization > 0.0  # without caching the two figures agree


def test_the_time_series_accounts_for_every_request_and_token(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(5.0, 95.0)
    run = run_pool(_spec(), requests, catalog, calibration)
    report = summarize(run, requests, interval_s=10.0)
    rows = report.timeseries
    assert [row.start_s for row in rows] == [10.0 * i for i in range(len(rows))]
    assert len(rows) == int(np.ceil(report.makespan_s / 10.0))
    assert sum(row.arrivals for row in rows) == len(requests)
    assert sum(row.completions for row in rows) == report.completed
    assert sum(row.output_tokens for row in rows) == requests.output_tokens.sum()
    assert all(row.ready_replicas is None for row in rows)  # no autoscaler, no samples
    ttft, _, _ = request_latencies(requests, run.log)
    for row in rows:
        arrived = (requests.arrival_s >= row.start_s) & (requests.arrival_s < row.start_s + 10.0)
        expected = round(float(np.median(ttft[arrived])) * 1e3, 3) if arrived.any() else None
        assert row.ttft_ms_p50 == expected


def test_medians_by_bin_equal_numpy_medians_bin_by_bin() -> None:
    rng = np.random.default_rng(2)
    bins = 12
    groups = rng.integers(0, bins - 2, 500)  # the last two bins stay empty
    values = rng.exponential(1.0, 500)
    values[rng.random(500) < 0.1] = np.nan  # unfinished requests are left out
    got = _medians_by_bin(groups, values, bins)
    for b in range(bins):
        finite = values[(groups == b) & np.isfinite(values)]
        if finite.size:
            assert got[b] == pytest.approx(float(np.median(finite)), rel=1e-12)
        else:
            assert np.isnan(got[b])
