"""Memory fit: for each instance, engine, TP degree and dtype, do the weights fit and how much KV cache is left."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.catalog.schema import Instance
from fleetwise.dtypes import ACTIVATION_BYTES, DEFAULT_FIT_DTYPES, WeightDType, get_dtype, kv_cache_bytes
from fleetwise.engines.compat import (
    DeviceLayout,
    Refusal,
    architecture_refusal,
    device_layout,
    dtype_refusal,
    kv_cache_dtype_refusal,
    kv_share_per_rank,
    tensor_parallel_refusal,
)
from fleetwise.engines.profile import DEFAULT_ENGINE_FOR_KIND, EngineProfile, engine_profiles, get_engine
from fleetwise.errors import FleetwiseError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.units import GIB

LOGITS_BYTES = 4.0  # logits are computed in fp32 before sampling
# Batched tokens per step for the activation estimate when an engine publishes no default: vLLM's
# SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS (engines.yaml, vllm max_num_batched_tokens).
FALLBACK_BATCHED_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class FitResult:
    """One candidate deployment shape and whether the model fits it."""

    instance: str
    accelerator: str
    engine: str
    tp: int
    dtype: str
    fits: bool
    reason: str  # "" when it fits
    reason_source: str | None
    refused_by: str  # "" when it fits; "engine" (architecture, dtype, TP rules) or "memory"
    replicas_per_instance: int  # 0 when it does not fit
    device_memory_gib: float  # per TP rank (GPU, or NeuronCore group)
    weights_gib_per_device: float
    activation_gib_per_device: float
    kv_cache_gib_per_device: float  # room left for KV on each rank (0 when it does not fit)
    kv_cache_gib: float  # per replica, in unreplicated KV: what its sequences can hold in total
    max_sequences: int  # per replica at the requested context
    context_tokens: int
    kv_cache_dtype: str  # "auto" (16-bit) or "fp8"
    usd_per_hour: float | None  # on-demand price of the whole instance in the region
    usd_per_replica_hour: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    """Bytes per TP rank: what the engine may use, and what weights, activations and one sequence take."""

    device: float
    usable: float  # device memory the engine lets weights and activations use
    weights: float
    activations: float
    kv_room: float
    per_sequence: float  # KV bytes one sequence at the requested context takes on this rank
    utilization: float


def weight_bytes_per_device(model: ModelArchitecture, dtype: WeightDType, tp: int, kv_share: float) -> float:
    """Weight bytes on one TP rank: linears split tp ways, KV projections by the rank's share of KV heads."""
    total = model.weight_bytes(dtype)
    a = model.attention
    if a.kind == "mla":
        return total / tp
    kv_projection = (model.num_layers * model.hidden_size * a.num_kv_heads * (a.head_dim + a.v_head_dim)
                     * dtype.bytes_per_param)
    return (total - kv_projection) / tp + kv_projection * kv_share


def step_token_budget(engine: EngineProfile) -> int:
    """Tokens one step may compute: the engine's max_num_batched_tokens, or vLLM's default where not found."""
    return engine.batched_token_limit or FALLBACK_BATCHED_TOKENS


def activation_bytes_per_device(model: ModelArchitecture, engine: EngineProfile, tp: int) -> float:
    """Estimated activation peak of one step: batched tokens through the widest layer, plus fp32 logits."""
    tokens = step_token_budget(engine)
    seqs = engine.sequence_limit or 1
    ffn = model.dense_intermediate_size
    if model.moe is not None:
        ffn = max(ffn, model.moe.expert_intermediate_size * model.moe.experts_per_token)
    hidden_states = tokens * (4 * model.hidden_size + 2 * ffn / tp) * ACTIVATION_BYTES
    logits = seqs * model.vocab_size / tp * LOGITS_BYTES
    return hidden_states + logits


def memory_budget(model: ModelArchitecture, engine: EngineProfile, layout: DeviceLayout, tp: int,
                  dtype: WeightDType, context_tokens: int, memory_utilization: float | None = None,
                  kv_cache_dtype: str = "auto") -> MemoryBudget:
    """How one TP rank's memory divides between weights, activations and KV cache."""
    utilization = memory_utilization if memory_utilization is not None else (engine.memory_utilization.value or 1.0)
    kv_share = kv_share_per_rank(engine, model, tp)
    weights = weight_bytes_per_device(model, dtype, tp, kv_share)
    activations = activation_bytes_per_device(model, engine, tp)
    device = layout.memory_gib_per_unit * GIB
    if engine.memory_utilization_applies_to == "free_after_load":
        usable = device  # the fraction applies to what is left after weights and activations
        kv_room = max(device - weights - activations, 0.0) * utilization
    else:
        usable = device * utilization
        kv_room = max(usable - weights - activations, 0.0)
    windowed = engine.windowed_kv_cache.value is True
    per_sequence = model.kv_cache_bytes_per_sequence(context_tokens, kv_cache_bytes(kv_cache_dtype),
                                                     windowed=windowed) * kv_share
    return MemoryBudget(device, usable, weights, activations, kv_room, per_sequence, utilization)


def fit_one(model: ModelArchitecture, catalog: Catalog, instance: Instance, engine: EngineProfile, tp: int,
            dtype: WeightDType, context_tokens: int, memory_utilization: float | None = None,
            region: str = DEFAULT_REGION, kv_cache_dtype: str = "auto") -> FitResult:
    """Evaluate one (instance, engine, TP, dtype) shape for `model` at `context_tokens` per sequence."""
    chip = catalog.chip_of(instance)
    layout = device_layout(engine, chip, instance)
    budget = memory_budget(model, engine, layout, tp, dtype, context_tokens, memory_utilization, kv_cache_dtype)
    engine_refusal = (architecture_refusal(engine, chip, model) or dtype_refusal(engine, chip, dtype)
                      or kv_cache_dtype_refusal(engine, kv_cache_dtype)
                      or tensor_parallel_refusal(engine, chip, model, tp, layout))
    refusal = engine_refusal or _memory_refusal(model, dtype, tp, layout, context_tokens, budget, engine)
    fits = refusal is None
    replicas = layout.units // tp if fits else 0
    price = catalog.usd_per_hour(instance.instance_type, region)
    kv_share = kv_share_per_rank(engine, model, tp)
    return FitResult(
        instance=instance.instance_type, accelerator=chip.id, engine=engine.id, tp=tp, dtype=dtype.id,
        fits=fits, reason="" if refusal is None else refusal.reason,
        reason_source=None if refusal is None else refusal.source,
        refused_by="" if refusal is None else "engine" if engine_refusal is not None else "memory",
        replicas_per_instance=replicas,
        device_memory_gib=round(layout.memory_gib_per_unit, 3),
        weights_gib_per_device=round(budget.weights / GIB, 3),
        activation_gib_per_device=round(budget.activations / GIB, 3),
        kv_cache_gib_per_device=round(budget.kv_room / GIB, 3) if fits else 0.0,
        kv_cache_gib=round(budget.kv_room / kv_share / GIB, 3) if fits else 0.0,
        max_sequences=int(budget.kv_room // budget.per_sequence) if fits else 0,
        context_tokens=context_tokens,
        kv_cache_dtype=kv_cache_dtype,
        usd_per_hour=price,
        usd_per_replica_hour=(price / replicas) if price is not None and replicas else None,
    )


def _memory_refusal(model: ModelArchitecture, dtype: WeightDType, tp: int, layout: DeviceLayout, context_tokens: int,
                    budget: MemoryBudget, engine: EngineProfile) -> Refusal | None:
    """Refuse a context the model cannot hold, weights that do not fit, or KV room for no sequence."""
    if context_tokens > model.max_position_embeddings:
        return Refusal(f"context {context_tokens} exceeds the model's maximum {model.max_position_embeddings} tokens")
    unit = layout.unit_name
    if budget.weights + budget.activations > budget.usable:
        share = f" × {budget.utilization:.2f}" if budget.usable < budget.device else ""
        return Refusal(
            f"needs {model.weight_bytes(dtype) / GIB:,.1f} GiB in {dtype.id} ({budget.weights / GIB:,.1f} GiB per "
            f"{unit} at TP={tp}) plus {budget.activations / GIB:,.1f} GiB activations; each {unit} has "
            f"{budget.device / GIB:,.1f} GiB{share}", engine.memory_utilization.source)
    if budget.kv_room < budget.per_sequence:
        return Refusal(f"KV-cache room {budget.kv_room / GIB:,.2f} GiB per {unit} holds no {context_tokens}-token "
                       f"sequence (needs {budget.per_sequence / GIB:,.2f} GiB)")
    return None


def fit_model(model: ModelArchitecture, catalog: Catalog, *, instances: Sequence[Instance] | None = None,
              engines: Iterable[str] = (), tps: Iterable[int] = (), dtypes: Iterable[str] = (),
              context_tokens: int | None = None, memory_utilization: float | None = None,
              region: str = DEFAULT_REGION, kv_cache_dtype: str = "auto") -> list[FitResult]:
    """Evaluate every instance × engine × TP degree × dtype shape (defaults: whole catalog, default engines)."""
    if context_tokens is None:
        context_tokens = min(8192, model.max_position_embeddings)
    if context_tokens < 1:
        raise FleetwiseError(f"--context must be at least 1 token, got {context_tokens}")
    if memory_utilization is not None and not 0.0 < memory_utilization <= 1.0:
        raise FleetwiseError(f"memory utilization must be in (0, 1], got {memory_utilization}")
    kv_cache_bytes(kv_cache_dtype)  # an unknown KV dtype is an error before any shape is checked
    engine_list = [get_engine(e) for e in engines] or [engine_profiles()[e] for e in DEFAULT_ENGINE_FOR_KIND.values()]
    dtype_list = [get_dtype(d) for d in dtypes] or [get_dtype(d) for d in DEFAULT_FIT_DTYPES]
    wanted_tps = sorted(set(tps))
    if any(t < 1 for t in wanted_tps):
        raise FleetwiseError(f"TP degrees must be positive integers, got {wanted_tps}")
    results: list[FitResult] = []
    for instance in instances if instances is not None else catalog.select():
        chip = catalog.chip_of(instance)
        for engine in engine_list:
            if engine.hardware_kind != chip.kind:
                continue
            units = device_layout(engine, chip, instance).units
            degrees = wanted_tps or [d for d in engine.tensor_parallel.degrees_for(chip.id) if d <= units]
            for tp in degrees:
                for dtype in dtype_list:
                    results.append(fit_one(model, catalog, instance, engine, tp, dtype, context_tokens,
                                           memory_utilization, region, kv_cache_dtype))
    return results
