"""What users would see from a simulated run: latency percentiles, goodput, utilisation, cost, a time series."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from fleetwise.sim.fleet import FleetRun
from fleetwise.sim.itl import ItlHistogram
from fleetwise.sim.pool import Pool
from fleetwise.sim.request_log import RequestLog
from fleetwise.sim.result import Interval, Percentiles, PoolReport, SimulationResult
from fleetwise.workload.requests import Requests

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True, slots=True)
class Slo:
    """Latency targets a request must meet to count towards goodput (None: no target)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_s: float | None = None


def _percentiles(values: np.ndarray, scale: float) -> Percentiles:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return Percentiles(None, None, None, None)
    return Percentiles(*(round(float(np.percentile(finite, p)) * scale, 4) for p in PERCENTILES))


def request_latencies(requests: Requests, log: RequestLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per request TTFT, TPOT (vLLM's: (E2E − TTFT) / (output − 1), NaN for one output token) and E2E, seconds."""
    ttft = log.first_token_s - requests.arrival_s
    e2e = log.finish_s - requests.arrival_s
    outputs = requests.output_tokens.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(outputs > 1, (e2e - ttft) / (outputs - 1), np.nan)
    return ttft, tpot, e2e


def summarize(run: FleetRun, requests: Requests, slo: Slo = Slo(), interval_s: float = 60.0) -> SimulationResult:
    """The run's report: every request accounted for, the percentiles users feel, and what it cost."""
    log = run.log
    done = np.isfinite(log.finish_s)
    ttft, tpot, e2e = request_latencies(requests, log)
    outputs = requests.output_tokens.astype(np.float64)
    end = run.makespan_s
    pools = [_pool_report(pool, end, log) for pool in run.pools]
    costs = [p.cost_usd for p in pools]
    cost = None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))
    produced = float(outputs[done].sum())
    shared = requests.prefix_id >= 0
    return SimulationResult(
        model=run.pools[0].spec.model.name, router=run.spec.router, requests=len(requests),
        completed=int(done.sum()), dropped=len(log.dropped), dropped_reasons=dict(Counter(log.dropped.values())),
        preemptions=int(log.preemptions.sum()), requests_preempted=int((log.preemptions > 0).sum()),
        ttft_ms=_percentiles(ttft[done], 1e3), tpot_ms=_percentiles(tpot[done], 1e3),
        e2e_s=_percentiles(e2e[done], 1.0), itl_ms=_itl_percentiles(log.itl),
        queueing_delay_ms=_percentiles((log.admitted_s - requests.arrival_s)[done], 1e3),
        goodput=round(float(_meets(slo, done, ttft, tpot, e2e).mean()), 5),
        output_tokens_per_s=round(produced / run.makespan_s, 3) if run.makespan_s > 0 else 0.0,
        **_occupancy(run), requeued=int((log.requeues > 0).sum()),
        prefix_cache_hit_rate=round(float(log.prefix_hit_tokens[shared].sum()
                                          / max(requests.prefix_tokens[shared].sum(), 1)), 5),
        instance_hours=round(sum(p.instance_hours for p in pools), 5), makespan_s=round(end, 4),
        cost_usd=None if cost is None else round(cost, 5),
        usd_per_million_output_tokens=None if cost is None or produced <= 0 else round(cost / produced * 1e6, 5),
        pools=pools, timeseries=_timeseries(requests, log.finish_s, ttft, interval_s, run.samples))


def _meets(slo: Slo, done: np.ndarray, ttft: np.ndarray, tpot: np.ndarray, e2e: np.ndarray) -> np.ndarray:
    """Completed requests within every SLO given (a one-token request has no TPOT to miss)."""
    meets = done.copy()
    if slo.ttft_ms is not None:
        meets &= ttft * 1e3 <= slo.ttft_ms
    if slo.tpot_ms is not None:
        meets &= ~(tpot * 1e3 > slo.tpot_ms)
    if slo.e2e_s is not None:
        meets &= e2e <= slo.e2e_s
    return meets


def _occupancy(run: FleetRun) -> dict[str, float]:
    """KV occupancy (with and without the prefix cache) and busy share, over each replica's serving time."""
    end = run.makespan_s
    slots = [(pool, slot) for pool in run.pools for slot in pool.slots]
    served_until = {id(slot): min(slot.stopped_s if slot.stopped_s is not None else end, end) for _, slot in slots}
    up_s = {id(slot): max(served_until[id(slot)] - slot.ready_s, 0.0) for _, slot in slots}
    kv_capacity = sum(pool.settings.kv_blocks * up_s[id(slot)] for pool, slot in slots)
    serving_s = sum(up_s.values())
    held = sum(slot.sim.active_block_seconds + slot.sim.cached_block_seconds(served_until[id(slot)])
               for _, slot in slots)
    active = sum(slot.sim.active_block_seconds for _, slot in slots)
    return {"kv_utilization": round(held / kv_capacity, 5) if kv_capacity > 0 else 0.0,
            "kv_active_utilization": round(active / kv_capacity, 5) if kv_capacity > 0 else 0.0,
            "busy_share": round(sum(slot.sim.busy_s for _, slot in slots) / serving_s, 5) if serving_s > 0 else 0.0}


def _itl_percentiles(itl: ItlHistogram) -> Percentiles:
    """Percentiles of the gaps between output tokens, each decode step weighted by the tokens it produced (read
    from the run's histogram: within 0.1% of the exact percentiles of every gap)."""
    found = itl.percentiles(PERCENTILES)
    if found is None:
        return Percentiles(None, None, None, None)
    return Percentiles(*(round(v * 1e3, 4) for v in found))


def _pool_report(pool: Pool, end: float, log: RequestLog) -> PoolReport:
    """One pool's replicas, hours, cost and share of the requests."""
    numbers = np.array([slot.sim.index for slot in pool.slots])
    hours = pool.replica_hours(end)
    price = pool.usd_per_replica_hour
    return PoolReport(
        name=pool.spec.name or pool.hardware.name, hardware=pool.hardware.name, engine=pool.hardware.engine.id,
        tp=pool.spec.tp, dtype=pool.spec.dtype, purchase=pool.spec.purchase, replicas_launched=len(pool.slots),
        replica_hours=round(hours, 5), instance_hours=round(hours / max(pool.hardware.replicas_per_instance, 1), 5),
        usd_per_replica_hour=price, cost_usd=None if price is None else round(price * hours, 5),
        requests_finished=int(np.isin(log.replica[np.isfinite(log.finish_s)], numbers).sum()),
        spot_interruptions=pool.interruptions, max_seqs=pool.settings.max_seqs,
        kv_blocks_per_replica=pool.settings.kv_blocks)


def _timeseries(requests: Requests, finish: np.ndarray, ttft: np.ndarray, interval_s: float,
                samples: list[tuple[float, tuple[int, ...]]]) -> list[Interval]:
    """Per interval: arrivals, completions, output tokens finished, and the median TTFT of that interval's arrivals."""
    done = np.isfinite(finish)
    end = float(np.nanmax(np.concatenate([requests.arrival_s, finish[done]])))
    bins = max(int(np.ceil(end / interval_s)), 1)
    arrived = np.minimum((requests.arrival_s // interval_s).astype(np.int64), bins - 1)
    finished_bin = np.minimum((finish[done] // interval_s).astype(np.int64), bins - 1)
    arrivals = np.bincount(arrived, minlength=bins)
    completions = np.bincount(finished_bin, minlength=bins)
    tokens = np.bincount(finished_bin, weights=requests.output_tokens[done], minlength=bins)
    medians = _medians_by_bin(arrived, ttft, bins)
    ready: dict[int, tuple[int, ...]] = {}
    for when, counts in samples:  # the last autoscaler sample in each interval
        ready[min(int(when // interval_s), bins - 1)] = counts
    rows = []
    last: tuple[int, ...] | None = None
    for b in range(bins):
        last = ready.get(b, last)
        median = medians[b]
        rows.append(Interval(start_s=b * interval_s, arrivals=int(arrivals[b]), completions=int(completions[b]),
                             output_tokens=int(tokens[b]),
                             ttft_ms_p50=None if np.isnan(median) else round(float(median) * 1e3, 3),
                             ready_replicas=None if last is None else list(last)))
    return rows


def _medians_by_bin(bin_of: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    """The median of the finite values in each bin (NaN for an empty bin), without a pass per bin."""
    finite = np.isfinite(values)
    groups, sample = bin_of[finite], values[finite]
    order = np.lexsort((sample, groups))
    ordered = sample[order]
    counts = np.bincount(groups, minlength=bins)
    starts = np.cumsum(counts) - counts
    medians = np.full(bins, np.nan)
    filled = counts > 0
    low = starts[filled] + (counts[filled] - 1) // 2
    high = starts[filled] + counts[filled] // 2
    medians[filled] = (ordered[low] + ordered[high]) / 2.0  # as numpy's median: the mean of the middle pair
    return medians
