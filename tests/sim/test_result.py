"""The simulation result as typed values, and `to_json()` giving the documented `--json` schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.sim import Autoscale, PoolSpec, run_pool, summarize
from fleetwise.sim.result import SimulationResult
from fleetwise.workload import Arrivals, Lengths, Workload, generate

SCHEMA = {"model", "router", "requests", "completed", "dropped", "dropped_reasons", "preemptions",
          "requests_preempted", "ttft_ms", "tpot_ms", "e2e_s", "itl_ms", "queueing_delay_ms", "goodput",
          "output_tokens_per_s", "kv_utilization", "kv_active_utilization", "busy_share", "requeued",
          "prefix_cache_hit_rate", "instance_hours", "makespan_s", "cost_usd", "usd_per_million_output_tokens",
          "pools", "timeseries"}
POOL = {"name", "hardware", "engine", "tp", "dtype", "purchase", "replicas_launched", "replica_hours",
        "instance_hours", "usd_per_replica_hour", "cost_usd", "requests_finished", "spot_interruptions", "max_seqs",
        "kv_blocks_per_replica"}
INTERVAL = {"start_s", "arrivals", "completions", "output_tokens", "ttft_ms_p50", "ready_replicas"}
LATENCIES = ("ttft_ms", "tpot_ms", "e2e_s", "itl_ms", "queueing_delay_ms")


@pytest.fixture(scope="module")
def result(catalog: Catalog, calibration: CalibrationTable) -> SimulationResult:
    requests = generate(Workload(duration_s=120.0, arrivals=Arrivals(rate_per_s=2.0),
                                 prompt_tokens=Lengths(mean=512), output_tokens=Lengths(mean=32), seed=1))
    requests.prompt_tokens[3] = 200_000  # dropped: beyond the model's context
    spec = PoolSpec(model=load_model("meta-llama/Llama-3.1-8B-Instruct"), hardware="p5.48xlarge", tp=1,
                    dtype="bf16", engine=None, replicas=1, autoscale=Autoscale(min_replicas=1, max_replicas=2))
    return summarize(run_pool(spec, requests, catalog, calibration), requests, interval_s=30.0)


def test_to_json_gives_the_documented_keys(result: SimulationResult) -> None:
    document = result.to_json()
    assert set(document) == SCHEMA
    for latency in LATENCIES:
        assert set(document[latency]) == {"p50", "p90", "p95", "p99"}
    assert [set(pool) for pool in document["pools"]] == [POOL]
    assert document["timeseries"] and all(set(row) == INTERVAL for row in document["timeseries"])


def test_to_json_holds_the_same_values_as_the_attributes(result: SimulationResult) -> None:
    document = result.to_json()
    assert document["completed"] == result.completed and document["dropped"] == result.dropped == 1
    assert document["dropped_reasons"] == result.dropped_reasons and sum(result.dropped_reasons.values()) == 1
    assert document["ttft_ms"]["p99"] == result.ttft_ms.p99
    assert document["pools"][0]["requests_finished"] == result.pools[0].requests_finished == result.completed
    assert document["timeseries"][-1]["ready_replicas"] == result.timeseries[-1].ready_replicas == [1]


def test_the_json_document_is_plain_json_and_round_trips(result: SimulationResult) -> None:
    document = result.to_json()
    text = json.dumps(document, allow_nan=False)  # no numpy scalars, no NaN
    assert json.loads(text) == document


def test_latencies_are_ordered_percentiles(result: SimulationResult) -> None:
    for latency in LATENCIES:
        p = getattr(result, latency)
        values = [p.p50, p.p90, p.p95, p.p99]
        assert all(isinstance(v, float) for v in values), latency
        assert values == sorted(values), latency
    assert np.isfinite(result.makespan_s) and result.cost_usd is not None and result.cost_usd > 0
