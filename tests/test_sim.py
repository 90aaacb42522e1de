"""Serving simulator: every request accounted for, queueing theory where it applies, agreement with predict."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import load_catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf import PredictRequest, bundled_calibration, predict
from fleetwise.sim import Autoscale, PoolSpec, Slo, Spot, run_pool, summarize
from fleetwise.sim.pool import build_replica
from fleetwise.sim.replica import ReplicaSettings, ReplicaSim, RequestLog
from fleetwise.workload import Arrivals, Lengths, Requests, SharedPrefixes, Workload, generate

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
    for pool in run.pools:  # every KV block came back (cached prefixes aside)
        assert all(slot.sim.used_blocks == 0 for slot in pool.slots)


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
    assert report["itl_ms"]["p50"] == pytest.approx(alone["itl_ms"]["p50"], rel=0.03)
    # at this load a request waits at most for the step in progress
    assert report["queueing_delay_ms"]["p50"] < 1.0
    assert report["queueing_delay_ms"]["p99"] <= 1.5 * alone["itl_ms"]["p50"]


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
    queued = run.log.admitted_s - requests.arrival_s  # the queueing delay the report gives percentiles of
    assert float(np.mean(queued)) == pytest.approx(expected, rel=0.06)


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


def test_spot_interruptions_requeue_and_never_lose_requests(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.sim import FleetSpec, Spot, run_fleet

    # long generations (about 4 minutes each) outlive the two-minute notice, so some must be re-queued
    requests = _workload(0.3, prompt=512, output=20_000, duration=3600.0)
    spot = _spec(replicas=2, purchase="spot", spot=Spot(interruptions_per_hour=4.0), startup_s=60.0)
    run = run_fleet(FleetSpec(pools=(spot,), seed=11), requests, catalog, bundled_calibration())
    report = summarize(run, requests)
    assert report["pools"][0]["spot_interruptions"] > 0
    assert report["requeued"] > 0
    assert report["completed"] + report["dropped"] == len(requests)
    assert report["dropped"] == 0
    requeued = run.log.requeues > 0
    assert np.isfinite(run.log.finish_s[requeued]).all()  # re-queued, then completed
    on_demand = summarize(run_pool(_spec(replicas=2), requests, catalog, bundled_calibration()), requests)
    assert report["cost_usd"] < on_demand["cost_usd"]  # the spot snapshot is cheaper, replacements included


def test_autoscaler_follows_load_after_the_startup_delay(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.sim import Autoscale

    quiet, busy = _workload(1.0, duration=1800.0), _workload(40.0, duration=1800.0)
    merged = Requests(np.concatenate([quiet.arrival_s, busy.arrival_s + 1800.0]),
                      np.concatenate([quiet.prompt_tokens, busy.prompt_tokens]),
                      np.concatenate([quiet.output_tokens, busy.output_tokens]),
                      np.concatenate([quiet.prefix_id, busy.prefix_id]),
                      np.concatenate([quiet.prefix_tokens, busy.prefix_tokens]))
    scaled = _spec(replicas=1, startup_s=300.0, autoscale=Autoscale(min_replicas=1, max_replicas=6,
                                                                    target_inflight=8))
    run = run_pool(scaled, merged, catalog, bundled_calibration())
    ready = dict(run.samples)
    assert max(ready[t][0] for t in ready if t < 1800.0) == 1
    assert max(ready[t][0] for t in ready if t >= 1800.0) > 1
    # nothing new can serve before launch + 300 s
    assert all(ready[t][0] == 1 for t in ready if 1800.0 <= t < 2100.0)
    assert all(1 <= counts[0] <= 6 for counts in ready.values())
    report = summarize(run, merged)
    assert report["completed"] == len(merged)


def test_doubling_traffic_never_lowers_autoscaled_cost(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.sim import Autoscale

    policy = Autoscale(min_replicas=1, max_replicas=8, target_inflight=8)
    costs = []
    for rate in (10.0, 20.0):
        requests = _workload(rate, duration=1800.0)
        costs.append(summarize(run_pool(_spec(autoscale=policy), requests, catalog, bundled_calibration()),
                               requests)["cost_usd"])
    assert costs[1] >= costs[0]


def test_prefix_affinity_keeps_prefixes_warm(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.workload import SharedPrefixes

    requests = generate(Workload(duration_s=600.0, arrivals=Arrivals(rate_per_s=10.0),
                                 prompt_tokens=Lengths(mean=2048), output_tokens=Lengths(mean=64),
                                 shared_prefixes=SharedPrefixes(count=64, tokens=1536, popularity="uniform"),
                                 seed=2))
    affinity = summarize(run_pool(_spec(replicas=4, max_seqs=8), requests, catalog, bundled_calibration(),
                                  "prefix-affinity"), requests)
    spread = summarize(run_pool(_spec(replicas=4, max_seqs=8), requests, catalog, bundled_calibration(),
                                "round-robin"), requests)
    assert affinity["prefix_cache_hit_rate"] >= spread["prefix_cache_hit_rate"]
    assert affinity["completed"] == spread["completed"] == len(requests)


def test_cost_aware_router_fills_the_cheaper_pool_and_spills_under_load(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.sim import FleetSpec, run_fleet

    # The same replicas bought two ways: spot is cheaper per token, so it is filled first.
    cheap, dear = _spec(purchase="spot", name="spot", max_seqs=8), _spec(name="on-demand", max_seqs=8)
    fleet = FleetSpec(pools=(dear, cheap), router="cost-aware", slo_ttft_ms=300.0)
    light = _workload(0.2, duration=600.0)
    report = summarize(run_fleet(fleet, light, catalog, bundled_calibration()), light)
    served = {p["name"]: p["requests_finished"] for p in report["pools"]}
    assert served["spot"] == len(light)  # the cheaper pool takes everything while it keeps the SLO
    heavy = _workload(40.0, duration=300.0)
    report = summarize(run_fleet(fleet, heavy, catalog, bundled_calibration()), heavy)
    served = {p["name"]: p["requests_finished"] for p in report["pools"]}
    assert served["on-demand"] > 0 and served["spot"] > served["on-demand"] * 0.2


def test_conversation_turns_reuse_their_cached_context(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.workload import Sessions

    requests = generate(Workload(duration_s=1800.0, arrivals=Arrivals(rate_per_s=0.5),
                                 prompt_tokens=Lengths(mean=2000), output_tokens=Lengths(mean=200),
                                 sessions=Sessions(turns=Lengths(mean=4), think_time_s=30.0,
                                                   user_tokens=Lengths(mean=100)), seed=9))
    later = requests.prefix_id >= 0
    warm = summarize(run_pool(_spec(), requests, catalog, bundled_calibration()), requests)
    cold_requests = Requests(requests.arrival_s, requests.prompt_tokens, requests.output_tokens,
                             np.full(len(requests), -1), np.zeros(len(requests), int))
    cold = summarize(run_pool(_spec(), cold_requests, catalog, bundled_calibration()), cold_requests)
    assert later.any() and warm["prefix_cache_hit_rate"] > 0.8
    assert warm["completed"] == len(requests)
    assert warm["ttft_ms"]["p90"] < cold["ttft_ms"]["p90"]
    # cached contexts occupy KV beyond what running sequences hold; without caching the two figures agree
    assert 0.0 < warm["kv_active_utilization"] < warm["kv_utilization"] <= 1.0
    assert cold["kv_active_utilization"] == cold["kv_utilization"]


def test_a_cached_compiled_artifact_shortens_scale_up(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.sim import Autoscale

    requests = _workload(30.0, duration=1200.0)
    policy = Autoscale(min_replicas=1, max_replicas=4, target_inflight=4)
    base = dict(autoscale=policy, startup_s=60.0, compile_s=600.0)
    compiling = run_pool(_spec(**base), requests, catalog, bundled_calibration())
    cached = run_pool(_spec(**base, compiled_cache=True), requests, catalog, bundled_calibration())

    def first_scale_up(run) -> float:  # type: ignore[no-untyped-def]
        return min(t for t, counts in run.samples if counts[0] > 1)

    assert first_scale_up(cached) < first_scale_up(compiling)
    assert first_scale_up(compiling) >= 660.0  # boot + load + compile before the second replica serves


@pytest.mark.parametrize(
    "workload",
    [
        # bursty long prompts with many shared prefixes on a small GPU: admissions that fail under KV pressure
        Workload(duration_s=120.0, arrivals=Arrivals(process="gamma", rate_per_s=20.0, burstiness_cv=5.0),
                 prompt_tokens=Lengths(distribution="lognormal", mean=3000, std=2000, maximum=30000),
                 output_tokens=Lengths(distribution="lognormal", mean=300, std=300, maximum=4000),
                 shared_prefixes=SharedPrefixes(count=20, tokens=1000), seed=1),
        # prompts that barely fit beside their own cached prefix, with nothing decoding
        Workload(duration_s=60.0, arrivals=Arrivals(rate_per_s=0.5), prompt_tokens=Lengths(mean=36000),
                 output_tokens=Lengths(mean=1), shared_prefixes=SharedPrefixes(count=1, tokens=30000)),
    ],
)
def test_kv_pressure_with_cached_prefixes_finishes_and_returns_every_block(catalog, workload: Workload) -> None:  # type: ignore[no-untyped-def]
    requests = generate(workload)
    run = run_pool(_spec(hardware="g6.xlarge"), requests, catalog, bundled_calibration())
    done = np.isfinite(run.log.finish_s)
    assert done.sum() + len(run.log.dropped) == len(requests)
    assert done.mean() > 0.9
    assert all(slot.sim.used_blocks == 0 for pool in run.pools for slot in pool.slots)


def test_fast_forward_matches_step_by_step_decode_with_sliding_windows(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.dtypes import get_dtype
    from fleetwise.perf.hardware import resolve_hardware
    from fleetwise.perf.replica_arrays import ReplicaConfig, build_arrays
    from fleetwise.perf.step_time import decode_step

    model, prompt, output = "google/gemma-3-27b-it", 512, 4000
    spec = _spec(model=load_model(model), hardware="p5.48xlarge", tp=2)
    requests = Requests(np.zeros(1), np.array([prompt]), np.array([output]), np.array([-1]), np.array([0]))
    run = run_pool(spec, requests, catalog, bundled_calibration())
    simulated = float(run.log.finish_s[0] - run.log.first_token_s[0])
    hardware = resolve_hardware(catalog, "p5.48xlarge", 2)
    efficiency = bundled_calibration().lookup(hardware.engine.id, hardware.chip.id, hardware.chip.kind)
    arrays = build_arrays([ReplicaConfig(load_model(model), hardware, get_dtype("bf16"), efficiency)])
    contexts = prompt + 1 + np.arange(output - 1, dtype=np.float64)[None, :]
    exact = float(decode_step(arrays, np.array([[1.0]]), contexts).total_s.sum())
    assert simulated == pytest.approx(exact, rel=0.01)


def test_neuron_decode_gaps_include_prompt_stalls(catalog) -> None:  # type: ignore[no-untyped-def]
    requests = _workload(4.0, prompt=2000, output=200, duration=120.0)
    report = summarize(run_pool(_spec(hardware="inf2.48xlarge", tp=8), requests, catalog, bundled_calibration()),
                       requests)
    # Neuron prefills run on their own, so some gaps between tokens include a whole prompt
    assert report["itl_ms"]["p99"] > report["tpot_ms"]["p50"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"tp": 0}, "tensor-parallel"), ({"replicas": 0}, "replicas must be between"),
     ({"startup_s": float("nan")}, "startup time"), ({"compile_s": -1.0}, "compile time"),
     ({"autoscale": Autoscale(min_replicas=3, max_replicas=2)}, "autoscale min"),
     ({"autoscale": Autoscale(target_inflight=float("inf"))}, "target in-flight"),
     ({"purchase": "spot", "spot": Spot(float("nan"))}, "spot interruptions")],
)
def test_a_pool_spec_out_of_range_is_refused_before_simulating(catalog, overrides: dict[str, object],  # type: ignore[no-untyped-def]
                                                               message: str) -> None:
    with pytest.raises(FleetwiseError, match=message):
        run_pool(_spec(**overrides), _workload(1.0, duration=10.0), catalog, bundled_calibration())


def test_prefix_hit_rate_stays_a_share_under_preemption(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.workload import SharedPrefixes

    requests = generate(Workload(duration_s=120.0, arrivals=Arrivals(process="gamma", rate_per_s=20.0,
                                                                     burstiness_cv=5.0),
                                 prompt_tokens=Lengths(distribution="lognormal", mean=3000, std=2000,
                                                       maximum=60_000),
                                 output_tokens=Lengths(mean=200), shared_prefixes=SharedPrefixes(count=20, tokens=1000),
                                 seed=4))
    run = run_pool(_spec(hardware="g6.xlarge"), requests, catalog, bundled_calibration())
    assert run.log.preemptions.sum() > 0  # the point: re-admissions must not count the prefix again
    report = summarize(run, requests)
    assert 0.0 < report["prefix_cache_hit_rate"] <= 1.0
    assert np.all(run.log.prefix_hit_tokens <= requests.prefix_tokens)


def test_prefix_affinity_moves_few_prefixes_when_a_replica_joins() -> None:
    from fleetwise.sim.fleet import rendezvous_weight

    def owner(prefix: int, replicas: range) -> int:
        return max(replicas, key=lambda r: rendezvous_weight(prefix, r))

    before = [owner(p, range(4)) for p in range(2000)]
    after = [owner(p, range(5)) for p in range(2000)]
    moved = [a for b, a in zip(before, after, strict=True) if a != b]
    assert all(a == 4 for a in moved)  # only to the new replica, never between old ones
    assert 0.15 < len(moved) / 2000 < 0.25  # about 1/5 (mod-N hashing would move about 4/5)
    assert max(before.count(r) for r in range(4)) < 1.2 * 2000 / 4  # spread evenly
