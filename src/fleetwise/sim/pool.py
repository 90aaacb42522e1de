"""A pool of identical replicas: how one is built from the perf model, and how the pool grows, shrinks and pays.

Replicas start (boot, image pull, weight load, Neuron compile: `startup_s`) before they serve; the autoscaler
sizes the pool to a target number of requests in flight per replica; spot replicas are interrupted at random
with AWS's two-minute notice and replaced. Every replica is billed from launch to stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.dtypes import kv_cache_bytes
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import FALLBACK_BATCHED_TOKENS
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.hardware import ReplicaHardware
from fleetwise.perf.shape import Load, resolve_shape
from fleetwise.perf.step_time import StepCost
from fleetwise.sim.replica import ReplicaSettings, ReplicaSim, RequestLog
from fleetwise.units import GIB
from fleetwise.workload.requests import Requests

# AWS gives a spot instance a two-minute interruption notice
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html, read 2026-11-25).
SPOT_NOTICE_S = 120.0


@dataclass(frozen=True, slots=True)
class Autoscale:
    """Keep about `target_inflight` requests per replica, between `min_replicas` and `max_replicas`."""

    min_replicas: int = 1
    max_replicas: int = 8
    target_inflight: float = 32.0
    scale_down_cooldown_s: float = 300.0  # a replica must have been surplus this long before it is drained


@dataclass(frozen=True, slots=True)
class Spot:
    """Spot capacity: interruptions per replica-hour (a Poisson process)."""

    interruptions_per_hour: float


@dataclass(frozen=True)
class PoolSpec:
    """What one pool runs: a model on N replicas of a hardware shape, how it is bought, and how it scales."""

    model: ModelArchitecture
    hardware: str
    tp: int
    dtype: str
    engine: str | None
    replicas: int  # at the start (and throughout, without autoscaling)
    max_seqs: int | None = None  # default: the engine's max_num_seqs, else what the KV cache holds
    kv_cache_dtype: str = "auto"
    region: str = DEFAULT_REGION
    name: str = ""
    purchase: Literal["on-demand", "spot"] = "on-demand"
    startup_s: float = 0.0  # launch to serving: boot + image pull + weight load
    compile_s: float = 0.0  # ahead-of-time compilation (Neuron), paid at every launch unless the artifact is cached
    compiled_cache: bool = False  # a compiled artifact is stored and reused, so launches skip compile_s
    autoscale: Autoscale | None = None
    spot: Spot | None = None

    @property
    def launch_delay_s(self) -> float:
        """Launch to serving: startup, plus compilation unless a compiled artifact is cached."""
        return self.startup_s + (0.0 if self.compiled_cache else self.compile_s)


def build_replica(spec: PoolSpec, catalog: Catalog, calibration: CalibrationTable, context_tokens: int,
                  load: tuple[float, float, float] | None = None) -> tuple[ReplicaHardware, StepCost, ReplicaSettings]:
    """Hardware, step costs and scheduler limits of one replica; the same refusals as `fit` for bad shapes."""
    shape = resolve_shape(spec.model, catalog, calibration, spec.hardware, spec.tp, spec.dtype, spec.engine,
                          context_tokens=context_tokens, kv_cache_dtype=spec.kv_cache_dtype, region=spec.region,
                          max_seqs=spec.max_seqs, load=None if load is None else Load(*load))
    settings = replica_settings(spec.model, shape.arrays, shape.fit.kv_cache_gib, spec.kv_cache_dtype,
                                shape.max_seqs, shape.hardware)
    return shape.hardware, shape.step_cost(), settings


def replica_settings(model: ModelArchitecture, arrays: object, kv_cache_gib: float, kv_cache_dtype: str,
                     max_seqs: int, hardware: ReplicaHardware | None = None) -> ReplicaSettings:
    """Scheduler limits: KV blocks from the fit's KV room, and the engine's sequence and token budgets."""
    per_token = model.kv_cache_bytes_per_token(kv_cache_bytes(kv_cache_dtype))
    block_tokens = 16  # vLLM's default KV block size
    kv_blocks = int(kv_cache_gib * GIB / per_token) // block_tokens  # full-context tokens the KV holds
    engine = hardware.engine if hardware is not None else None
    tokens = engine.batched_token_limit if engine is not None else None
    caching = bool(engine.prefix_caching.value) if engine is not None else True
    return ReplicaSettings(kv_blocks=kv_blocks, block_tokens=block_tokens, max_seqs=max_seqs,
                           max_batched_tokens=max(tokens or FALLBACK_BATCHED_TOKENS, max_seqs),
                           prefix_caching=caching)


@dataclass
class Slot:
    """One replica's life: launched, ready to serve, draining (no new requests), stopped."""

    sim: ReplicaSim
    launched_s: float
    ready_s: float
    draining: bool = False
    stopped_s: float | None = None
    interrupt_s: float = math.inf  # spot notice time


@dataclass
class Pool:
    """A pool at run time: its replicas over time and what they cost."""

    index: int
    spec: PoolSpec
    hardware: ReplicaHardware
    cost: StepCost
    settings: ReplicaSettings
    usd_per_replica_hour: float | None
    slots: list[Slot] = field(default_factory=list)
    surplus_since: float | None = None
    interruptions: int = 0

    def ready(self, now: float) -> list[Slot]:
        """Replicas that accept requests now."""
        return [s for s in self.slots if s.stopped_s is None and not s.draining and s.ready_s <= now]

    def alive(self) -> list[Slot]:
        """Replicas launched and not yet stopped."""
        return [s for s in self.slots if s.stopped_s is None]

    def launch(self, now: float, requests: Requests, log: RequestLog, number: int,
               rng: np.random.Generator) -> Slot:
        """Start a replica now; it serves from now + startup_s (its global replica number is `number`)."""
        sim = ReplicaSim(number, self.cost, self.settings, requests, log)
        ready = now + self.spec.launch_delay_s
        sim.clock = ready
        slot = Slot(sim, now, ready)
        if self.spec.spot is not None and self.spec.spot.interruptions_per_hour > 0:
            slot.interrupt_s = now + float(rng.exponential(3600.0 / self.spec.spot.interruptions_per_hour))
        self.slots.append(slot)
        return slot

    def replica_hours(self, end: float) -> float:
        """Hours every replica was up, launch to stop (or to `end`)."""
        return sum(((s.stopped_s if s.stopped_s is not None else end) - s.launched_s) for s in self.slots) / 3600.0


def pool_price(catalog: Catalog, spec: PoolSpec, hardware: ReplicaHardware) -> float | None:
    """USD per replica-hour for the pool's purchase option (spot: the catalog's spot snapshot)."""
    if spec.purchase == "on-demand":
        return hardware.usd_per_replica_hour
    price = catalog.usd_per_hour(hardware.instance.instance_type, spec.region, "spot")
    if price is None:
        raise FleetwiseError(f"no spot price for {hardware.instance.instance_type} in {spec.region} in the catalog")
    return price * hardware.tp / hardware.layout.units
