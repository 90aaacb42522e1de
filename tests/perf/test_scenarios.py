"""Request metrics from step times: static batches, closed loops and Poisson arrivals obey their definitions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaArrays, ReplicaConfig, build_arrays
from fleetwise.perf.scenarios import closed_loop, load_point, poisson, smallest_compiled_batch, static_batch
from fleetwise.perf.step_time import prefill_step


def _arrays(catalog: Catalog, calibration: CalibrationTable, hardware: str = "h100-sxm", tp: int = 1) -> ReplicaArrays:
    hw = resolve_hardware(catalog, hardware, tp)
    eff = calibration.lookup(hw.engine.id, hw.chip.id, hw.chip.kind)
    return build_arrays([ReplicaConfig(load_model("meta-llama/Llama-3.1-8B-Instruct"), hw, get_dtype("bf16"), eff)])


@pytest.fixture(scope="module")
def gpu(catalog: Catalog, calibration: CalibrationTable) -> ReplicaArrays:
    return _arrays(catalog, calibration)


@pytest.fixture(scope="module")
def neuron(catalog: Catalog, calibration: CalibrationTable) -> ReplicaArrays:
    return _arrays(catalog, calibration, "inf2.48xlarge", 8)


def test_static_batch_follows_vllms_definitions(gpu: ReplicaArrays) -> None:
    b, i, o = 8, 512, 256
    result = static_batch(gpu, b, i, o)
    ttft, e2e, tpot = float(result.ttft_p50_s[0]), float(result.e2e_p50_s[0]), float(result.tpot_p50_s[0])
    assert ttft == float(prefill_step(gpu, b, i).total_s[0, 0])  # the batch's prompts in one prefill
    assert tpot == pytest.approx((e2e - ttft) / (o - 1))
    assert float(result.tpot_mean_s[0]) == tpot and float(result.ttft_mean_s[0]) == ttft  # all requests alike
    assert float(result.output_tokens_per_s[0]) == pytest.approx(b * o / e2e)
    assert float(result.requests_per_s[0]) == pytest.approx(b / e2e)
    assert float(result.concurrency[0]) == b and not result.saturated[0]


def test_one_output_token_leaves_tpot_undefined(gpu: ReplicaArrays) -> None:
    result = static_batch(gpu, 4, 512, 1)
    assert np.isnan(result.tpot_p50_s[0])
    assert float(result.e2e_p50_s[0]) == float(result.ttft_p50_s[0])


def test_only_a_compiled_engine_pays_for_empty_batch_slots(gpu: ReplicaArrays, neuron: ReplicaArrays) -> None:
    assert float(static_batch(neuron, 2, 512, 64, compiled_batch=16).tpot_p50_s[0]) > float(
        static_batch(neuron, 2, 512, 64, compiled_batch=2).tpot_p50_s[0])
    assert float(static_batch(gpu, 2, 512, 64, compiled_batch=16).tpot_p50_s[0]) == float(
        static_batch(gpu, 2, 512, 64).tpot_p50_s[0])
    # a compiled decode step computes every slot: two busy of sixteen cost what sixteen busy do
    assert float(static_batch(neuron, 2, 512, 64, compiled_batch=16).tpot_p50_s[0]) == pytest.approx(
        float(static_batch(neuron, 16, 512, 64).tpot_p50_s[0]))


def test_closed_loop_obeys_littles_law(gpu: ReplicaArrays) -> None:
    loop = closed_loop(gpu, 32, 512, 256, max_sequences=500)
    assert float(loop.requests_per_s[0]) * float(loop.e2e_p50_s[0]) == pytest.approx(32, rel=1e-6)
    assert float(loop.concurrency[0]) == 32 and not loop.saturated[0]
    assert float(loop.output_tokens_per_s[0]) == pytest.approx(float(loop.requests_per_s[0]) * 256)


def test_users_beyond_the_sequence_cap_only_wait(gpu: ReplicaArrays) -> None:
    full = closed_loop(gpu, 8, 512, 256, max_sequences=8)
    crowded = closed_loop(gpu, 64, 512, 256, max_sequences=8)
    assert crowded.saturated[0] and not full.saturated[0] and float(crowded.concurrency[0]) == 8
    assert float(crowded.requests_per_s[0]) == pytest.approx(float(full.requests_per_s[0]))  # same 8 in flight
    assert float(crowded.e2e_p50_s[0]) == pytest.approx(8 * float(full.e2e_p50_s[0]))  # Little's law: 64 / rate
    waited = float(crowded.ttft_p50_s[0]) - float(full.ttft_p50_s[0])
    assert waited == pytest.approx(float(crowded.e2e_p50_s[0]) - float(full.e2e_p50_s[0]))  # all of it in the queue


def test_chunked_prefill_keeps_other_prompts_from_stalling_decode(gpu: ReplicaArrays) -> None:
    stalling = dataclasses.replace(gpu, chunked_prefill=np.zeros(1))
    assert float(gpu.chunked_prefill[0]) == 1.0
    alone = [float(closed_loop(r, 1, 2048, 128).tpot_p50_s[0]) for r in (gpu, stalling)]
    busy = [float(closed_loop(r, 32, 2048, 128).tpot_p50_s[0]) for r in (gpu, stalling)]
    assert alone[0] == pytest.approx(alone[1])  # no other prompts to interleave
    assert busy[0] < busy[1]


def test_poisson_serves_the_offered_rate_with_littles_concurrency(gpu: ReplicaArrays) -> None:
    rate = float(closed_loop(gpu, 32, 512, 256, max_sequences=500).requests_per_s[0]) * 0.5
    open_loop = poisson(gpu, rate, 512, 256, max_sequences=500)
    assert not open_loop.saturated[0]
    assert float(open_loop.concurrency[0]) == pytest.approx(rate * float(open_loop.e2e_p50_s[0]), rel=0.05)
    assert float(open_loop.output_tokens_per_s[0]) == pytest.approx(rate * 256)
    assert float(open_loop.requests_per_s[0]) == pytest.approx(rate)


def test_an_overloaded_replica_is_saturated_with_unbounded_latency(gpu: ReplicaArrays) -> None:
    overloaded = poisson(gpu, 1000.0, 512, 256, max_sequences=500)
    assert overloaded.saturated[0]
    assert not np.isfinite(overloaded.ttft_p50_s[0]) and not np.isfinite(overloaded.e2e_p50_s[0])
    capped = closed_loop(gpu, 500, 512, 256, max_sequences=500)  # what 500 sequences in flight serve
    assert float(overloaded.requests_per_s[0]) == pytest.approx(float(capped.requests_per_s[0]), rel=1e-3)
    assert float(overloaded.concurrency[0]) == pytest.approx(500)


def test_a_load_point_is_the_rate_that_keeps_that_many_in_flight(gpu: ReplicaArrays) -> None:
    point = load_point(gpu, 24, 512, 256)
    rate = float(point.rate_per_s[0])
    assert point.stable[0]
    open_loop = poisson(gpu, rate, 512, 256)
    assert float(open_loop.concurrency[0]) == pytest.approx(24, rel=0.02)
    assert float(point.ttft_s[0]) == pytest.approx(float(open_loop.ttft_p50_s[0]), rel=0.02)
    assert float(point.tpot_s[0]) == pytest.approx(float(open_loop.tpot_p50_s[0]), rel=0.02)
    assert float(load_point(gpu, 48, 512, 256).rate_per_s[0]) > rate


def test_the_smallest_compiled_batch_that_keeps_up(neuron: ReplicaArrays) -> None:
    batch = smallest_compiled_batch(neuron, 2.0, 512, 256, 256)
    assert batch & (batch - 1) == 0 and batch > 1
    assert not poisson(neuron, 2.0, 512, 256, batch).saturated[0]
    assert poisson(neuron, 2.0, 512, 256, batch // 2).saturated[0]
    assert smallest_compiled_batch(neuron, 1e4, 512, 256, 100) == 64  # nothing keeps up: the largest power of two held
