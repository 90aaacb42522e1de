"""What one replica runs on: an instance (or a chip × TP), the engine, and the peak rates the step model uses."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.catalog.schema import Chip, Instance
from fleetwise.dtypes import WeightDType
from fleetwise.engines.compat import DeviceLayout, device_layout
from fleetwise.engines.profile import DEFAULT_ENGINE_FOR_KIND, EngineProfile, get_engine
from fleetwise.errors import FleetwiseError, UnknownNameError
from fleetwise.units import GB


@dataclass(frozen=True, slots=True)
class ReplicaHardware:
    """The devices one model replica spans, with the peak figures the step-time model needs per TP rank."""

    name: str  # what the user asked for: an instance type or a chip id
    chip: Chip
    instance: Instance  # for a chip request: the cheapest instance per rank that carries it
    engine: EngineProfile
    tp: int
    layout: DeviceLayout
    replicas_per_instance: int
    usd_per_replica_hour: float | None
    price_note: str

    def peak_flops_per_rank(self, dtype: WeightDType) -> float | None:
        """Dense tensor FLOP/s of one rank for the dtype the matmuls run in (weight-only quant computes in 16-bit)."""
        figure = self.chip.fp8_tflops if dtype.id == "fp8" else self.chip.bf16_tflops
        if figure.value is None:
            return None
        return figure.value * 1e12 * self.units_per_chip_share

    @property
    def units_per_chip_share(self) -> float:
        """Share of one chip a TP rank owns (1 for a GPU, 1/ranks-per-chip on Neuron)."""
        return self.layout.memory_gib_per_unit / self.chip_memory_gib if self.chip_memory_gib else 1.0

    @property
    def chip_memory_gib(self) -> float:
        """Device memory of one chip as the layout sees it."""
        return self.instance.memory_gib_per_accelerator(self.chip)

    @property
    def memory_bytes_per_s_per_rank(self) -> float | None:
        """HBM bandwidth one rank can draw on."""
        value = self.chip.hbm_gb_per_s.value
        return None if value is None else value * GB * self.units_per_chip_share

    @property
    def link_bytes_per_s_per_rank(self) -> float | None:
        """Per-direction bandwidth of a rank's link to its TP peers (vendors quote both directions together, per
        chip; the TP ranks on one chip share it)."""
        figure = None
        if self.instance.interconnect_gb_per_s is not None:
            figure = self.instance.interconnect_gb_per_s.value
        if figure is None and self.chip.chip_interconnect_gb_per_s is not None:
            figure = self.chip.chip_interconnect_gb_per_s.value
        return None if figure is None else figure * GB / 2 * self.units_per_chip_share  # ranks share a chip's link


def resolve_hardware(catalog: Catalog, hardware: str, tp: int, engine_id: str | None = None,
                     region: str = DEFAULT_REGION) -> ReplicaHardware:
    """Resolve an instance type or a chip id (`h100-sxm`, `inferentia2`) into the hardware of one replica."""
    name = hardware.strip().lower()
    instance = catalog.instances.get(name)
    if instance is None and name not in catalog.chips:
        raise UnknownNameError("hardware (instance type or chip)", hardware, [*catalog.instances, *catalog.chips])
    if tp < 1:
        raise FleetwiseError(f"--tp must be a positive integer, got {tp}")
    chip = catalog.chip_of(instance) if instance is not None else catalog.chip(name)
    engine = get_engine(engine_id or DEFAULT_ENGINE_FOR_KIND[chip.kind])
    if engine.hardware_kind != chip.kind:
        raise FleetwiseError(f"engine {engine.id} runs on {engine.hardware_kind} hardware; {hardware} is {chip.kind}")
    if instance is None:
        instance = _smallest_instance_for(catalog, chip, engine, tp, region)
        note = f"chip {chip.id}: priced as {tp} rank(s) of {instance.instance_type} on-demand" if instance else ""
    else:
        note = f"{instance.instance_type} on-demand in {region}"
    if instance is None:
        raise FleetwiseError(f"no catalog instance carries {tp} TP ranks of {chip.name} for {engine.name}")
    layout = device_layout(engine, chip, instance)
    if tp > layout.units:
        raise FleetwiseError(f"TP={tp} needs {tp} {layout.unit_name}s; {instance.instance_type} has {layout.units}")
    replicas = layout.units // tp
    price = catalog.usd_per_hour(instance.instance_type, region)
    per_replica = None if price is None else price / replicas
    if name in catalog.chips and price is not None:
        per_replica = price * tp / layout.units  # a chip request pays only for the ranks it uses
    return ReplicaHardware(name=name, chip=chip, instance=instance,
                           engine=engine, tp=tp, layout=layout, replicas_per_instance=replicas,
                           usd_per_replica_hour=per_replica, price_note=note if price is not None else
                           f"no on-demand price for {instance.instance_type} in {region}")


def _smallest_instance_for(catalog: Catalog, chip: Chip, engine: EngineProfile, tp: int,
                           region: str) -> Instance | None:
    """The catalog instance with this chip that offers `tp` ranks at the lowest price per rank."""
    best: tuple[float, Instance] | None = None
    for instance in catalog.instances.values():
        if instance.accelerator != chip.id:
            continue
        units = device_layout(engine, chip, instance).units
        if units < tp:
            continue
        price = catalog.usd_per_hour(instance.instance_type, region)
        per_rank = math.inf if price is None else price / units  # unpriced instances still serve, last
        if best is None or per_rank < best[0]:
            best = (per_rank, instance)
    return None if best is None else best[1]
