"""Check a screened deployment in the serving simulator, and add replicas where its p95 misses the SLO.

The peak hour: `demand.peak_requests` (a window of the busiest hour's traffic) through each pool at its peak
replica count, each pool taking its share of each bucket (requests assigned at random in those shares, as a
size-aware router would). The day: a short window of every hour's traffic at that hour's replica count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.context import PlanContext
from fleetwise.plan.costing import Deployment, PoolPlan, buy_pool
from fleetwise.plan.demand import HOURS, draw_window
from fleetwise.plan.spec import PlanSpec
from fleetwise.sim.fleet import run_pool
from fleetwise.sim.metrics import request_latencies
from fleetwise.sim.pool import PoolSpec
from fleetwise.sim.routers import RoundRobin
from fleetwise.workload.requests import Requests

# Round-robin: only the chosen replica advances per arrival, so big pools simulate fast; with identical replicas
# it balances a little worse than least-outstanding, so a deployment that passes here has margin.
VERIFY_ROUTER = RoundRobin.name
MAX_REPAIRS = 4  # rounds of adding replicas (while they help) before a deployment misses the SLO in simulation
DAY_REQUESTS = 500  # requests simulated per hour of the day (about), in a window of DAY_WINDOW_S seconds
DAY_WINDOW_S = (60.0, 900.0)  # at least, at most


@dataclass(frozen=True)
class Check:
    """Simulated p95 latency of a deployment on some traffic, and whether it holds the SLOs."""

    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    goodput: float  # share of requests meeting both SLOs
    requests: int
    passed: bool


def _assign(pools: list[PoolPlan], requests: Requests, bucket_of: np.ndarray, seed: int) -> np.ndarray:
    """Pool index of every request, drawn in each bucket's shares."""
    if len(pools) == 1:
        return np.zeros(len(requests), dtype=np.int64)
    shares = np.array([p.bucket_share for p in pools])  # (P, B)
    shares = shares / np.maximum(shares.sum(axis=0, keepdims=True), 1e-12)
    cumulative = np.cumsum(shares[:, bucket_of], axis=0)  # (P, N)
    draw = np.random.default_rng(seed).random(len(requests))
    return np.asarray(np.minimum((draw[None, :] > cumulative).sum(axis=0), len(pools) - 1), dtype=np.int64)


def _signature(option: Option) -> tuple[object, ...]:
    """What a replica's simulation depends on: options with equal signatures (the same chip, TP, dtype and batch
    on different instance sizes) behave the same, so their runs are shared."""
    return (option.engine, option.accelerator, option.tp, option.dtype, option.max_seqs, option.kv_cache_gib,
            option.capacity.tobytes(), option.curve_ttft_s.tobytes(), option.curve_tpot_s.tobytes())


def _check(spec: PlanSpec, ttft: np.ndarray, tpot: np.ndarray) -> Check:
    if not ttft.size:
        return Check(None, None, 1.0, 0, True)
    ttft_p95 = float(np.percentile(ttft, 95)) * 1e3
    has_tpot = np.isfinite(tpot)
    tpot_p95 = float(np.percentile(tpot[has_tpot], 95)) * 1e3 if has_tpot.any() else None
    meets = (ttft * 1e3 <= spec.slo.ttft_p95_ms) & ~(tpot * 1e3 > spec.slo.tpot_p95_ms)
    passed = ttft_p95 <= spec.slo.ttft_p95_ms and (tpot_p95 is None or tpot_p95 <= spec.slo.tpot_p95_ms)
    return Check(round(ttft_p95, 2) if math.isfinite(ttft_p95) else None,
                 None if tpot_p95 is None else round(tpot_p95, 3), round(float(meets.mean()), 5), int(ttft.size),
                 passed)


def _excess(spec: PlanSpec, check: Check) -> float:
    """How far a check is from its SLOs: the worse of p95 TTFT and TPOT over their targets."""
    ttft = (check.ttft_ms_p95 or math.inf) / spec.slo.ttft_p95_ms if check.requests else 0.0
    tpot = (check.tpot_ms_p95 or 0.0) / spec.slo.tpot_p95_ms
    return max(ttft, tpot)


@dataclass
class Verifier:
    """Simulates a plan's deployments on its traffic; runs and traffic windows are made once per plan."""

    context: PlanContext
    _runs: dict[object, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _hours: dict[int, Requests] = field(default_factory=dict)

    def simulate(self, pools: list[PoolPlan], replicas: list[int], requests: Requests, bucket_of: np.ndarray,
                 traffic: object) -> tuple[Check, list[Check]]:
        """Run each pool on its share of `requests` (named `traffic`); the whole deployment's check and each pool's.

        Requests longer than the model's context are left out: no deployment serves them (the plan reports their
        share). A pool run already made on the same traffic is reused.
        """
        ctx = self.context
        servable = requests.prompt_tokens + requests.output_tokens <= ctx.model.max_position_embeddings
        requests, bucket_of = requests.select(servable), bucket_of[servable]
        owner = _assign(pools, requests, bucket_of, seed=len(requests))
        ttft_all, tpot_all, per_pool = [], [], []
        for index, (pool, count) in enumerate(zip(pools, replicas, strict=True)):
            mine = requests.select(owner == index)
            if not len(mine):
                per_pool.append(Check(None, None, 1.0, 0, True))
                continue
            key = (traffic, tuple(p.bucket_share.tobytes() for p in pools), index, _signature(pool.option), count)
            if key not in self._runs:
                self._runs[key] = self._run(pool.option, count, mine)
            ttft, tpot = self._runs[key]
            ttft_all.append(ttft)
            tpot_all.append(tpot)
            per_pool.append(_check(ctx.spec, ttft, tpot))
        whole = _check(ctx.spec, np.concatenate(ttft_all) if ttft_all else np.array([]),
                       np.concatenate(tpot_all) if tpot_all else np.array([]))
        return whole, per_pool

    def _run(self, option: Option, replicas: int, requests: Requests) -> tuple[np.ndarray, np.ndarray]:
        """Per-request TTFT (inf when dropped: it misses every SLO) and TPOT of one pool."""
        ctx = self.context
        pool_spec = PoolSpec(model=ctx.model, hardware=option.instance, tp=option.tp, dtype=option.dtype,
                             engine=option.engine, replicas=replicas, max_seqs=option.max_seqs, region=ctx.spec.region)
        run = run_pool(pool_spec, requests, ctx.catalog, ctx.calibration, router=VERIFY_ROUTER)
        ttft, tpot, _ = request_latencies(requests, run.log)
        return np.where(np.isfinite(ttft), ttft, np.inf), tpot

    def _repair(self, pools: list[PoolPlan], counts: list[int], requests: Requests, bucket_of: np.ndarray,
                traffic: object, step: Callable[[int], int]) -> tuple[Check, list[int]]:
        """Simulate `requests` through the pools; while p95 misses and more replicas help (up to MAX_REPAIRS rounds,
        each simulated), add `step(count)` replicas to the pool furthest from its SLO. The last check and counts."""
        spec = self.context.spec
        counts = list(counts)
        previous = math.inf
        for attempt in range(MAX_REPAIRS + 1):
            whole, per_pool = self.simulate(pools, counts, requests, bucket_of, traffic)
            # more replicas stopped helping (under 1% closer to the SLO): e.g. a compiled engine whose TPOT is set
            # by its fixed decode batch, not by load
            if whole.passed or attempt == MAX_REPAIRS or _excess(spec, whole) > previous * 0.99:
                break
            previous = _excess(spec, whole)
            worst = max(range(len(pools)), key=lambda i: _excess(spec, per_pool[i]))
            counts[worst] += step(counts[worst])
        return whole, counts

    def peak(self, deployment: Deployment) -> tuple[Deployment, Check, int]:
        """Simulate the peak window; add replicas to the worst pool until p95 holds. The deployment, check, added."""
        demand, pools = self.context.demand, deployment.pools
        peak = [int(p.replicas.max()) for p in pools]
        whole, grown = self._repair(pools, peak, demand.peak_requests, demand.buckets.of_request, "peak",
                                    step=lambda count: max(1, math.ceil(0.1 * count)))
        added = sum(grown) - sum(peak)
        if added:  # scale every hour of a grown pool like its peak
            deployment = Deployment([buy_pool(self.context.spec, pool.option, pool.bucket_share,
                                              np.maximum(np.ceil(pool.replicas * count / top - 1e-9), 1))
                                     for pool, count, top in zip(pools, grown, peak, strict=True)], deployment.kind)
        return deployment, whole, added

    def day(self, deployment: Deployment) -> tuple[Deployment, list[Check]]:
        """Simulate a window of every hour at its replica counts; add a replica to an hour that misses.

        Hours with the same load and the same replicas are simulated once (a flat workload: one run for the day).
        The check stops at the first hour that misses even with replicas added (the list of checks is then shorter).
        """
        demand, pools = self.context.demand, deployment.pools
        replicas = [p.replicas.copy() for p in pools]  # the deployment passed in stays as it was
        checks: list[Check] = []
        seen: dict[tuple[float, tuple[int, ...]], tuple[Check, list[int]]] = {}
        for hour in range(HOURS):
            arrivals = demand.arrivals_per_s(hour)
            if arrivals <= 0:
                checks.append(Check(None, None, 1.0, 0, True))
                continue
            counts = [int(p.replicas[hour]) for p in pools]
            key = (arrivals, tuple(counts))
            if key not in seen:
                seen[key] = self._check_hour(pools, counts, hour)
            check, repaired = seen[key]
            for pool_replicas, count in zip(replicas, repaired, strict=True):
                pool_replicas[hour] = count
            checks.append(check)
            if not check.passed:
                break  # the deployment fails the day: the remaining hours would not change that
        if any((r != p.replicas).any() for r, p in zip(replicas, pools, strict=True)):
            deployment = Deployment([buy_pool(self.context.spec, p.option, p.bucket_share, r)
                                     for p, r in zip(pools, replicas, strict=True)], deployment.kind)
        return deployment, checks

    def _check_hour(self, pools: list[PoolPlan], counts: list[int], hour: int) -> tuple[Check, list[int]]:
        """One hour's window through the pools, with a replica at a time added (while it helps) until it passes."""
        demand = self.context.demand
        if hour not in self._hours:
            seconds = min(max(DAY_REQUESTS / float(demand.hourly_rate[hour]), DAY_WINDOW_S[0]), DAY_WINDOW_S[1])
            self._hours[hour] = draw_window(demand.workload, demand.arrivals_per_s(hour), seconds,
                                            demand.workload.seed + hour + 1)
        requests = self._hours[hour]
        if len(requests) < 1:
            return Check(None, None, 1.0, 0, True), counts
        return self._repair(pools, counts, requests, demand.buckets.classify(requests), ("hour", hour),
                            step=lambda count: 1)
