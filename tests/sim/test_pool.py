"""Pools: specs refused when out of range, scheduler limits from the memory fit, launches, hours and prices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import kv_cache_bytes
from fleetwise.errors import FleetwiseError
from fleetwise.perf import CalibrationTable
from fleetwise.sim import Autoscale, PoolSpec, Spot
from fleetwise.sim.pool import MAX_REPLICAS, Pool, pool_price, replica_settings, resolve_pool_shape
from fleetwise.sim.request_log import RequestRecord
from fleetwise.units import GIB
from fleetwise.workload import Requests
from tests.sim.builders import pool_spec as _spec


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"tp": 0}, "tensor-parallel degree must be at least 1, got 0"),
     ({"replicas": 0}, "replicas must be between 1 and"),
     ({"replicas": MAX_REPLICAS + 1}, "replicas must be between 1 and"),
     ({"purchase": "reserved"}, "purchase must be on-demand or spot"),
     ({"startup_s": float("nan")}, "the startup time must be a non-negative number"),
     ({"startup_s": -5.0}, "the startup time must be a non-negative number"),
     ({"compile_s": -1.0}, "the compile time must be a non-negative number"),
     ({"compile_s": float("inf")}, "the compile time must be a non-negative number"),
     ({"autoscale": Autoscale(min_replicas=3, max_replicas=2)}, "autoscale min"),
     ({"replicas": 5, "autoscale": Autoscale(min_replicas=1, max_replicas=4)}, r"starting replicas \(5\)"),
     ({"autoscale": Autoscale(target_inflight=float("inf"))}, "target in-flight"),
     ({"autoscale": Autoscale(target_inflight=0.0)}, "target in-flight"),
     ({"autoscale": Autoscale(scale_down_cooldown_s=-1.0)}, "cool"),
     ({"purchase": "spot", "spot": Spot(float("nan"))}, "spot interruptions per hour must be a non-negative"),
     ({"purchase": "spot", "spot": Spot(-1.0)}, "spot interruptions per hour must be a non-negative"),
     ({"spot": Spot(2.0)}, r"spot interruptions apply to spot capacity only \(purchase=spot\)")],
    ids=["tp", "no-replicas", "too-many-replicas", "purchase", "nan-startup", "negative-startup",
         "negative-compile", "infinite-compile", "autoscale-min-above-max", "start-above-max", "infinite-target",
         "zero-target", "negative-cooldown", "nan-spot-rate", "negative-spot-rate", "spot-on-on-demand"],
)
def test_a_pool_spec_out_of_range_is_refused_when_made(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(FleetwiseError, match=message) as refused:
        _spec(name="web", **overrides)
    assert str(refused.value).startswith("pool web: ")  # the message names the pool


def test_a_message_names_an_unnamed_pool_by_its_hardware() -> None:
    with pytest.raises(FleetwiseError, match=r"^pool p5\.48xlarge: "):
        _spec(tp=0)


def test_a_spec_in_range_is_accepted() -> None:
    spec = _spec(replicas=2, purchase="spot", spot=Spot(0.0), autoscale=Autoscale(min_replicas=0, max_replicas=2))
    assert spec.replicas == 2 and spec.spot == Spot(0.0)


def test_a_launch_waits_for_startup_and_compilation_unless_the_artifact_is_cached() -> None:
    assert _spec(startup_s=60.0, compile_s=600.0).launch_delay_s == 660.0
    assert _spec(startup_s=60.0, compile_s=600.0, compiled_cache=True).launch_delay_s == 60.0
    assert _spec().launch_delay_s == 0.0


def test_gpu_replica_settings_fill_the_kv_room_with_16_token_blocks(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    spec = _spec()
    shape = resolve_pool_shape(spec, catalog, calibration, 2048)
    settings = replica_settings(shape)
    per_token = spec.model.kv_cache_bytes_per_token(kv_cache_bytes("auto"))
    room_tokens = shape.fit.kv_cache_gib * GIB / per_token
    assert settings.block_tokens == 16  # vLLM's paged KV
    assert settings.kv_blocks * 16 <= room_tokens < (settings.kv_blocks + 1) * 16 + 1
    assert settings.max_seqs == shape.max_seqs and settings.max_batched_tokens >= settings.max_seqs
    assert settings.prefix_caching


def test_neuron_replica_settings_give_each_sequence_one_block_of_the_longest_served(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    spec = _spec(hardware="inf2.48xlarge", tp=8)
    shape = resolve_pool_shape(spec, catalog, calibration, 2048)
    per_token = spec.model.kv_cache_bytes_per_token(kv_cache_bytes("auto"))
    room_tokens = shape.fit.kv_cache_gib * GIB / per_token
    for longest in (3000, 8192):
        settings = replica_settings(shape, longest)
        assert settings.block_tokens == longest  # contiguous KV per compiled slot
        assert settings.kv_blocks * longest <= room_tokens < (settings.kv_blocks + 1) * longest + 1
    assert replica_settings(shape).block_tokens == shape.fit.context_tokens == 2048  # else the sized context
    assert not replica_settings(shape).prefix_caching


def test_a_compiled_batch_never_exceeds_the_kv_slots_of_the_longest_sequence(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    spec = _spec(hardware="inf2.xlarge", tp=2, max_seqs=256)
    shape = resolve_pool_shape(spec, catalog, calibration, 1024)  # sized at a short context: room for many
    long = replica_settings(shape, 8192)
    assert shape.max_seqs == 256 and long.kv_blocks < 256
    assert long.max_seqs == long.kv_blocks  # one compiled slot per sequence the KV cache holds at 8,192 tokens
    gpu = resolve_pool_shape(_spec(max_seqs=256), catalog, calibration, 1024)
    assert replica_settings(gpu, 8192).max_seqs == 256  # paged KV: the engine cap stands, blocks are shared


def _pool(catalog: Catalog, calibration: CalibrationTable, spec: PoolSpec) -> Pool:
    shape = resolve_pool_shape(spec, catalog, calibration, 1024)
    return Pool(0, spec, shape, shape.step_cost(), replica_settings(shape),
                pool_price(catalog, spec, shape.hardware))


def _empty() -> tuple[Requests, RequestRecord]:
    return Requests(np.zeros(0), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)), \
        RequestRecord(0)


def test_a_launched_replica_serves_after_its_launch_delay(catalog: Catalog, calibration: CalibrationTable) -> None:
    pool = _pool(catalog, calibration, _spec(startup_s=45.0, compile_s=30.0))
    requests, log = _empty()
    slot = pool.launch(100.0, requests, log, number=7, rng=np.random.default_rng(0))
    assert (slot.launched_s, slot.ready_s, slot.sim.clock, slot.sim.index) == (100.0, 175.0, 175.0, 7)
    assert math.isinf(slot.interrupt_s)  # on-demand: never interrupted
    assert pool.ready(174.9) == [] and pool.ready(175.0) == [slot]


def test_spot_interruptions_arrive_as_a_poisson_process(catalog: Catalog, calibration: CalibrationTable) -> None:
    rate = 6.0  # per replica-hour
    pool = _pool(catalog, calibration, _spec(purchase="spot", spot=Spot(rate)))
    requests, log = _empty()
    rng = np.random.default_rng(1)
    gaps = np.array([pool.launch(50.0, requests, log, n, rng).interrupt_s - 50.0 for n in range(10_000)])
    # exponential gaps: mean 1/rate, and the standard deviation equal to the mean (1% standard error here)
    assert gaps.mean() == pytest.approx(3600.0 / rate, rel=0.05)
    assert gaps.std() == pytest.approx(3600.0 / rate, rel=0.05)


def test_ready_replicas_exclude_draining_stopped_and_starting_ones(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    pool = _pool(catalog, calibration, _spec(startup_s=10.0))
    requests, log = _empty()
    rng = np.random.default_rng(0)
    serving, draining, stopped, starting = (pool.launch(t, requests, log, n, rng)
                                            for n, t in enumerate((0.0, 0.0, 0.0, 95.0)))
    draining.draining = True
    stopped.stopped_s = 50.0
    assert pool.ready(100.0) == [serving]
    assert pool.alive() == [serving, draining, starting]
    assert pool.next_ready_s(100.0) == 105.0  # the ready list changes when the starting one serves
    assert pool.ready(105.0) == [serving, starting] and math.isinf(pool.next_ready_s(105.0))


def test_replica_hours_run_from_launch_to_stop(catalog: Catalog, calibration: CalibrationTable) -> None:
    pool = _pool(catalog, calibration, _spec(startup_s=300.0))
    requests, log = _empty()
    rng = np.random.default_rng(0)
    first, second = pool.launch(0.0, requests, log, 0, rng), pool.launch(1800.0, requests, log, 1, rng)
    first.stopped_s = 3600.0
    assert second.stopped_s is None
    # start-up time is billed: 1 h for the first, 2 h (to the end) for the second
    assert pool.replica_hours(end=9000.0) == pytest.approx(1.0 + 2.0)


@pytest.mark.parametrize(("hardware", "tp"), [("p5.48xlarge", 1), ("p5.48xlarge", 4), ("inf2.48xlarge", 8)])
def test_a_replica_pays_its_share_of_the_instance_price(catalog: Catalog, calibration: CalibrationTable,
                                                        hardware: str, tp: int) -> None:
    on_demand = _pool(catalog, calibration, _spec(hardware=hardware, tp=tp))
    spot = _pool(catalog, calibration, _spec(hardware=hardware, tp=tp, purchase="spot"))
    units = on_demand.hardware.layout.units
    region = on_demand.spec.region
    assert on_demand.usd_per_replica_hour == pytest.approx(catalog.usd_per_hour(hardware, region, "on-demand")
                                                           * tp / units)
    assert spot.usd_per_replica_hour == pytest.approx(catalog.usd_per_hour(hardware, region, "spot") * tp / units)
    assert spot.usd_per_replica_hour < on_demand.usd_per_replica_hour
