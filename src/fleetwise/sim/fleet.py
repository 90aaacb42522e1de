"""A fleet: pools of replicas behind one router, with autoscaling and spot interruptions, fed a request stream."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fleetwise.catalog.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.shape import Load
from fleetwise.sim.events import AutoscaleTick, Event, EventQueue, ReplicaReady, SpotNotice, SpotStop
from fleetwise.sim.pool import (
    SPOT_NOTICE_S,
    Pool,
    PoolSpec,
    Slot,
    pool_price,
    replica_settings,
    resolve_pool_shape,
)
from fleetwise.sim.request_log import RequestLog, RequestRecord
from fleetwise.sim.routers import ROUTERS, Router
from fleetwise.workload.requests import Requests

DEFAULT_ROUTER = "least-outstanding"


@dataclass(frozen=True)
class FleetSpec:
    """Pools behind a router; `slo_ttft_ms` is what the cost-aware router protects. Checked when made."""

    pools: tuple[PoolSpec, ...]
    router: str = DEFAULT_ROUTER
    slo_ttft_ms: float | None = None
    control_interval_s: float = 10.0  # how often the autoscaler looks
    seed: int = 0  # spot interruptions

    def __post_init__(self) -> None:
        if not self.pools:
            raise FleetwiseError("a fleet needs at least one pool")
        if self.router not in ROUTERS:
            raise FleetwiseError(f"unknown router {self.router!r}; expected one of {', '.join(ROUTERS)}")
        if ROUTERS[self.router].needs_ttft_slo and self.slo_ttft_ms is None:
            raise FleetwiseError(f"the {self.router} router needs a TTFT SLO (--slo-ttft-ms) to decide when to "
                                 "spill over")
        if not (math.isfinite(self.control_interval_s) and self.control_interval_s > 0):
            raise FleetwiseError("the control interval must be a positive number of seconds, "
                                 f"got {self.control_interval_s}")
        if self.slo_ttft_ms is not None and not (math.isfinite(self.slo_ttft_ms) and self.slo_ttft_ms > 0):
            raise FleetwiseError(f"the TTFT SLO must be a positive number of milliseconds, got {self.slo_ttft_ms}")
        if self.seed < 0:
            raise FleetwiseError(f"the seed must not be negative, got {self.seed}")


@dataclass(frozen=True)
class FleetRun:
    """A simulated run: what happened to each request, and the pools' replicas over time."""

    spec: FleetSpec
    pools: list[Pool]
    log: RequestLog
    makespan_s: float
    samples: list[tuple[float, tuple[int, ...]]]  # (time, ready replicas per pool) at each control tick


def run_fleet(spec: FleetSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable) -> FleetRun:
    """Replay `requests` through the fleet; every request ends completed or dropped with a reason."""
    if not len(requests):
        raise FleetwiseError("the workload has no requests")
    log = RequestRecord(len(requests))
    rng = np.random.default_rng(spec.seed)
    pools = _build_pools(spec, requests, catalog, calibration)
    numbers = itertools.count()
    for pool in pools:
        for _ in range(pool.spec.replicas):
            pool.launch(-pool.spec.launch_delay_s, requests, log, next(numbers), rng)  # ready at time zero
    fleet = _Fleet(spec, pools, requests, log, rng, numbers)
    longest = min(p.spec.model.max_position_embeddings for p in pools)
    too_long = requests.prompt_tokens + requests.output_tokens > longest
    for request in range(len(requests)):
        now = float(requests.arrival_s[request])
        fleet.handle_events_until(now)
        if too_long[request]:
            log.dropped[request] = f"prompt + output exceed the model's {longest} tokens"
            continue
        fleet.route(request, now)
    end = fleet.finish()
    return FleetRun(spec, pools, log.log(), end, fleet.samples)


def run_pool(spec: PoolSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable,
             router: str = DEFAULT_ROUTER) -> FleetRun:
    """One pool behind `router`."""
    return run_fleet(FleetSpec(pools=(spec,), router=router), requests, catalog, calibration)


def _build_pools(spec: FleetSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable) -> list[Pool]:
    span = max(requests.duration_s, 1e-9)
    lengths = requests.prompt_tokens + requests.output_tokens
    typical, longest = int(np.mean(lengths)), int(lengths.max())
    pools = []
    for index, pool_spec in enumerate(spec.pools):
        # a compiled (Neuron) batch is sized for this pool's share of the mean load
        load = Load(len(requests) / span / max(pool_spec.replicas * len(spec.pools), 1),
                    float(np.mean(requests.prompt_tokens)), float(np.mean(requests.output_tokens)))
        context = max(1, min(typical, pool_spec.model.max_position_embeddings))
        shape = resolve_pool_shape(pool_spec, catalog, calibration, context, load)
        settings = replica_settings(shape, min(longest, pool_spec.model.max_position_embeddings))
        pools.append(Pool(index, pool_spec, shape, shape.step_cost(), settings,
                          pool_price(catalog, pool_spec, shape.hardware)))
    return pools


class _Fleet:
    """The run's mutable state: pools, timed events (autoscaler ticks, spot notices), requests waiting for a replica."""

    def __init__(self, spec: FleetSpec, pools: list[Pool], requests: Requests, log: RequestRecord,
                 rng: np.random.Generator, numbers: Iterator[int]) -> None:
        self.spec, self.pools, self.req, self.log, self.rng = spec, pools, requests, log, rng
        self.numbers = numbers
        self.events = EventQueue()
        self.pending: list[int] = []  # requests with no ready replica to go to
        self.samples: list[tuple[float, tuple[int, ...]]] = []
        self.router: Router = ROUTERS[spec.router](pools, requests, spec.slo_ttft_ms)
        if any(p.spec.autoscale for p in pools):
            self.events.push(0.0, AutoscaleTick())
        for pool in pools:
            for slot in pool.slots:
                self._schedule_interruption(pool, slot)

    def _schedule_interruption(self, pool: Pool, slot: Slot) -> None:
        if math.isfinite(slot.interrupt_s):
            self.events.push(slot.interrupt_s, SpotNotice(pool.index))

    def handle_events_until(self, now: float) -> None:
        """Process autoscaler ticks, spot notices and replicas becoming ready, in time order, up to `now`."""
        while (due := self.events.pop_until(now)) is not None:
            self._handle(*due)

    def _handle(self, when: float, event: Event) -> None:
        self.router.invalidate()  # every event may advance, launch, start, drain or stop replicas
        match event:
            case AutoscaleTick():
                self._autoscale(when)
                self.events.push(when + self.spec.control_interval_s, AutoscaleTick())
            case SpotNotice(pool=index):
                self._spot_notice(self.pools[index], when)
            case SpotStop(pool=index):
                self._spot_stop(self.pools[index], when)
            case ReplicaReady():
                self._flush_pending(when)

    def _work_left(self) -> bool:
        return bool(self.pending) or any(s.sim.outstanding for p in self.pools for s in p.alive())

    def route(self, request: int, now: float) -> None:
        """Send a request to a replica chosen by the router; with none ready it waits for the next one."""
        slot = self.router.choose(request, now)
        if slot is None:
            self.pending.append(request)
            return
        slot.sim.advance_to(now)
        slot.sim.enqueue(request)
        self.router.placed(slot)

    def _flush_pending(self, now: float) -> None:
        waiting, self.pending = self.pending, []
        for request in waiting:
            self.route(request, now)

    # ---- autoscaling and spot -----------------------------------------------------------------------

    def _autoscale(self, now: float) -> None:
        counts = []
        scaled = sum(1 for p in self.pools if p.spec.autoscale)
        for pool in self.pools:
            alive = pool.alive()
            for slot in alive:
                slot.sim.advance_to(now)
            self._stop_drained(pool, now)
            counts.append(len(pool.ready(now)))
            if pool.spec.autoscale is not None:
                inflight = sum(s.sim.outstanding for s in alive) + len(self.pending) / scaled  # waiting ones shared
                self._scale(pool, inflight, now)
        self.samples.append((now, tuple(counts)))

    def _scale(self, pool: Pool, inflight: float, now: float) -> None:
        """Launch replicas up to the target, or drain the idlest once the pool has been surplus for a cool-down."""
        policy = pool.spec.autoscale
        assert policy is not None
        desired = min(max(math.ceil(inflight / policy.target_inflight), policy.min_replicas), policy.max_replicas)
        serving = [s for s in pool.alive() if not s.draining]
        if desired > len(serving):
            for _ in range(desired - len(serving)):
                self._launch(pool, now)
            pool.surplus_since = None
        elif desired < len(serving):
            pool.surplus_since = now if pool.surplus_since is None else pool.surplus_since
            if now - pool.surplus_since >= policy.scale_down_cooldown_s:
                idlest = min((s for s in serving if s.ready_s <= now), key=lambda s: s.sim.outstanding, default=None)
                if idlest is not None:
                    idlest.draining = True
                    pool.surplus_since = None
        else:
            pool.surplus_since = None

    def _launch(self, pool: Pool, now: float) -> None:
        slot = pool.launch(now, self.req, self.log, next(self.numbers), self.rng)
        self.events.push(slot.ready_s, ReplicaReady(pool.index))
        self._schedule_interruption(pool, slot)

    def _stop_drained(self, pool: Pool, now: float) -> None:
        """Scaled-down replicas stop once empty (interrupted spot replicas stop at their deadline instead)."""
        for slot in pool.alive():
            if slot.draining and not slot.sim.outstanding and slot.interrupt_s > now:
                slot.stopped_s = max(now, slot.sim.clock)

    def _spot_notice(self, pool: Pool, now: float) -> None:
        """Two minutes' warning: stop routing to the replica, launch its replacement, stop it at the deadline."""
        for slot in pool.alive():
            if slot.interrupt_s == now:
                was_draining, slot.draining = slot.draining, True
                pool.interruptions += 1
                if not was_draining:  # a replica being scaled down needs no replacement
                    self._launch(pool, now)
                self.events.push(now + SPOT_NOTICE_S, SpotStop(pool.index))

    def _spot_stop(self, pool: Pool, now: float) -> None:
        """The interrupted replica goes away; whatever it still held is re-queued, never lost."""
        for slot in pool.alive():
            if slot.interrupt_s + SPOT_NOTICE_S == now:
                slot.sim.advance_to(now)
                held = slot.sim.evict()
                slot.stopped_s = now
                self.router.invalidate()  # routed again below, to the replicas left
                for request in held:
                    self.log.requeues[request] += 1
                    self.route(request, now)

    def finish(self) -> float:
        """After the last arrival: keep handling events while work remains, then drain; returns the makespan."""
        while self._work_left() and self.events:
            upcoming = self.events.next_time()
            for pool in self.pools:
                for slot in pool.alive():
                    slot.sim.advance_to(upcoming)
            if not self._work_left():
                break  # the work finished before this event: nothing launches (or bills) after the end
            self.handle_events_until(upcoming)
        for pool in self.pools:
            for slot in pool.alive():
                slot.sim.drain_all()
        end = max(max((t for t in self.log.finish_s if not math.isnan(t)), default=0.0),
                  float(self.req.arrival_s[-1]))
        for pool in self.pools:
            for slot in pool.alive():
                slot.stopped_s = max(end, slot.ready_s) if slot.stopped_s is None else slot.stopped_s
        for request in self.pending:
            self.log.dropped[request] = "no replica became ready to serve it"
        return end
