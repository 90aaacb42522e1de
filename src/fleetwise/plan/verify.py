"""Check a screened deployment in the serving simulator, and size its replicas where its p95 misses the SLO.

The peak hour: `demand.peak_requests` (a window of the busiest hour's traffic) through each pool at its peak
replica count, each pool taking its share of each bucket (requests assigned at random in those shares, as a
size-aware router would). The day: a short window of every hour's traffic at that hour's replica count. Where a
check misses, `sizing.smallest_passing` finds the fewest replicas that pass (galloping up, then bisecting back);
every run is kept, so a count tried twice, or an option that behaves the same, is simulated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.context import PlanContext
from fleetwise.plan.costing import Deployment, PoolPlan, buy_pool
from fleetwise.plan.demand import HOURS, draw_window
from fleetwise.plan.sizing import MISSED, PASSED, STOPPED, Sizing, smallest_passing
from fleetwise.plan.spec import PlanSpec
from fleetwise.sim.fleet import run_pool
from fleetwise.sim.metrics import request_latencies
from fleetwise.sim.pool import PoolSpec
from fleetwise.sim.routers import RoundRobin
from fleetwise.workload.requests import Requests

# Round-robin: only the chosen replica advances per arrival, so big pools simulate fast; with identical replicas
# it balances a little worse than least-outstanding, so a deployment that passes here has margin.
VERIFY_ROUTER = RoundRobin.name
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


PASS_EMPTY = Check(None, None, 1.0, 0, True)  # no requests to serve: nothing can miss


@dataclass(frozen=True)
class Peak:
    """A deployment sized at the peak hour: grown where it missed, with its check and the replicas added."""

    deployment: Deployment  # stopped: the cheapest counts not ruled out, never simulated (a lower bound on cost)
    check: Check  # at the deployment's peak counts (stopped: at the last counts simulated)
    added: int
    stopped: bool = False  # more replicas would have cost at least the bound: it could no longer win


@dataclass(frozen=True)
class Day:
    """A deployment checked hour by hour, riskiest hours first, with replicas added to hours that missed."""

    deployment: Deployment
    checks: dict[int, Check]  # by hour: every hour when the day passed, else those checked
    missed: int | None = None  # the hour that missed even with replicas added
    stopped: bool = False  # the replicas added made it cost at least the bound: it could no longer win

    @property
    def passed(self) -> bool:
        """Every hour checked and held its SLOs."""
        return self.missed is None and not self.stopped

    def by_hour(self) -> list[Check]:
        """The checks in hour order."""
        return [self.checks[hour] for hour in sorted(self.checks)]


@dataclass
class Runs:
    """Simulator runs and traffic windows of one demand, kept for reuse (a what-if that changes only prices shares
    them), and how many runs and requests were simulated."""

    results: dict[object, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    hours: dict[int, tuple[Requests, np.ndarray]] = field(default_factory=dict)  # each hour's window, buckets
    splits: dict[object, list[Requests]] = field(default_factory=dict)
    simulations: int = 0
    requests: int = 0


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


def _key(pools: list[PoolPlan], index: int, count: int, traffic: object) -> tuple[object, ...]:
    """What one pool's run depends on: the traffic, how it is shared between the pools, the pool and its count."""
    return traffic, tuple(p.bucket_share.tobytes() for p in pools), index, _signature(pools[index].option), count


def _check(spec: PlanSpec, ttft: np.ndarray, tpot: np.ndarray) -> Check:
    if not ttft.size:
        return PASS_EMPTY
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


def peak_step(count: int) -> int:
    """Replicas a pool that misses at the peak gets per round: a tenth of the pool, at least one."""
    return max(1, math.ceil(0.1 * count))


def hour_step(count: int) -> int:
    """Replicas a pool that misses in an hour gets per round: one."""
    return 1


def scaled(spec: PlanSpec, deployment: Deployment, counts: tuple[int, ...]) -> Deployment:
    """The deployment with each pool's peak at `counts` and every other hour scaled like it, re-bought."""
    pools = []
    for pool, count in zip(deployment.pools, counts, strict=True):
        top = int(pool.replicas.max())
        replicas = pool.replicas if count == top else np.maximum(np.ceil(pool.replicas * count / top - 1e-9), 1)
        pools.append(pool if count == top else buy_pool(spec, pool.option, pool.bucket_share, replicas))
    return Deployment(pools, deployment.kind)


@dataclass
class Verifier:
    """Simulates a plan's deployments on its traffic, sizing their replicas; every run is kept in `runs`."""

    context: PlanContext
    runs: Runs = field(default_factory=Runs)

    def simulate(self, pools: list[PoolPlan], replicas: list[int], requests: Requests, bucket_of: np.ndarray,
                 traffic: object) -> tuple[Check, list[Check]]:
        """Run each pool on its share of `requests` (named `traffic`); the whole deployment's check and each pool's.

        Requests longer than the model's context are left out: no deployment serves them (the plan reports their
        share). A pool run already made on the same traffic is reused.
        """
        shares = tuple(p.bucket_share.tobytes() for p in pools)
        split = self.runs.splits.get((traffic, shares))
        if split is None:
            split = self.runs.splits[(traffic, shares)] = self._split(pools, requests, bucket_of)
        ttft_all, tpot_all, per_pool = [], [], []
        for index, (pool, count, mine) in enumerate(zip(pools, replicas, split, strict=True)):
            if not len(mine):
                per_pool.append(PASS_EMPTY)
                continue
            key = _key(pools, index, count, traffic)
            if key not in self.runs.results:
                self.runs.results[key] = self._run(pool.option, count, mine)
            ttft, tpot = self.runs.results[key]
            ttft_all.append(ttft)
            tpot_all.append(tpot)
            per_pool.append(_check(self.context.spec, ttft, tpot))
        whole = _check(self.context.spec, np.concatenate(ttft_all) if ttft_all else np.array([]),
                       np.concatenate(tpot_all) if tpot_all else np.array([]))
        return whole, per_pool

    def _split(self, pools: list[PoolPlan], requests: Requests, bucket_of: np.ndarray) -> list[Requests]:
        """Each pool's servable requests."""
        servable = requests.prompt_tokens + requests.output_tokens <= self.context.model.max_position_embeddings
        requests, bucket_of = requests.select(servable), bucket_of[servable]
        owner = _assign(pools, requests, bucket_of, seed=len(requests))
        return [requests.select(owner == index) for index in range(len(pools))]

    def _run(self, option: Option, replicas: int, requests: Requests) -> tuple[np.ndarray, np.ndarray]:
        """Per-request TTFT (inf when dropped: it misses every SLO) and TPOT of one pool."""
        ctx = self.context
        pool_spec = PoolSpec(model=ctx.model, hardware=option.instance, tp=option.tp, dtype=option.dtype,
                             engine=option.engine, replicas=replicas, max_seqs=option.max_seqs, region=ctx.spec.region)
        run = run_pool(pool_spec, requests, ctx.catalog, ctx.calibration, router=VERIFY_ROUTER)
        self.runs.simulations += 1
        self.runs.requests += len(requests)
        ttft, tpot, _ = request_latencies(requests, run.log)
        return np.where(np.isfinite(ttft), ttft, np.inf), tpot

    def peak(self, deployment: Deployment, bound: float = math.inf) -> Peak:
        """Simulate the peak window; where p95 misses, find the fewest replicas (per pool) that pass, unless the
        deployment would then cost at least `bound` (stopped). Every hour of a grown pool scales like its peak."""
        spec, demand, pools = self.context.spec, self.context.demand, deployment.pools
        start = tuple(int(p.replicas.max()) for p in pools)

        def probe(counts: tuple[int, ...]) -> tuple[Check, list[Check]]:
            return self.simulate(pools, list(counts), demand.peak_requests, demand.buckets.of_request, "peak")

        sizing = smallest_passing(probe, start, peak_step, partial(_excess, spec),
                                  lambda counts: scaled(spec, deployment, counts).monthly_usd, bound,
                                  partial(self._kept, pools, "peak"))
        grown = deployment if sizing.counts == start else scaled(spec, deployment, sizing.counts)
        return Peak(grown, sizing.verdict, sum(sizing.counts) - sum(start), sizing.outcome == STOPPED)

    def day(self, deployment: Deployment, bound: float = math.inf) -> Day:
        """Simulate a window of every hour at its replica counts, the riskiest hours first (the most load per
        screened replica); where an hour misses, find the fewest replicas that pass.

        Hours with the same load and the same replicas are simulated once (a flat workload: one run for the day).
        The check ends at the first hour that misses even with replicas added, or once the replicas added make the
        deployment cost at least `bound`. The deployment passed in stays as it was.
        """
        demand, pools = self.context.demand, deployment.pools
        replicas = [p.replicas.copy() for p in pools]
        checks = {hour: PASS_EMPTY for hour in range(HOURS) if demand.arrivals_per_s(hour) <= 0}
        seen: dict[tuple[float, tuple[int, ...]], Sizing[Check]] = {}
        for hour in self._riskiest_first(pools, set(checks)):
            counts = tuple(int(r[hour]) for r in replicas)
            key = (demand.arrivals_per_s(hour), counts)
            if key not in seen:
                seen[key] = self._size_hour(deployment, replicas, hour, bound)
            sizing = seen[key]
            for pool_replicas, count in zip(replicas, sizing.counts, strict=True):
                pool_replicas[hour] = count
            final = self._bought(deployment, replicas)
            if sizing.outcome == STOPPED or final.monthly_usd >= bound:  # stopped: the counts were never simulated
                return Day(final, checks if sizing.outcome == STOPPED else {**checks, hour: sizing.verdict},
                           stopped=True)
            checks[hour] = sizing.verdict
            if sizing.outcome == MISSED:
                return Day(final, checks, missed=hour)
        return Day(self._bought(deployment, replicas), checks)

    def _riskiest_first(self, pools: list[PoolPlan], skip: set[int]) -> list[int]:
        """Hours to check, the most screened load per replica first (the likeliest to miss), then by hour."""
        rates = self.context.demand.bucket_rates  # (24, B)
        use = np.zeros(HOURS)
        for pool in pools:
            capacity = pool.option.capacity
            per_replica = np.where(capacity > 0, pool.bucket_share / np.where(capacity > 0, capacity, 1.0), 0.0)
            use = np.maximum(use, rates @ per_replica / np.maximum(pool.replicas, 1))
        return sorted((h for h in range(HOURS) if h not in skip), key=lambda h: (-round(float(use[h]), 9), h))

    def _bought(self, deployment: Deployment, replicas: list[np.ndarray]) -> Deployment:
        """The deployment with these replicas per hour (the one given when nothing changed)."""
        if all((r == p.replicas).all() for r, p in zip(replicas, deployment.pools, strict=True)):
            return deployment
        return Deployment([buy_pool(self.context.spec, p.option, p.bucket_share, r)
                           for p, r in zip(deployment.pools, replicas, strict=True)], deployment.kind)

    def _size_hour(self, deployment: Deployment, replicas: list[np.ndarray], hour: int,
                   bound: float) -> Sizing[Check]:
        """One hour's window through the pools, and the fewest replicas (from the hour's own) that pass it."""
        demand, pools = self.context.demand, deployment.pools
        if hour not in self.runs.hours:
            seconds = min(max(DAY_REQUESTS / float(demand.hourly_rate[hour]), DAY_WINDOW_S[0]), DAY_WINDOW_S[1])
            window = draw_window(demand.workload, demand.arrivals_per_s(hour), seconds, demand.workload.seed + hour + 1)
            self.runs.hours[hour] = window, (demand.buckets.classify(window) if len(window) else np.zeros(0, int))
        requests, bucket_of = self.runs.hours[hour]
        start = tuple(int(r[hour]) for r in replicas)
        if len(requests) < 1:
            return Sizing(start, PASS_EMPTY, PASSED)

        def probe(counts: tuple[int, ...]) -> tuple[Check, list[Check]]:
            return self.simulate(pools, list(counts), requests, bucket_of, ("hour", hour))

        def cost(counts: tuple[int, ...]) -> float:
            trial = [r.copy() for r in replicas]
            for pool_replicas, count in zip(trial, counts, strict=True):
                pool_replicas[hour] = count
            return self._bought(deployment, trial).monthly_usd

        return smallest_passing(probe, start, hour_step, partial(_excess, self.context.spec), cost, bound,
                                partial(self._kept, pools, ("hour", hour)))

    def _kept(self, pools: list[PoolPlan], traffic: object, counts: tuple[int, ...]) -> bool:
        """Whether every pool's run at `counts` on `traffic` was made already (checking them costs nothing)."""
        return all(_key(pools, i, count, traffic) in self.runs.results for i, count in enumerate(counts))
