"""What `plan` answers, as typed values; `PlanResult.to_json()` gives the documented `--json` schema (version 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Question:
    """The question as planned: model, workload's rates and lengths, SLOs, where and how capacity is bought."""

    model: str
    workload: str
    peak_rate_per_s: float
    mean_rate_per_s: float
    hourly_rate_per_s: list[float]
    mean_output_tokens: float
    mean_prompt_tokens: float
    context_tokens: int
    slo: dict[str, float]
    region: str
    purchase: list[str]
    instances: list[str] | str  # "all" when not restricted
    engines: list[str] | str  # "default per hardware" when not restricted
    dtypes: list[str]
    latency_headroom: float
    traffic_scale: float
    prompt_scale: float
    spot_price_scale: float


@dataclass(frozen=True)
class PoolRow:
    """One pool of an option: its shape, replicas and instances, how they are bought, and what they cost."""

    instance: str
    accelerator: str
    kind: str  # gpu or neuron
    tp: int
    dtype: str
    engine: str
    max_seqs: int
    compiled_batch: bool
    replicas_peak: int
    replicas_min: int
    instances_peak: int
    instances_min: int
    replicas_per_instance: int
    purchase: list[str]
    reserved_instances: int
    reserved_term: str | None
    spot_instances_peak: int
    spot_spares_peak: int
    on_demand_instances_peak: int
    monthly_usd: float
    cost_by_purchase_monthly_usd: dict[str, float]
    break_even_utilization: dict[str, float | None]
    bucket_share: list[float]
    capacity_rps_per_replica: list[float]
    calibrated: bool
    prices_usd_per_instance_hour: dict[str, float | None]
    price_sources: dict[str, str | None]
    notes: list[str]


@dataclass(frozen=True)
class Latencies:
    """p95 TTFT and TPOT, milliseconds."""

    ttft_ms_p95: float | None
    tpot_ms_p95: float | None


@dataclass(frozen=True)
class Verified:
    """An option's check in the simulator at the peak hour."""

    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    goodput: float
    requests: int
    passed: bool
    replicas_added: int
    stopped: bool = False  # replicas stopped being added once it could no longer win: its cost is a lower bound


@dataclass(frozen=True)
class OptionRow:
    """One ranked option: screened latencies, and simulated ones where it was checked."""

    name: str
    kind: str  # single or mix
    hardware: list[str]
    pools: list[PoolRow]
    monthly_usd: float
    usd_per_million_output_tokens: float | None
    predicted: Latencies
    verified: Verified | None
    rank: int = 0


@dataclass(frozen=True)
class Recommendation:
    """The deployment to run, its expected latency and cost, and the summary in words."""

    name: str
    kind: str
    pools: list[PoolRow]
    monthly_usd: float
    usd_per_million_output_tokens: float | None
    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    latency_source: str
    goodput_peak: float | None
    day_worst_ttft_ms_p95: float | None
    day_worst_tpot_ms_p95: float | None
    day_passed: bool | None
    replicas_added_in_simulation: int
    summary: str


@dataclass(frozen=True)
class Brief:
    """An alternative by name and monthly cost."""

    name: str
    monthly_usd: float


@dataclass(frozen=True)
class Comparison:
    """The recommendation against the best single pool, the best mix, and the best of each hardware kind."""

    best_single_pool: Brief | None
    best_mix: Brief | None
    best_gpu_only: Brief | None
    best_neuron_only: Brief | None
    savings_vs_gpu_only_pct: float | None
    savings_vs_neuron_only_pct: float | None
    mix_vs_single_pct: float | None  # negative when the mix costs more
    basis: str


@dataclass(frozen=True)
class Rejected:
    """A shape or deployment that cannot be recommended, and why."""

    option: str
    category: str  # "doesn't fit", "engine can't run it", "no price", "not predictable", "misses SLO", ...
    reason: str


@dataclass(frozen=True)
class SchedulePool:
    """One pool in one hour: replicas, instances and how they are bought."""

    name: str
    replicas: int
    instances: int
    on_demand: int
    spot: int
    reserved: int


@dataclass(frozen=True)
class ScheduleHour:
    """One hour of the day: its request rate, what it costs, and each pool."""

    hour: int
    rate_per_s: float
    usd: float
    pools: list[SchedulePool]


@dataclass(frozen=True)
class BucketRow:
    """A request-size bucket: its share of requests and mean lengths."""

    label: str
    share: float
    prompt_tokens_mean: float
    output_tokens_mean: float


@dataclass(frozen=True)
class CurvePoint:
    """Screened p95 latency at a load."""

    rate_per_instance: float
    ttft_ms: float
    tpot_ms: float


@dataclass(frozen=True)
class CapacityRow:
    """How much load an option carries within the SLO, per replica, per instance and per dollar."""

    name: str
    kind: str
    max_rate_per_replica: float
    max_rate_per_instance: float
    max_rate_per_usd_hour: float | None
    curve: list[CurvePoint]


@dataclass(frozen=True)
class PeakCheck:
    """The recommendation simulated at the peak hour."""

    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    goodput: float
    requests: int
    passed: bool
    window_s: float
    replicas_added: int


@dataclass(frozen=True)
class HourCheck:
    """The recommendation simulated in one hour of the day."""

    hour: int
    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    goodput: float
    requests: int
    passed: bool


@dataclass(frozen=True)
class Verification:
    """Every simulator check of the recommendation."""

    peak: PeakCheck | None
    day: list[HourCheck]
    day_requests_per_hour: int


@dataclass(frozen=True)
class SourceRow:
    """Where a figure the plan used comes from."""

    what: str
    source: str


@dataclass(frozen=True)
class WhatIf:
    """The plan re-made with one change, and what moved."""

    change: str
    recommendation: str
    pools: list[PoolRow]
    monthly_usd: float
    usd_per_million_output_tokens: float | None
    ttft_ms_p95: float | None
    tpot_ms_p95: float | None
    delta_monthly_usd: float
    delta_pct: float | None
    same_deployment: bool


@dataclass(frozen=True)
class WhatIfError:
    """A what-if that could not be planned, and why."""

    change: str
    error: str


@dataclass(frozen=True)
class PlanResult:
    """Everything `plan` answers: recommendation, comparisons, ranked and rejected options, schedule, evidence."""

    question: Question
    recommendation: Recommendation
    comparison: Comparison
    options: list[OptionRow]
    rejected: list[Rejected]
    schedule: list[ScheduleHour]
    buckets: list[BucketRow]
    capacity_curve: list[CapacityRow]
    verification: Verification
    assumptions: list[str]
    sources: list[SourceRow]
    what_if: list[WhatIf | WhatIfError]
    timing_s: float
    simulations: int = 0  # serving-simulator runs this plan made (what-ifs included)

    @property
    def rejected_counts(self) -> dict[str, int]:
        """Rejections per category, in the order categories first appear."""
        counts: dict[str, int] = {}
        for row in self.rejected:
            counts[row.category] = counts.get(row.category, 0) + 1
        return counts

    def to_json(self, report: str | None = None) -> dict[str, Any]:
        """The `--json` document (`report`: the path of the HTML report, when one was written)."""
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for name, value in asdict(self).items():
            doc[name] = value
            if name == "rejected":
                doc["rejected_counts"] = self.rejected_counts
        if report is not None:
            doc["report"] = report
        return doc
