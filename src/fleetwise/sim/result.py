"""What `simulate` answers, as typed values; `SimulationResult.to_json()` gives the documented `--json` schema."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Percentiles:
    """p50/p90/p95/p99 of a latency over completed requests (None when no request has one)."""

    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class PoolReport:
    """One pool's replicas, hours, cost and share of the requests."""

    name: str
    hardware: str
    engine: str
    tp: int
    dtype: str
    purchase: str
    replicas_launched: int
    replica_hours: float
    instance_hours: float
    usd_per_replica_hour: float | None
    cost_usd: float | None
    requests_finished: int
    spot_interruptions: int
    max_seqs: int
    kv_blocks_per_replica: int


@dataclass(frozen=True)
class Interval:
    """One row of the time series: arrivals, completions, output tokens, median TTFT of its arrivals."""

    start_s: float
    arrivals: int
    completions: int
    output_tokens: int
    ttft_ms_p50: float | None
    ready_replicas: list[int] | None  # per pool, at the interval's last autoscaler look (None without one)


@dataclass(frozen=True)
class SimulationResult:
    """Every request accounted for, the percentiles users feel, utilisation, what it cost, and a time series."""

    model: str
    router: str
    requests: int
    completed: int
    dropped: int
    dropped_reasons: dict[str, int]
    preemptions: int
    requests_preempted: int
    ttft_ms: Percentiles
    tpot_ms: Percentiles
    e2e_s: Percentiles
    itl_ms: Percentiles
    queueing_delay_ms: Percentiles
    goodput: float  # share of requests meeting every SLO given
    output_tokens_per_s: float
    kv_utilization: float  # KV blocks held over serving time, prefix cache included
    kv_active_utilization: float  # KV blocks held by running sequences only
    busy_share: float
    requeued: int
    prefix_cache_hit_rate: float
    instance_hours: float
    makespan_s: float
    cost_usd: float | None
    usd_per_million_output_tokens: float | None
    pools: list[PoolReport]
    timeseries: list[Interval]

    def to_json(self) -> dict[str, Any]:
        """The `--json` document."""
        return asdict(self)
