"""One replica under a steady load, simulated: what `fleetwise predict --rate/--concurrency` reports.

Poisson arrivals at a fixed rate, or a closed loop of users who each send their next request when the last one
finishes; every request has the same prompt and output length. The first requests of a closed loop start
together, so they are left out of the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetwise.perf.step_time import StepCost
from fleetwise.sim.metrics import request_latencies
from fleetwise.sim.replica import ReplicaSim
from fleetwise.sim.request_log import RequestLog, RequestRecord
from fleetwise.sim.scheduler import ReplicaSettings
from fleetwise.workload.requests import Requests

STEADY_REQUESTS = 2000  # requests simulated per answer: enough for stable medians, fast enough to be interactive


@dataclass(frozen=True, slots=True)
class SteadyResult:
    """Latency and throughput of the steady part of a simulated run (seconds, tokens/s)."""

    ttft_p50_s: float
    ttft_mean_s: float
    tpot_p50_s: float
    tpot_mean_s: float
    e2e_p50_s: float
    output_tokens_per_s: float
    requests_per_s: float
    preemptions: int


def _uniform(n: int, prompt: int, output: int) -> Requests:
    return Requests(np.zeros(n), np.full(n, prompt, dtype=np.int64), np.full(n, output, dtype=np.int64),
                    np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64))


def _result(requests: Requests, log: RequestLog, keep: np.ndarray) -> SteadyResult:
    ttft, tpot, e2e = (values[keep] for values in request_latencies(requests, log))
    # throughput over the steady window, first to last arrival: the drain after the last arrival is not steady
    start, end = float(requests.arrival_s[keep].min()), float(requests.arrival_s[keep].max())
    finished = keep & (log.finish_s <= end)
    if end - start <= 0 or not finished.any():
        end, finished = float(log.finish_s[keep].max()), keep
    span = max(end - start, 1e-12)
    has_tpot = np.isfinite(tpot).any()
    return SteadyResult(
        ttft_p50_s=float(np.median(ttft)), ttft_mean_s=float(np.mean(ttft)),
        tpot_p50_s=float(np.nanmedian(tpot)) if has_tpot else float("nan"),
        tpot_mean_s=float(np.nanmean(tpot)) if has_tpot else float("nan"),
        e2e_p50_s=float(np.median(e2e)),
        output_tokens_per_s=float(requests.output_tokens[finished].sum()) / span,
        requests_per_s=float(finished.sum()) / span, preemptions=int(log.preemptions.sum()))


def poisson_steady(cost: StepCost, settings: ReplicaSettings, rate: float, prompt: int, output: int,
                   seed: int = 0, count: int = STEADY_REQUESTS) -> SteadyResult:
    """Poisson arrivals at `rate` per second through one replica."""
    requests = _uniform(count, prompt, output)
    requests.arrival_s[:] = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, count))
    record = RequestRecord(count)
    replica = ReplicaSim(0, cost, settings, requests, record)
    for request in range(count):
        replica.advance_to(float(requests.arrival_s[request]))
        replica.enqueue(request)
    replica.drain_all()
    log = record.log()
    return _result(requests, log, np.isfinite(log.finish_s))


def closed_loop_steady(cost: StepCost, settings: ReplicaSettings, users: int, prompt: int, output: int,
                       count: int = STEADY_REQUESTS) -> SteadyResult:
    """`users` users, each sending a new request the moment its previous one finishes."""
    total = users + max(count, 2 * users)
    requests = _uniform(total, prompt, output)
    record = RequestRecord(total)
    replica = ReplicaSim(0, cost, settings, requests, record)
    issued = users

    def next_request(_: int, now: float) -> None:
        nonlocal issued
        if issued < total:
            requests.arrival_s[issued] = now
            replica.enqueue(issued)
            issued += 1

    replica.on_finish = next_request
    for request in range(users):
        replica.enqueue(request)
    replica.drain_all()
    log = record.log()
    keep = np.isfinite(log.finish_s)
    keep[:users] = False  # the opening burst is not steady state
    return _result(requests, log, keep)
