"""Predict what one replica delivers: TTFT, TPOT, E2E, throughput, cost per million tokens, and what bounds it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import fit_one
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.hardware import ReplicaHardware, resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaArrays, ReplicaConfig, build_arrays
from fleetwise.perf.scenarios import ScenarioResult, closed_loop, poisson, smallest_compiled_batch, static_batch
from fleetwise.perf.step_time import StepTimes

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
    max_batch: int | None = None  # the engine's max_num_seqs (compiled batch size on Neuron); None: KV-limited
    kv_cache_dtype: str = "auto"


def predict(request: PredictRequest, catalog: Catalog, calibration: CalibrationTable) -> dict[str, Any]:
    """Answer a PredictRequest; a shape that cannot run raises the same reason `fit` gives."""
    _check_request(request)
    catalog.check_region(request.region)
    hardware = resolve_hardware(catalog, request.hardware, request.tp, request.engine, request.region)
    dtype = get_dtype(request.dtype)
    context = request.input_tokens + request.output_tokens
    fit = fit_one(request.model, catalog, hardware.instance, hardware.engine, request.tp, dtype, context,
                  region=request.region, kv_cache_dtype=request.kv_cache_dtype)
    if not fit.fits:
        raise FleetwiseError(f"{hardware.name} TP={request.tp} {dtype.id}: {fit.reason}")
    if request.mode == "batch" and request.load > fit.max_sequences:
        raise FleetwiseError(f"batch {request.load:g} does not fit the KV cache: {hardware.name} TP={request.tp} "
                             f"{dtype.id} has room for {fit.max_sequences} sequences of {context} tokens")
    if request.mode == "batch" and request.max_batch is not None and request.max_batch < request.load:
        raise FleetwiseError(f"--max-batch {request.max_batch} is smaller than --batch {request.load:g}")
    efficiency = calibration.lookup(hardware.engine.id, hardware.chip.id, hardware.chip.kind)
    arrays = build_arrays([ReplicaConfig(request.model, hardware, dtype, efficiency, request.kv_cache_dtype)])
    if request.mode == "batch":
        limit = request.max_batch or int(request.load)  # a compiled engine pads the batch to its compiled size
        result = static_batch(arrays, request.load, request.input_tokens, request.output_tokens, limit)
    else:
        limit = min(fit.max_sequences, hardware.engine.sequence_limit or fit.max_sequences)  # as `simulate` caps it
        if request.max_batch is not None:
            if request.max_batch > fit.max_sequences:
                raise FleetwiseError(f"--max-batch {request.max_batch} does not fit the KV cache: room for "
                                     f"{fit.max_sequences} sequences of {context} tokens")
            limit = request.max_batch
        elif hardware.engine.compiled_shapes.value and request.mode == "concurrency":
            limit = min(int(request.load), fit.max_sequences)  # compile for the user count
        elif hardware.engine.compiled_shapes.value:
            limit = smallest_compiled_batch(arrays, request.load, request.input_tokens, request.output_tokens,
                                            fit.max_sequences)
        scenario = closed_loop if request.mode == "concurrency" else poisson
        result = scenario(arrays, request.load, request.input_tokens, request.output_tokens, limit)
        if not (request.mode == "rate" and bool(result.saturated[0])):
            result = _simulated(request, arrays, hardware, fit.kv_cache_gib, limit, result)
    price = hardware.usd_per_replica_hour
    tokens_per_s = float(result.output_tokens_per_s[0])
    calibrated = calibration.has_cell(hardware.engine.id, hardware.chip.id)
    return {
        "model": request.model.name, "hardware": hardware.name, "instance": hardware.instance.instance_type,
        "accelerator": hardware.chip.id, "engine": hardware.engine.id, "tp": request.tp, "dtype": dtype.id,
        "kv_cache_dtype": request.kv_cache_dtype,
        "mode": request.mode, "load": request.load, "input_tokens": request.input_tokens,
        "output_tokens": request.output_tokens,
        "ttft_ms": {"p50": _ms(result.ttft_p50_s), "mean": _ms(result.ttft_mean_s)},
        "tpot_ms": {"p50": _ms(result.tpot_p50_s), "mean": _ms(result.tpot_mean_s)},
        "itl_ms": {"p50": _ms(result.itl_p50_s)},
        "e2e_s": {"p50": _finite(result.e2e_p50_s)},
        "output_tokens_per_s": round(tokens_per_s, 3),
        "requests_per_s": round(float(result.requests_per_s[0]), 5),
        "concurrency": round(float(result.concurrency[0]), 3),
        "saturated": bool(result.saturated[0]),
        "max_sequences": fit.max_sequences,
        "batch_limit": limit,
        "usd_per_hour": None if price is None else round(price, 5),
        "usd_per_million_output_tokens": None if price is None or tokens_per_s <= 0 else
        round(price / (tokens_per_s * 3600.0) * 1e6, 5),
        "price_note": hardware.price_note,
        "breakdown": {"prefill": _phase(result.prefill), "decode": _phase(result.decode)},
        "efficiency": {"compute": efficiency.compute, "memory": efficiency.memory,
                       "communication": efficiency.communication, "allreduce_us": efficiency.allreduce_us,
                       "overhead_ms": efficiency.overhead_ms,
                       "calibrated_for_this_engine_and_chip": calibrated, "calibration": calibration.path},
        "notes": _notes(request, hardware.engine.compiled_shapes.value is True, calibrated, result),
    }


def _simulated(request: PredictRequest, arrays: ReplicaArrays, hardware: ReplicaHardware, kv_cache_gib: float,
               limit: int, analytic: ScenarioResult) -> ScenarioResult:
    """Latency and throughput under a rate or a user count come from the serving simulator."""
    from fleetwise.perf.step_time import StepCost
    from fleetwise.sim.pool import replica_settings  # the simulator builds on perf, not the other way round
    from fleetwise.sim.steady import closed_loop_steady, poisson_steady

    cost = StepCost.from_arrays(arrays)
    settings = replica_settings(request.model, arrays, kv_cache_gib, request.kv_cache_dtype, limit, hardware)
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


def _check_request(request: PredictRequest) -> None:
    if request.input_tokens < 1 or request.output_tokens < 1:
        raise FleetwiseError("--input-tokens and --output-tokens must be at least 1")
    if not math.isfinite(request.load) or request.load <= 0:
        raise FleetwiseError(f"--{request.mode} must be a positive number, got {request.load:g}")
    if request.mode in ("batch", "concurrency") and request.load != int(request.load):
        raise FleetwiseError(f"--{request.mode} must be a whole number, got {request.load:g}")
    if request.max_batch is not None and request.max_batch < 1:
        raise FleetwiseError(f"--max-batch must be at least 1, got {request.max_batch}")
    if request.mode == "concurrency" and request.load > MAX_USERS:
        raise FleetwiseError(f"--concurrency {request.load:g} is more users than one replica can be simulated with "
                             f"(limit {MAX_USERS:,}); beyond its batch limit extra users only wait longer")


def _ms(seconds: np.ndarray) -> float | None:
    value = float(seconds[0])
    return round(value * 1e3, 4) if np.isfinite(value) else None


def _finite(seconds: np.ndarray) -> float | None:
    value = float(seconds[0])
    return round(value, 6) if np.isfinite(value) else None


def _phase(step: StepTimes) -> dict[str, Any]:
    """One step's time split by cause, and which cause bounds it."""
    parts = {"compute": float(step.compute_s.ravel()[0]), "memory": float(step.memory_s.ravel()[0]),
             "communication": float(step.communication_s.ravel()[0]), "overhead": float(step.overhead_s.ravel()[0])}
    return {"step_ms": round(float(step.total_s.ravel()[0]) * 1e3, 4),
            **{f"{k}_ms": round(v * 1e3, 4) for k, v in parts.items()},
            "bound": max(parts, key=lambda k: parts[k])}


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
