"""A pool of identical replicas behind a router, fed a request stream; builds replicas from the perf model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.dtypes import get_dtype, kv_cache_bytes
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import FALLBACK_BATCHED_TOKENS, fit_one
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.hardware import ReplicaHardware, resolve_hardware
from fleetwise.perf.predict import smallest_compiled_batch
from fleetwise.perf.step_time import ReplicaConfig, build_arrays
from fleetwise.sim.replica import ReplicaSettings, ReplicaSim, RequestLog
from fleetwise.sim.steps import StepCost
from fleetwise.units import GIB
from fleetwise.workload.requests import Requests

Router = Literal["round-robin", "least-outstanding"]


@dataclass(frozen=True)
class PoolSpec:
    """What one pool runs: a model on N replicas of a hardware shape, and its scheduler limits."""

    model: ModelArchitecture
    hardware: str
    tp: int
    dtype: str
    engine: str | None
    replicas: int
    router: Router = "least-outstanding"
    max_seqs: int | None = None  # default: the engine's max_num_seqs, else what the KV cache holds
    kv_cache_dtype: str = "auto"
    region: str = DEFAULT_REGION


@dataclass(frozen=True)
class PoolRun:
    """A simulated run: what happened to each request, and the replicas' accumulated state."""

    spec: PoolSpec
    hardware: ReplicaHardware
    settings: ReplicaSettings
    log: RequestLog
    replicas: list[ReplicaSim]
    makespan_s: float


def build_replica(spec: PoolSpec, catalog: Catalog, calibration: CalibrationTable, context_tokens: int,
                  load: tuple[float, float, float] | None = None) -> tuple[ReplicaHardware, StepCost, ReplicaSettings]:
    """Hardware, step costs and scheduler limits of one replica; the same refusals as `fit` for bad shapes."""
    hardware = resolve_hardware(catalog, spec.hardware, spec.tp, spec.engine, spec.region)
    dtype = get_dtype(spec.dtype)
    fit = fit_one(spec.model, catalog, hardware.instance, hardware.engine, spec.tp, dtype, context_tokens,
                  region=spec.region, kv_cache_dtype=spec.kv_cache_dtype)
    if not fit.fits:
        raise FleetwiseError(f"{hardware.name} TP={spec.tp} {dtype.id}: {fit.reason}")
    efficiency = calibration.lookup(hardware.engine.id, hardware.chip.id, hardware.chip.kind)
    arrays = build_arrays([ReplicaConfig(spec.model, hardware, dtype, efficiency, spec.kv_cache_dtype)])
    per_token = spec.model.kv_cache_bytes_per_token(kv_cache_bytes(spec.kv_cache_dtype))
    block_tokens = 16  # vLLM's default KV block size
    kv_blocks = int(fit.kv_cache_gib * GIB / per_token) // block_tokens  # full-context tokens the KV holds
    engine_seqs = hardware.engine.max_num_seqs.value if hardware.engine.max_num_seqs else None
    max_seqs = spec.max_seqs or engine_seqs or fit.max_sequences
    if spec.max_seqs is None and hardware.engine.compiled_shapes.value and load is not None:
        rate, prompt, output = load  # compile for the smallest power-of-two batch that keeps up
        max_seqs = smallest_compiled_batch(arrays, rate, prompt, output, fit.max_sequences)
    if spec.max_seqs is not None and spec.max_seqs < 1:
        raise FleetwiseError(f"--max-seqs must be at least 1, got {spec.max_seqs}")
    tokens = hardware.engine.max_num_batched_tokens.value if hardware.engine.max_num_batched_tokens else None
    settings = ReplicaSettings(kv_blocks=kv_blocks, block_tokens=block_tokens, max_seqs=max_seqs,
                               max_batched_tokens=max(tokens or FALLBACK_BATCHED_TOKENS, max_seqs),
                               prefix_caching=bool(hardware.engine.prefix_caching.value))
    return hardware, StepCost.from_arrays(arrays), settings


def run_pool(spec: PoolSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable) -> PoolRun:
    """Replay `requests` through the pool; every request ends completed or dropped with a reason."""
    if spec.replicas < 1:
        raise FleetwiseError(f"--replicas must be at least 1, got {spec.replicas}")
    if not len(requests):
        raise FleetwiseError("the workload has no requests")
    typical = int(np.mean(requests.prompt_tokens + requests.output_tokens))  # sizes the default batch limit
    span = max(requests.duration_s, 1e-9)
    load = (len(requests) / span / spec.replicas, float(np.mean(requests.prompt_tokens)),
            float(np.mean(requests.output_tokens)))
    hardware, cost, settings = build_replica(spec, catalog, calibration,
                                             max(1, min(typical, spec.model.max_position_embeddings)), load)
    log = RequestLog.empty(len(requests))
    replicas = [ReplicaSim(i, cost, settings, requests, log) for i in range(spec.replicas)]
    too_long = requests.prompt_tokens + requests.output_tokens > spec.model.max_position_embeddings
    cycle = itertools.cycle(replicas)
    for request in range(len(requests)):
        arrival = float(requests.arrival_s[request])
        if too_long[request]:
            log.dropped[request] = f"prompt + output exceed the model's {spec.model.max_position_embeddings} tokens"
            continue
        if spec.router == "round-robin":
            target = next(cycle)
            target.advance_to(arrival)
        else:
            for replica in replicas:
                replica.advance_to(arrival)
            target = min(replicas, key=lambda r: (r.outstanding, r.index))
        target.enqueue(request)
    for replica in replicas:
        _drain(replica)
    finished = log.finish_s[np.isfinite(log.finish_s)]
    makespan = max(float(finished.max()) if finished.size else 0.0, float(requests.arrival_s[-1]))
    return PoolRun(spec, hardware, settings, log, replicas, makespan)


def _drain(replica: ReplicaSim) -> None:
    """Run a replica until everything it holds has finished; what can never be scheduled is dropped, with why."""
    while replica.outstanding:
        if not replica.offset and not replica.prefilling and not replica.can_schedule():
            for request in replica.waiting:
                replica.log.dropped[request] = "never schedulable: the KV cache cannot hold it"
            replica.waiting.clear()
            return
        replica.advance_to(replica.clock + 3600.0)
