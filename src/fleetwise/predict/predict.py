"""Predict what one replica delivers: TTFT, TPOT, E2E, throughput, cost per million tokens, and what bounds it.

A static batch is priced by the vectorised perf model; a user count or an arrival rate runs the serving
simulator over 2,000 requests (this module sits above both).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.scenarios import ScenarioResult, closed_loop, poisson, static_batch
from fleetwise.perf.shape import DeploymentShape, Load, resolve_shape
from fleetwise.perf.step_time import StepTimes
from fleetwise.predict.prediction import Breakdown, EfficiencyUsed, Latency, Median, Phase, Prediction
from fleetwise.sim.pool import replica_settings
from fleetwise.sim.steady import closed_loop_steady, poisson_steady

Mode = Literal["batch", "concurrency", "rate"]
MAX_USERS = 100_000  # a closed loop simulates three requests per user (about 2 s at this limit)


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """One question: model M on hardware H (TP, dtype, engine) under a load, for given prompt/output lengths."""

    model: ModelArchitecture
    hardware: str
    tp: int
    dtype: str
    engine: str | None
    mode: Mode
    load: float  # batch size, concurrent users, or requests per second
    input_tokens: int
    output_tokens: int
    region: str = DEFAULT_REGION
    max_seqs: int | None = None  # the engine's max_num_seqs (compiled batch size on Neuron); None: KV-limited
    kv_cache_dtype: str = "auto"


def predict(request: PredictRequest, catalog: Catalog, calibration: CalibrationTable) -> Prediction:
    """Answer a PredictRequest; a shape that cannot run raises the same reason `fit` gives."""
    _check_request(request)
    catalog.check_region(request.region)
    context = request.input_tokens + request.output_tokens
    sized = request.mode == "rate" and request.max_seqs is None  # a compiled batch sized for the rate
    shape = resolve_shape(request.model, catalog, calibration, request.hardware, request.tp, request.dtype,
                          request.engine, context_tokens=context, kv_cache_dtype=request.kv_cache_dtype,
                          region=request.region,
                          load=Load(request.load, request.input_tokens, request.output_tokens) if sized else None)
    shape = shape.with_max_seqs(_batch_limit(request, shape))
    if request.mode == "batch":  # a compiled engine pads the batch to its compiled size
        result = static_batch(shape.arrays, request.load, request.input_tokens, request.output_tokens, shape.max_seqs)
    else:
        scenario = closed_loop if request.mode == "concurrency" else poisson
        result = scenario(shape.arrays, request.load, request.input_tokens, request.output_tokens, shape.max_seqs)
        if not (request.mode == "rate" and bool(result.saturated[0])):
            result = _simulated(request, shape, result)
    return _prediction(request, shape, result, calibration.path)


def _batch_limit(request: PredictRequest, shape: DeploymentShape) -> int:
    """The sequence cap the replica runs with: --max-batch, else the batch, the user count (compiled), the
    compiled batch sized for the rate, or the engine's cap within what the KV cache holds."""
    fit, hardware, context = shape.fit, shape.hardware, request.input_tokens + request.output_tokens
    if request.max_seqs is not None and request.max_seqs > fit.max_sequences:
        raise FleetwiseError(f"--max-batch {request.max_seqs} does not fit the KV cache: room for "
                             f"{fit.max_sequences} sequences of {context} tokens")
    if request.mode == "batch":
        if request.load > fit.max_sequences:
            raise FleetwiseError(f"batch {request.load:g} does not fit the KV cache: {hardware.name} TP={shape.tp} "
                                 f"{shape.dtype.id} has room for {fit.max_sequences} sequences of {context} tokens")
        if request.max_seqs is not None and request.max_seqs < request.load:
            raise FleetwiseError(f"--max-batch {request.max_seqs} is smaller than --batch {request.load:g}")
        return request.max_seqs or int(request.load)
    if request.max_seqs is not None:
        return request.max_seqs
    if shape.compiled:
        return min(int(request.load), fit.max_sequences) if request.mode == "concurrency" else shape.max_seqs
    return min(fit.max_sequences, shape.max_seqs)  # the engine's cap, within what the KV cache holds


def _simulated(request: PredictRequest, shape: DeploymentShape, analytic: ScenarioResult) -> ScenarioResult:
    """Latency and throughput under a rate or a user count come from the serving simulator."""
    cost = shape.step_cost()
    settings = replica_settings(shape)
    if request.mode == "rate":
        run = poisson_steady(cost, settings, request.load, request.input_tokens, request.output_tokens)
    else:
        run = closed_loop_steady(cost, settings, int(request.load), request.input_tokens, request.output_tokens)

    def col(value: float) -> np.ndarray:
        return np.array([value])

    return dataclasses.replace(
        analytic, ttft_p50_s=col(run.ttft_p50_s), ttft_mean_s=col(run.ttft_mean_s), tpot_p50_s=col(run.tpot_p50_s),
        tpot_mean_s=col(run.tpot_mean_s), e2e_p50_s=col(run.e2e_p50_s),
        output_tokens_per_s=col(run.output_tokens_per_s), requests_per_s=col(run.requests_per_s))


def _prediction(request: PredictRequest, shape: DeploymentShape, result: ScenarioResult,
                calibration: str) -> Prediction:
    hardware, efficiency = shape.hardware, shape.efficiency
    price = hardware.usd_per_replica_hour
    tokens_per_s = float(result.output_tokens_per_s[0])
    return Prediction(
        model=request.model.name, hardware=hardware.name, instance=hardware.instance.instance_type,
        accelerator=hardware.chip.id, engine=hardware.engine.id, tp=request.tp, dtype=shape.dtype.id,
        kv_cache_dtype=request.kv_cache_dtype, mode=request.mode, load=request.load,
        input_tokens=request.input_tokens, output_tokens=request.output_tokens,
        ttft_ms=Latency(_ms(result.ttft_p50_s), _ms(result.ttft_mean_s)),
        tpot_ms=Latency(_ms(result.tpot_p50_s), _ms(result.tpot_mean_s)),
        itl_ms=Median(_ms(result.itl_p50_s)), e2e_s=Median(_finite(result.e2e_p50_s)),
        output_tokens_per_s=round(tokens_per_s, 3), requests_per_s=round(float(result.requests_per_s[0]), 5),
        concurrency=round(float(result.concurrency[0]), 3), saturated=bool(result.saturated[0]),
        max_sequences=shape.fit.max_sequences, batch_limit=shape.max_seqs,
        usd_per_hour=None if price is None else round(price, 5),
        usd_per_million_output_tokens=None if price is None or tokens_per_s <= 0 else
        round(price / (tokens_per_s * 3600.0) * 1e6, 5),
        price_note=hardware.price_note,
        breakdown=Breakdown(_phase(result.prefill), _phase(result.decode)),
        efficiency=EfficiencyUsed(efficiency.compute, efficiency.memory, efficiency.communication,
                                  efficiency.allreduce_us, efficiency.overhead_ms, shape.calibrated, calibration),
        notes=_notes(request, shape.compiled, shape.calibrated, result))


def _check_request(request: PredictRequest) -> None:
    if request.input_tokens < 1 or request.output_tokens < 1:
        raise FleetwiseError("--input-tokens and --output-tokens must be at least 1")
    if not math.isfinite(request.load) or request.load <= 0:
        raise FleetwiseError(f"--{request.mode} must be a positive number, got {request.load:g}")
    if request.mode in ("batch", "concurrency") and request.load != int(request.load):
        raise FleetwiseError(f"--{request.mode} must be a whole number, got {request.load:g}")
    if request.max_seqs is not None and request.max_seqs < 1:
        raise FleetwiseError(f"--max-batch must be at least 1, got {request.max_seqs}")
    if request.mode == "concurrency" and request.load > MAX_USERS:
        raise FleetwiseError(f"--concurrency {request.load:g} is more users than one replica can be simulated with "
                             f"(limit {MAX_USERS:,}); beyond its batch limit extra users only wait longer")


def _ms(seconds: np.ndarray) -> float | None:
    value = float(seconds[0])
    return round(value * 1e3, 4) if np.isfinite(value) else None


def _finite(seconds: np.ndarray) -> float | None:
    value = float(seconds[0])
    return round(value, 6) if np.isfinite(value) else None


def _phase(step: StepTimes) -> Phase:
    """One step's time split by cause, and which cause bounds it."""
    parts = {"compute": float(step.compute_s.ravel()[0]), "memory": float(step.memory_s.ravel()[0]),
             "communication": float(step.communication_s.ravel()[0]), "overhead": float(step.overhead_s.ravel()[0])}
    ms = {k: round(v * 1e3, 4) for k, v in parts.items()}
    return Phase(round(float(step.total_s.ravel()[0]) * 1e3, 4), ms["compute"], ms["memory"], ms["communication"],
                 ms["overhead"], max(parts, key=lambda k: parts[k]))


def _notes(request: PredictRequest, compiled: bool, calibrated: bool, result: ScenarioResult) -> list[str]:
    notes = []
    if compiled:
        notes.append("Neuron: prompts and contexts run in power-of-two buckets (>= 128 tokens); every decode step "
                     "runs the full compiled batch (batch_limit: --max-batch, else the user count, or under --rate "
                     "the smallest power of two that keeps up)")
    if not calibrated:
        notes.append("no measurements for this engine on this chip: efficiencies are borrowed from the rest of the "
                     "calibration (expect a wider error)")
    if request.mode != "batch":
        notes.append("latency and throughput from the serving simulator (2,000 requests of the given lengths); "
                     "the breakdown shows one prefill and one decode step")
    if bool(result.saturated[0]) and request.mode == "rate":
        notes.append("offered load exceeds what the replica serves within its batch limit: latency grows without "
                     "bound")
    elif bool(result.saturated[0]):
        notes.append("more users than the batch limit: the rest wait for a free slot (counted in TTFT)")
    if request.output_tokens == 1:
        notes.append("one output token: TPOT is undefined (null)")
    return notes
