"""A fleet: pools of replicas behind one router, with autoscaling and spot interruptions, fed a request stream.

Routers: round-robin; least-outstanding; prefix-affinity (a shared prefix always goes to the same replica, chosen
by rendezvous hashing so scaling moves few prefixes, while that replica is not far busier than the least busy
one); cost-aware spillover (fill the cheapest pool while a replica there would start the request within the TTFT
SLO, overflow to the next pool).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fleetwise.catalog.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.sim.pool import SPOT_NOTICE_S, Pool, PoolSpec, Slot, build_replica, pool_price
from fleetwise.sim.replica import RequestLog
from fleetwise.workload.requests import Requests

Router = Literal["round-robin", "least-outstanding", "prefix-affinity", "cost-aware"]
ROUTERS: tuple[str, ...] = ("round-robin", "least-outstanding", "prefix-affinity", "cost-aware")


@dataclass(frozen=True)
class FleetSpec:
    """Pools behind a router; `slo_ttft_ms` is what the cost-aware router protects."""

    pools: tuple[PoolSpec, ...]
    router: Router = "least-outstanding"
    slo_ttft_ms: float | None = None
    control_interval_s: float = 10.0  # how often the autoscaler looks
    seed: int = 0  # spot interruptions


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
    _check(spec, requests)
    log = RequestLog.empty(len(requests))
    rng = np.random.default_rng(spec.seed)
    pools = _build_pools(spec, requests, catalog, calibration)
    numbers = iter(range(1 << 62))
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
    return FleetRun(spec, pools, log, end, fleet.samples)


def run_pool(spec: PoolSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable,
             router: Router = "least-outstanding") -> FleetRun:
    """One pool behind `router`."""
    return run_fleet(FleetSpec(pools=(spec,), router=router), requests, catalog, calibration)


def _check(spec: FleetSpec, requests: Requests) -> None:
    if not spec.pools:
        raise FleetwiseError("a fleet needs at least one pool")
    if spec.router not in ROUTERS:
        raise FleetwiseError(f"unknown router {spec.router!r}; expected one of {', '.join(ROUTERS)}")
    if spec.router == "cost-aware" and spec.slo_ttft_ms is None:
        raise FleetwiseError("the cost-aware router needs a TTFT SLO (--slo-ttft-ms) to decide when to spill over")
    if not len(requests):
        raise FleetwiseError("the workload has no requests")
    if not (math.isfinite(spec.control_interval_s) and spec.control_interval_s > 0):
        raise FleetwiseError("the control interval must be a positive number of seconds, "
                             f"got {spec.control_interval_s}")
    if spec.slo_ttft_ms is not None and not (math.isfinite(spec.slo_ttft_ms) and spec.slo_ttft_ms > 0):
        raise FleetwiseError(f"the TTFT SLO must be a positive number of milliseconds, got {spec.slo_ttft_ms}")
    if spec.seed < 0:
        raise FleetwiseError(f"the seed must not be negative, got {spec.seed}")
    for pool in spec.pools:
        _check_pool(pool)


_MASK = (1 << 64) - 1


def rendezvous_weight(prefix: int, replica: int) -> int:
    """A pseudo-random weight of (prefix, replica); a prefix goes to the ready replica with the highest weight.

    Highest-random-weight hashing (Thaler and Ravishankar, 1998): when a replica joins or leaves, only the
    prefixes it wins or held move; the rest stay where their cached KV is. The mixing is splitmix64's
    (Steele, Lea and Flood, 2014; the constants of java.util.SplittableRandom).
    """
    x = (prefix * 0x9E3779B97F4A7C15 + replica * 0xC2B2AE3D27D4EB4F) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


MAX_REPLICAS = 10_000  # far above any real pool; guards against typos that would exhaust memory


def _check_pool(pool: PoolSpec) -> None:
    name = f"pool {pool.name or pool.hardware}"
    if not 1 <= pool.replicas <= MAX_REPLICAS:
        raise FleetwiseError(f"{name}: replicas must be between 1 and {MAX_REPLICAS}, got {pool.replicas}")
    if pool.tp < 1:
        raise FleetwiseError(f"{name}: the tensor-parallel degree must be at least 1, got {pool.tp}")
    for label, seconds in (("startup", pool.startup_s), ("compile", pool.compile_s)):
        if not (math.isfinite(seconds) and seconds >= 0):
            raise FleetwiseError(f"{name}: the {label} time must be a non-negative number of seconds, got {seconds}")
    scale = pool.autoscale
    if scale is not None:
        if not (0 <= scale.min_replicas <= scale.max_replicas <= MAX_REPLICAS and pool.replicas <= scale.max_replicas):
            raise FleetwiseError(f"{name}: need 0 <= autoscale min ({scale.min_replicas}) <= autoscale max "
                                 f"({scale.max_replicas}) <= {MAX_REPLICAS}, with the starting replicas "
                                 f"({pool.replicas}) at most the max")
        if not (math.isfinite(scale.target_inflight) and scale.target_inflight > 0):
            raise FleetwiseError(f"{name}: the autoscaler's target in-flight requests per replica must be positive, "
                                 f"got {scale.target_inflight}")
        if not (math.isfinite(scale.scale_down_cooldown_s) and scale.scale_down_cooldown_s >= 0):
            raise FleetwiseError(f"{name}: the scale-down cooldown must be non-negative, "
                                 f"got {scale.scale_down_cooldown_s}")
    if pool.spot is not None and not (math.isfinite(pool.spot.interruptions_per_hour)
                                      and pool.spot.interruptions_per_hour >= 0):
        raise FleetwiseError(f"{name}: spot interruptions per hour must be a non-negative number, "
                             f"got {pool.spot.interruptions_per_hour}")


def _build_pools(spec: FleetSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable) -> list[Pool]:
    span = max(requests.duration_s, 1e-9)
    typical = int(np.mean(requests.prompt_tokens + requests.output_tokens))
    pools = []
    for index, pool_spec in enumerate(spec.pools):
        load = (len(requests) / span / max(pool_spec.replicas * len(spec.pools), 1),
                float(np.mean(requests.prompt_tokens)), float(np.mean(requests.output_tokens)))
        context = max(1, min(typical, pool_spec.model.max_position_embeddings))
        hardware, cost, settings = build_replica(pool_spec, catalog, calibration, context, load)
        pools.append(Pool(index, pool_spec, hardware, cost, settings, pool_price(catalog, pool_spec, hardware)))
    return pools


class _Fleet:
    """The run's mutable state: pools, timed events (autoscaler ticks, spot notices), requests waiting for a replica."""

    def __init__(self, spec: FleetSpec, pools: list[Pool], requests: Requests, log: RequestLog,
                 rng: np.random.Generator, numbers: object) -> None:
        self.spec, self.pools, self.req, self.log, self.rng = spec, pools, requests, log, rng
        self.numbers = numbers
        self.events: list[tuple[float, int, str, int]] = []  # (time, tie-break, kind, pool)
        self.sequence = 0
        self.pending: list[int] = []  # requests with no ready replica to go to
        self.samples: list[tuple[float, tuple[int, ...]]] = []
        self.round_robin = 0
        self.order = sorted(pools, key=lambda p: (self._cost_rank(p), p.index))
        self.autoscaling = any(p.spec.autoscale for p in pools)
        if self.autoscaling:
            self._push(0.0, "tick", -1)
        for pool in pools:
            for slot in pool.slots:
                self._schedule_interruption(pool, slot)

    def _push(self, when: float, kind: str, pool: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, pool))

    def _schedule_interruption(self, pool: Pool, slot: Slot) -> None:
        if math.isfinite(slot.interrupt_s):
            self._push(slot.interrupt_s, "spot-notice", pool.index)

    def handle_events_until(self, now: float) -> None:
        """Process autoscaler ticks, spot notices and replicas becoming ready, in time order, up to `now`."""
        while self.events and self.events[0][0] <= now:
            when, _, kind, pool_index = heapq.heappop(self.events)
            if kind == "tick":
                self._autoscale(when)
                self._push(when + self.spec.control_interval_s, "tick", -1)
            elif kind == "spot-notice":
                self._spot_notice(self.pools[pool_index], when)
            elif kind == "spot-stop":
                self._spot_stop(self.pools[pool_index], when)
            elif kind == "ready":
                self._flush_pending(when)

    def _work_left(self) -> bool:
        return bool(self.pending) or any(s.sim.outstanding for p in self.pools for s in p.alive())

    # ---- routing ----------------------------------------------------------------------------------

    def route(self, request: int, now: float) -> None:
        """Send a request to a replica chosen by the router; with none ready it waits for the next one."""
        slot = self._choose(request, now)
        if slot is None:
            self.pending.append(request)
            return
        slot.sim.advance_to(now)
        slot.sim.enqueue(request)

    def _choose(self, request: int, now: float) -> Slot | None:
        router = self.spec.router
        if router == "cost-aware":
            return self._cost_aware(request, now)
        ready = [s for p in self.pools for s in p.ready(now)]
        if not ready:
            return None
        if router == "round-robin":
            self.round_robin += 1
            return ready[self.round_robin % len(ready)]
        for slot in ready:
            slot.sim.advance_to(now)
        least = min(ready, key=lambda s: (s.sim.outstanding, s.sim.index))
        prefix = int(self.req.prefix_id[request])
        if router == "prefix-affinity" and prefix >= 0:
            preferred = max(ready, key=lambda s: rendezvous_weight(prefix, s.sim.index))
            # stick to the prefix's replica unless it holds more than a full batch beyond the least busy one
            if preferred.sim.outstanding <= least.sim.outstanding + preferred.sim.settings.max_seqs:
                return preferred
        return least

    def _cost_aware(self, request: int, now: float) -> Slot | None:
        """The cheapest pool whose least busy replica would start the request within the TTFT SLO."""
        slo_s = (self.spec.slo_ttft_ms or 0.0) / 1e3
        fallback: Slot | None = None
        for pool in self.order:
            ready = pool.ready(now)
            if not ready:
                continue
            for slot in ready:
                slot.sim.advance_to(now)
            best = min(ready, key=lambda s: (s.sim.outstanding, s.sim.index))
            fallback = fallback or best
            if self._expected_ttft(pool, best, request) <= slo_s:
                return best
        return fallback

    def _expected_ttft(self, pool: Pool, slot: Slot, request: int) -> float:
        """Own prefill, plus the prefills queued ahead when every sequence slot is taken."""
        prompt = float(self.req.prompt_tokens[request])
        own = pool.cost.step_s(0.0, 0.0, prompt, pool.cost.causal_attended(0.0, prompt), 1.0)
        ahead = max(slot.sim.outstanding - slot.sim.settings.max_seqs + 1, 0)
        return own * (1 + ahead)

    def _cost_rank(self, pool: Pool) -> float:
        """USD per output token at a full batch of mean-sized requests: how the cost-aware router orders pools."""
        if pool.usd_per_replica_hour is None:
            return math.inf
        batch = float(pool.settings.max_seqs)
        prompt, output = float(np.mean(self.req.prompt_tokens)), float(np.mean(self.req.output_tokens))
        prefill = pool.cost.step_s(0.0, 0.0, batch * prompt, batch * pool.cost.causal_attended(0.0, prompt), batch)
        decode = pool.cost.step_s(batch, batch * pool.cost.attended(prompt + output / 2), 0.0, 0.0, 0.0)
        tokens_per_s = batch * output / (prefill + output * decode)
        return pool.usd_per_replica_hour / tokens_per_s

    def _flush_pending(self, now: float) -> None:
        waiting, self.pending = self.pending, []
        for request in waiting:
            self.route(request, now)

    # ---- autoscaling and spot -----------------------------------------------------------------------

    def _autoscale(self, now: float) -> None:
        counts = []
        for pool in self.pools:
            policy = pool.spec.autoscale
            alive = pool.alive()
            for slot in alive:
                slot.sim.advance_to(now)
            self._stop_drained(pool, now)
            counts.append(len(pool.ready(now)))
            if policy is None:
                continue
            scaled = sum(1 for p in self.pools if p.spec.autoscale)
            inflight = sum(s.sim.outstanding for s in alive) + len(self.pending) / scaled  # waiting ones shared
            desired = min(max(math.ceil(inflight / policy.target_inflight), policy.min_replicas),
                          policy.max_replicas)
            serving = [s for s in pool.alive() if not s.draining]
            if desired > len(serving):
                for _ in range(desired - len(serving)):
                    self._launch(pool, now)
                pool.surplus_since = None
            elif desired < len(serving):
                pool.surplus_since = now if pool.surplus_since is None else pool.surplus_since
                if now - pool.surplus_since >= policy.scale_down_cooldown_s:
                    idlest = min((s for s in serving if s.ready_s <= now), key=lambda s: s.sim.outstanding,
                                 default=None)
                    if idlest is not None:
                        idlest.draining = True
                        pool.surplus_since = None
            else:
                pool.surplus_since = None
        self.samples.append((now, tuple(counts)))

    def _launch(self, pool: Pool, now: float) -> None:
        slot = pool.launch(now, self.req, self.log, next(self.numbers), self.rng)  # type: ignore[call-overload]
        self._push(slot.ready_s, "ready", pool.index)
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
                self._push(now + SPOT_NOTICE_S, "spot-stop", pool.index)

    def _spot_stop(self, pool: Pool, now: float) -> None:
        """The interrupted replica goes away; whatever it still held is re-queued, never lost."""
        for slot in pool.alive():
            if slot.interrupt_s + SPOT_NOTICE_S == now:
                slot.sim.advance_to(now)
                held = slot.sim.evict()
                slot.stopped_s = now
                for request in held:
                    self.log.requeues[request] += 1
                    self.route(request, now)

    def finish(self) -> float:
        """After the last arrival: keep handling events while work remains, then drain; returns the makespan."""
        while self._work_left() and self.events:
            upcoming = self.events[0][0]
            for pool in self.pools:
                for slot in pool.alive():
                    slot.sim.advance_to(upcoming)
            if not self._work_left():
                break  # the work finished before this event: nothing launches (or bills) after the end
            self.handle_events_until(upcoming)
        for pool in self.pools:
            for slot in pool.alive():
                slot.sim.drain_all()
        finished = self.log.finish_s[np.isfinite(self.log.finish_s)]
        end = max(float(finished.max()) if finished.size else 0.0, float(self.req.arrival_s[-1]))
        for pool in self.pools:
            for slot in pool.alive():
                slot.stopped_s = max(end, slot.ready_s) if slot.stopped_s is None else slot.stopped_s
        for request in self.pending:
            self.log.dropped[request] = "no replica became ready to serve it"
        return end
