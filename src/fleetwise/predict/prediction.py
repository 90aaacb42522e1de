"""What `predict` answers, as typed values; `Prediction.to_json()` gives the documented `--json` schema."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Median and mean of a latency (ms); None where undefined (e.g. TPOT with one output token)."""

    p50: float | None
    mean: float | None


@dataclass(frozen=True)
class Median:
    """Median of a latency (ms or s); None where undefined."""

    p50: float | None


@dataclass(frozen=True)
class Phase:
    """One prefill or decode step split by cause (ms), and which cause bounds it."""

    step_ms: float
    compute_ms: float
    memory_ms: float
    communication_ms: float
    overhead_ms: float
    bound: str  # compute, memory, communication or overhead


@dataclass(frozen=True)
class Breakdown:
    """One prefill step and one decode step (at the mid-request context)."""

    prefill: Phase
    decode: Phase


@dataclass(frozen=True)
class EfficiencyUsed:
    """The calibrated efficiencies the prediction used, and whether this engine and chip were measured."""

    compute: float
    memory: float
    communication: float
    allreduce_us: float
    overhead_ms: float
    calibrated_for_this_engine_and_chip: bool
    calibration: str


@dataclass(frozen=True)
class Prediction:
    """TTFT, TPOT, E2E, throughput and cost of one replica under a load, and what bounds each phase."""

    model: str
    hardware: str
    instance: str
    accelerator: str
    engine: str
    tp: int
    dtype: str
    kv_cache_dtype: str
    mode: str  # batch, concurrency or rate
    load: float
    input_tokens: int
    output_tokens: int
    ttft_ms: Latency
    tpot_ms: Latency
    itl_ms: Median
    e2e_s: Median
    output_tokens_per_s: float
    requests_per_s: float
    concurrency: float
    saturated: bool
    max_sequences: int  # what the KV cache holds at input + output tokens
    batch_limit: int  # the sequence cap the replica ran with
    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    price_note: str
    breakdown: Breakdown
    efficiency: EfficiencyUsed
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        """The `--json` document."""
        return asdict(self)
