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
from fleetwise.fit.memory import step_token_budget
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.hardware import ReplicaHardware
from fleetwise.perf.shape import DeploymentShape, Load, resolve_shape
from fleetwise.perf.step_time import StepCost
from fleetwise.sim.replica import ReplicaSim
from fleetwise.sim.request_log import RequestRecord
from fleetwise.sim.scheduler import ReplicaSettings
from fleetwise.units import GIB
from fleetwise.workload.requests import Requests

# AWS gives a spot instance a two-minute interruption notice
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html, read 2026-11-25).
SPOT_NOTICE_S = 120.0
Purchase = Literal["on-demand", "spot"]


MAX_REPLICAS = 10_000  # far above any real pool; guards against typos that would exhaust memory


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
    """What one pool runs: a model on N replicas of a hardware shape, how it is bought, and how it scales.

    Numbers out of range are refused here, with a message naming the pool, before anything is simulated.
    """

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
    purchase: Purchase = "on-demand"
    startup_s: float = 0.0  # launch to serving: boot + image pull + weight load
    compile_s: float = 0.0  # ahead-of-time compilation (Neuron), paid at every launch unless the artifact is cached
    compiled_cache: bool = False  # a compiled artifact is stored and reused, so launches skip compile_s
    autoscale: Autoscale | None = None
    spot: Spot | None = None

    def __post_init__(self) -> None:
        name = f"pool {self.name or self.hardware}"
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise FleetwiseError(f"{name}: replicas must be between 1 and {MAX_REPLICAS}, got {self.replicas}")
        if self.tp < 1:
            raise FleetwiseError(f"{name}: the tensor-parallel degree must be at least 1, got {self.tp}")
        if self.purchase not in ("on-demand", "spot"):
            raise FleetwiseError(f"{name}: purchase must be on-demand or spot, got {self.purchase!r}")
        for label, seconds in (("startup", self.startup_s), ("compile", self.compile_s)):
            if not (math.isfinite(seconds) and seconds >= 0):
                raise FleetwiseError(f"{name}: the {label} time must be a non-negative number of seconds, "
                                     f"got {seconds}")
        if self.autoscale is not None:
            _check_autoscale(name, self.autoscale, self.replicas)
        if self.spot is not None and not (math.isfinite(self.spot.interruptions_per_hour)
                                          and self.spot.interruptions_per_hour >= 0):
            raise FleetwiseError(f"{name}: spot interruptions per hour must be a non-negative number, "
                                 f"got {self.spot.interruptions_per_hour}")
        if self.spot is not None and self.purchase != "spot":
            raise FleetwiseError(f"{name}: spot interruptions apply to spot capacity only (purchase=spot)")

    @property
    def launch_delay_s(self) -> float:
        """Launch to serving: startup, plus compilation unless a compiled artifact is cached."""
        return self.startup_s + (0.0 if self.compiled_cache else self.compile_s)


def _check_autoscale(name: str, scale: Autoscale, replicas: int) -> None:
    if not (0 <= scale.min_replicas <= scale.max_replicas <= MAX_REPLICAS and replicas <= scale.max_replicas):
        raise FleetwiseError(f"{name}: need 0 <= autoscale min ({scale.min_replicas}) <= autoscale max "
                             f"({scale.max_replicas}) <= {MAX_REPLICAS}, with the starting replicas "
                             f"({replicas}) at most the max")
    if not (math.isfinite(scale.target_inflight) and scale.target_inflight > 0):
        raise FleetwiseError(f"{name}: the autoscaler's target in-flight requests per replica must be positive, "
                             f"got {scale.target_inflight}")
    if not (math.isfinite(scale.scale_down_cooldown_s) and scale.scale_down_cooldown_s >= 0):
        raise FleetwiseError(f"{name}: the scale-down cooldown must be non-negative, "
                             f"got {scale.scale_down_cooldown_s}")


def resolve_pool_shape(spec: PoolSpec, catalog: Catalog, calibration: CalibrationTable, context_tokens: int,
                       load: Load | None = None) -> DeploymentShape:
    """The shape one replica of the pool runs; the same refusals as `fit` for bad shapes."""
    return resolve_shape(spec.model, catalog, calibration, spec.hardware, spec.tp, spec.dtype, spec.engine,
                         context_tokens=context_tokens, kv_cache_dtype=spec.kv_cache_dtype, region=spec.region,
                         max_seqs=spec.max_seqs, load=load)


def replica_settings(shape: DeploymentShape, longest_tokens: int | None = None) -> ReplicaSettings:
    """Scheduler limits: KV blocks from the fit's KV room, and the engine's sequence and token budgets.

    An engine without paged KV (Neuron) gives every compiled slot the whole of the longest sequence it serves
    (`longest_tokens`, else the context the shape was sized for): one block per sequence.
    """
    engine = shape.engine
    per_token = shape.model.kv_cache_bytes_per_token(kv_cache_bytes(shape.kv_cache_dtype))
    paged = engine.kv_block_tokens.value is not None
    block_tokens = engine.kv_block_tokens.value or longest_tokens or shape.fit.context_tokens
    kv_blocks = int(shape.fit.kv_cache_gib * GIB / per_token) // block_tokens  # full-context tokens the KV holds
    # without paging a compiled batch has a KV slot per sequence: no more sequences than slots
    max_seqs = shape.max_seqs if paged else max(min(shape.max_seqs, kv_blocks), 1)
    return ReplicaSettings(kv_blocks=kv_blocks, block_tokens=block_tokens, max_seqs=max_seqs,
                           max_batched_tokens=max(step_token_budget(engine), max_seqs),
                           prefix_caching=bool(engine.prefix_caching.value))


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
    shape: DeploymentShape
    cost: StepCost
    settings: ReplicaSettings
    usd_per_replica_hour: float | None
    slots: list[Slot] = field(default_factory=list)
    surplus_since: float | None = None
    interruptions: int = 0

    @property
    def hardware(self) -> ReplicaHardware:
        """What one replica runs on."""
        return self.shape.hardware

    def ready(self, now: float) -> list[Slot]:
        """Replicas that accept requests now."""
        return [s for s in self.slots if s.stopped_s is None and not s.draining and s.ready_s <= now]

    def next_ready_s(self, now: float) -> float:
        """When the next launched replica starts serving (inf when none is starting): `ready` changes then."""
        return min((s.ready_s for s in self.slots if s.stopped_s is None and not s.draining and s.ready_s > now),
                   default=math.inf)

    def alive(self) -> list[Slot]:
        """Replicas launched and not yet stopped."""
        return [s for s in self.slots if s.stopped_s is None]

    def launch(self, now: float, requests: Requests, log: RequestRecord, number: int,
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
