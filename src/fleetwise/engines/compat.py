"""Compatibility rules between an engine, a chip and a model, each answered as a one-line reason or None."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetwise.catalog.schema import Chip, Instance
from fleetwise.dtypes import WeightDType
from fleetwise.engines.profile import EngineProfile
from fleetwise.models.architecture import ModelArchitecture


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a combination cannot run, and the source of the rule that says so."""

    reason: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceLayout:
    """The units an engine shards over on one instance: GPUs, or groups of NeuronCores."""

    units: int  # TP ranks the instance offers
    memory_gib_per_unit: float
    unit_name: str  # "GPU" or "NeuronCore" (or "2-NeuronCore group")


def device_layout(engine: EngineProfile, chip: Chip, instance: Instance) -> DeviceLayout:
    """How many TP ranks the instance offers the engine, and how much memory each one owns."""
    per_chip = instance.memory_gib_per_accelerator(chip)
    if engine.tensor_parallel.unit == "gpu":
        return DeviceLayout(instance.count, per_chip, "GPU")
    cores = chip.neuron_cores.value if chip.neuron_cores and chip.neuron_cores.value else 1
    per_rank = engine.tensor_parallel.cores_per_rank.get(chip.generation, 1)
    ranks_per_chip = max(cores // per_rank, 1)
    name = "NeuronCore" if per_rank == 1 else f"{per_rank}-NeuronCore group"
    return DeviceLayout(instance.count * ranks_per_chip, per_chip / ranks_per_chip, name)


def architecture_refusal(engine: EngineProfile, chip: Chip, model: ModelArchitecture) -> Refusal | None:
    """Refuse a chip generation the engine does not run on, or a model architecture it does not list."""
    prefix = "Neuron: " if engine.hardware_kind == "neuron" else ""
    if not engine.runs_on(chip.generation):
        source = engine.generations.source if engine.generations else None
        return Refusal(f"{prefix}{engine.name} does not run on {chip.name} ({chip.generation})", source)
    if engine.supports_model(model.architecture, model.model_type):
        return None
    listed = engine.supported_architectures.source or (
        engine.supported_model_types.source if engine.supported_model_types else None)
    return Refusal(f"{prefix}architecture {model.architecture} not supported by {engine.name}", listed)


def dtype_refusal(engine: EngineProfile, chip: Chip, dtype: WeightDType) -> Refusal | None:
    """Refuse a weight dtype the engine cannot run on this chip."""
    rule = engine.dtypes.get(dtype.id)
    if rule is None or not rule.supported:
        return Refusal(f"{engine.name} does not run {dtype.id} weights", None if rule is None else rule.source)
    if rule.generations is not None and chip.generation not in rule.generations:
        runs_on = ", ".join(rule.generations) or "no chip"
        return Refusal(f"{engine.name} runs {dtype.id} only on {runs_on}; {chip.name} is {chip.generation}",
                       rule.source)
    if rule.min_compute_capability is not None:
        have = chip.compute_capability_tuple
        major, _, minor = rule.min_compute_capability.partition(".")
        need = (int(major), int(minor or 0))
        if have is None:
            return Refusal(f"{chip.name} compute capability not found in catalog; {dtype.id} needs "
                           f"≥ {rule.min_compute_capability}", rule.source)
        if have < need:
            return Refusal(f"{dtype.id} needs compute capability ≥ {rule.min_compute_capability}; "
                           f"{chip.name} is {have[0]}.{have[1]}", rule.source)
    return None


def kv_cache_dtype_refusal(engine: EngineProfile, kv_cache_dtype: str) -> Refusal | None:
    """Refuse a KV-cache format the engine does not offer (the 16-bit default, "auto", always works)."""
    key = kv_cache_dtype.strip().lower()  # as dtypes.kv_cache_bytes reads it
    if key == "auto" or key in engine.kv_cache_dtypes:
        return None
    return Refusal(f"no source found that {engine.name} offers a {kv_cache_dtype} KV cache", None)


def tensor_parallel_refusal(engine: EngineProfile, chip: Chip, model: ModelArchitecture, tp: int,
                            layout: DeviceLayout) -> Refusal | None:
    """Refuse a TP degree the engine will not shard this model with on this instance."""
    rule = engine.tensor_parallel
    a = model.attention
    degrees = rule.degrees_for(chip.id)
    if tp not in degrees:
        allowed = ", ".join(str(d) for d in degrees) or "none"
        return Refusal(f"{engine.name} accepts TP degrees {allowed} on {chip.name}, not {tp}", rule.source)
    if tp > layout.units:
        return Refusal(f"TP={tp} needs {tp} {layout.unit_name}s; instance has {layout.units}", rule.source)
    if rule.heads_divisible and a.num_heads % tp:
        return Refusal(f"TP={tp} does not divide {a.num_heads} attention heads", rule.source)
    if a.kind == "mla":
        return None
    kv = a.num_kv_heads
    if rule.kv_heads == "must_divide" and kv % tp:
        return Refusal(f"TP={tp} does not divide {kv} KV heads", rule.source)
    if rule.kv_heads == "replicate" and tp > kv and tp % kv:
        return Refusal(f"TP={tp} cannot replicate {kv} KV heads evenly", rule.source)
    if rule.kv_heads == "replicate" and tp <= kv and kv % tp:
        return Refusal(f"TP={tp} does not divide {kv} KV heads", rule.source)
    return None


def kv_share_per_rank(engine: EngineProfile, model: ModelArchitecture, tp: int) -> float:
    """Share of the model's KV heads (and of its KV cache) that one TP rank stores."""
    a = model.attention
    if a.kind == "mla":
        return 1.0  # the compressed latent is replicated on every rank
    kv = a.num_kv_heads
    if tp <= kv and kv % tp == 0:
        return 1.0 / tp
    if engine.tensor_parallel.kv_heads == "replicate_or_convert_to_mha" and tp % kv:
        return math.ceil(a.num_heads / tp) / kv  # KV expanded to one head per (padded) query head
    return math.ceil(kv / tp) / kv
