"""Compatibility rules between an engine, a chip and a model, each answered as a one-line reason or None."""

from __future__ import annotations

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


def architecture_refusal(engine: EngineProfile, model: ModelArchitecture) -> Refusal | None:
    """Refuse a model whose HF architecture the engine does not list."""
    if engine.supports_architecture(model.architecture):
        return None
    prefix = "Neuron: " if engine.hardware_kind == "neuron" else ""
    return Refusal(f"{prefix}architecture {model.architecture} not supported by {engine.name}",
                   engine.supported_architectures.source)


def dtype_refusal(engine: EngineProfile, chip: Chip, dtype: WeightDType) -> Refusal | None:
    """Refuse a weight dtype the engine cannot run on this chip."""
    rule = engine.dtypes.get(dtype.id)
    if rule is None:
        return Refusal(f"{engine.name} does not run {dtype.id} weights", None)
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


def tensor_parallel_refusal(engine: EngineProfile, model: ModelArchitecture, tp: int,
                            layout: DeviceLayout) -> Refusal | None:
    """Refuse a TP degree the engine will not shard this model with on this instance."""
    rule = engine.tensor_parallel
    a = model.attention
    if tp not in rule.degrees:
        allowed = ", ".join(str(d) for d in rule.degrees)
        return Refusal(f"{engine.name} accepts TP degrees {allowed}, not {tp}", rule.source)
    if tp > layout.units:
        return Refusal(f"TP={tp} needs {tp} {layout.unit_name}s; instance has {layout.units}", rule.source)
    if rule.heads_divisible and a.num_heads % tp:
        return Refusal(f"TP={tp} does not divide {a.num_heads} attention heads", rule.source)
    kv_heads = a.num_kv_heads if a.kind != "mla" else 1
    if rule.kv_heads_replicated and a.kind != "mla" and tp > kv_heads and tp % kv_heads:
        return Refusal(f"TP={tp} cannot replicate {kv_heads} KV heads evenly", rule.source)
    if not rule.kv_heads_replicated and a.kind != "mla" and kv_heads % tp:
        return Refusal(f"TP={tp} does not divide {kv_heads} KV heads", rule.source)
    return None
