"""Serving simulator: every request accounted for, queueing theory where it applies, agreement with predict."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import load_catalog
from fleetwise.models import load_model
from fleetwise.perf import PredictRequest, bundled_calibration, predict
from fleetwise.sim import PoolSpec, Slo, run_pool, summarize
from fleetwise.sim.fleet import build_replica
from fleetwise.sim.replica import ReplicaSettings, ReplicaSim, RequestLog
from fleetwise.workload import Arrivals, Lengths, Requests, Workload, generate

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(include_user_prices=False)


def _workload(rate: float, prompt: int = 512, output: int = 64, duration: float = 600.0, **arrivals: object
              ) -> Requests:
    return generate(Workload(duration_s=duration, arrivals=Arrivals(rate_per_s=rate, **arrivals),  # type: ignore[arg-type]
                             prompt_tokens=Lengths(mean=prompt), output_tokens=Lengths(mean=output), seed=3))


def _spec(**overrides: object) -> PoolSpec:
    values: dict[str, object] = dict(model=load_model(MODEL), hardware="p5.48xlarge", tp=1, dtype="bf16",
                                     engine=None, replicas=1)
    values.update(overrides)
    return PoolSpec(**values)  # type: ignore[arg-type]


def test_every_request_is_completed_or_dropped_with_a_reason(catalog) -> None:  # type: ignore[no-untyped-def]
    requests = generate(Workload(duration_s=300.0, arrivals=Arrivals(process="gamma", rate_per_s=20.0,
                                                                     burstiness_cv=3.0),
                                 prompt_tokens=Lengths(distribution="lognormal", mean=1500, std=1500,
                                                       maximum=200_000),
                                 output_tokens=Lengths(distribution="lognormal", mean=300, std=300), seed=5))
    requests.prompt_tokens[[0, 7]] = 150_000  # beyond Llama-3.1's 131,072-token context
    run = run_pool(_spec(replicas=2), requests, catalog, bundled_calibration())
    done = np.isfinite(run.log.finish_s)
    assert done.sum() + len(run.log.dropped) == len(requests)
    assert all(run.log.dropped.values())
    assert not any(done[i] for i in run.log.dropped)
    assert set(run.log.dropped) == {0, 7} and "131072" in run.log.dropped[0]
    assert np.all(run.log.first_token_s[done] <= run.log.finish_s[done])


def test_same_seed_same_result(catalog) -> None:  # type: ignore[no-untyped-def]
    a = summarize(run_pool(_spec(), _workload(5.0), catalog, bundled_calibration()), _workload(5.0))
    b = summarize(run_pool(_spec(), _workload(5.0), catalog, bundled_calibration()), _workload(5.0))
    assert a == b


def test_low_load_agrees_with_predict(catalog) -> None:  # type: ignore[no-untyped-def]
    requests = _workload(0.05, prompt=1024, output=128, duration=4000.0)
    report = summarize(run_pool(_spec(), requests, catalog, bundled_calibration()), requests)
    alone = predict(PredictRequest(model=load_model(MODEL), hardware="p5.48xlarge", tp=1, dtype="bf16", engine=None,
                                   mode="batch", load=1.0, input_tokens=1024, output_tokens=128), catalog,
                    bundled_calibration())
    assert report["ttft_ms"]["p50"] == pytest.approx(alone["ttft_ms"]["p50"], rel=0.03)
    assert report["tpot_ms"]["p50"] == pytest.approx(alone["tpot_ms"]["p50"], rel=0.03)


def test_one_slot_replica_queues_like_md1(catalog) -> None:  # type: ignore[no-untyped-def]
    # Fixed lengths and one sequence slot: each request is served alone in a fixed time S (M/D/1).
    probe = run_pool(_spec(max_seqs=1), _workload(0.001, duration=4000.0), catalog, bundled_calibration())
    service = float(np.nanmean(probe.log.finish_s - probe.log.first_token_s + (probe.log.first_token_s
                                                                             - _workload(0.001, duration=4000.0)
                                                                             .arrival_s)))
    rho = 0.6
    requests = _workload(rho / service, duration=200_000 * service)
    run = run_pool(_spec(max_seqs=1), requests, catalog, bundled_calibration())
    wait = run.log.finish_s - requests.arrival_s - service
    expected = rho * service / (2 * (1 - rho))
    assert float(np.mean(wait)) == pytest.approx(expected, rel=0.06)


def test_preemption_starts_exactly_when_kv_blocks_run_out(catalog) -> None:  # type: ignore[no-untyped-def]
    _, cost, _ = build_replica(_spec(), catalog, bundled_calibration(), 1024)
    n, prompt, output = 8, 256, 256
    requests = Requests(np.zeros(n), np.full(n, prompt), np.full(n, output), np.full(n, -1), np.zeros(n, int))
    blocks_needed = n * -(-(prompt + output) // 16)  # every sequence at full length

    def preemptions(kv_blocks: int) -> int:
        log = RequestLog.empty(n)
        replica = ReplicaSim(0, cost, ReplicaSettings(kv_blocks=kv_blocks, max_seqs=64), requests, log)
        for i in range(n):
            replica.enqueue(i)
        while replica.outstanding:
            replica.advance_to(replica.clock + 60.0)
        assert np.isfinite(log.finish_s).all()
        return int(log.preemptions.sum())

    assert preemptions(blocks_needed) == 0
    assert preemptions(blocks_needed - 1) >= 1


def test_prefix_cache_hits_shared_system_prompts(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.workload import SharedPrefixes

    requests = generate(Workload(duration_s=300.0, arrivals=Arrivals(rate_per_s=2.0),
                                 prompt_tokens=Lengths(mean=1024), output_tokens=Lengths(mean=32),
                                 shared_prefixes=SharedPrefixes(count=2, tokens=768), seed=1))
    cached = summarize(run_pool(_spec(), requests, catalog, bundled_calibration()), requests)
    assert cached["prefix_cache_hit_rate"] > 0.9
    cold = Requests(requests.arrival_s, requests.prompt_tokens, requests.output_tokens,
                    np.full(len(requests), -1), np.zeros(len(requests), int))
    uncached = summarize(run_pool(_spec(), cold, catalog, bundled_calibration()), cold)
    assert cached["ttft_ms"]["p50"] < 0.6 * uncached["ttft_ms"]["p50"]


def test_more_load_raises_latency_and_more_replicas_lower_it(catalog) -> None:  # type: ignore[no-untyped-def]
    light, heavy = _workload(2.0, duration=300.0), _workload(60.0, duration=300.0)
    light_report = summarize(run_pool(_spec(), light, catalog, bundled_calibration()), light)
    heavy_report = summarize(run_pool(_spec(), heavy, catalog, bundled_calibration()), heavy)
    scaled = summarize(run_pool(_spec(replicas=4), heavy, catalog, bundled_calibration()), heavy)
    assert heavy_report["tpot_ms"]["p50"] > light_report["tpot_ms"]["p50"]
    assert scaled["e2e_s"]["p90"] < heavy_report["e2e_s"]["p90"]
    slo = Slo(ttft_ms=500, tpot_ms=30)
    assert summarize(run_pool(_spec(replicas=4), heavy, catalog, bundled_calibration()), heavy, slo)["goodput"] >= \
        summarize(run_pool(_spec(), heavy, catalog, bundled_calibration()), heavy, slo)["goodput"]
