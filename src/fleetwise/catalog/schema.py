"""Validated records of the hardware catalog: chips, instances and prices, every figure with its source."""

from __future__ import annotations

import math
from typing import Literal, get_args

from pydantic import field_validator, model_validator

from fleetwise.datafiles import Record
from fleetwise.sourced import Sourced

HardwareKind = Literal["gpu", "neuron"]
PurchaseOption = Literal["on-demand", "spot", "reserved-1y", "reserved-3y", "savings-plan-1y", "savings-plan-3y"]
PURCHASE_OPTIONS: tuple[str, ...] = get_args(PurchaseOption)


class Chip(Record):
    """One accelerator chip: compute, memory and links, per chip."""

    id: str
    name: str
    vendor: Literal["aws", "nvidia"]
    kind: HardwareKind
    generation: str  # ampere | ada | hopper | neuroncore-v2 | neuroncore-v3
    compute_capability: Sourced[str] | None = None
    bf16_tflops: Sourced[float]
    fp16_tflops: Sourced[float]
    fp8_tflops: Sourced[float]
    int8_tops: Sourced[float]
    hbm_gib: Sourced[float]
    hbm_gb_per_s: Sourced[float]
    neuron_cores: Sourced[int] | None = None
    chip_interconnect_gb_per_s: Sourced[float] | None = None
    chip_interconnect_name: Sourced[str] | None = None

    @field_validator("id")
    @classmethod
    def _lower_id(cls, value: str) -> str:
        return value.strip().lower()

    @model_validator(mode="after")
    def _memory_known(self) -> Chip:
        if self.hbm_gib.value is None or self.hbm_gib.value <= 0:
            raise ValueError("hbm_gib must be a positive number: memory fit cannot work without it")
        if self.kind == "neuron" and (self.neuron_cores is None or not self.neuron_cores.value):
            raise ValueError("a Neuron chip needs neuron_cores")
        return self

    @property
    def compute_capability_tuple(self) -> tuple[int, int] | None:
        """CUDA compute capability as (major, minor), None for Neuron chips."""
        if self.compute_capability is None or self.compute_capability.value is None:
            return None
        major, _, minor = self.compute_capability.value.partition(".")
        return int(major), int(minor or 0)


class Instance(Record):
    """One EC2 instance type: its accelerators, host and network."""

    instance_type: str
    family: str
    accelerator: str  # a chip id
    accelerator_count: Sourced[int]
    accelerator_memory_gib: Sourced[float] | None = None
    vcpus: Sourced[int]
    host_memory_gib: Sourced[float]
    network_gbps: Sourced[float]
    interconnect_name: Sourced[str] | None = None
    interconnect_gb_per_s: Sourced[float] | None = None
    local_storage: Sourced[str] | None = None
    regions_note: str | None = None

    @model_validator(mode="after")
    def _count_known(self) -> Instance:
        if self.accelerator_count.value is None or self.accelerator_count.value < 1:
            raise ValueError("accelerator_count must be a positive integer")
        if self.family != self.instance_type.split(".")[0]:
            raise ValueError(f"family {self.family!r} does not match instance_type {self.instance_type!r}")
        return self

    def memory_gib_per_accelerator(self, chip: Chip) -> float:
        """Device memory of one accelerator: the instance's listed total / count, else the chip's figure."""
        total = self.accelerator_memory_gib.value if self.accelerator_memory_gib else None
        return total / self.count if total else (chip.hbm_gib.value or 0.0)

    @property
    def count(self) -> int:
        """Number of accelerator chips (GPUs or Neuron devices)."""
        assert self.accelerator_count.value is not None  # checked by the validator
        return self.accelerator_count.value


class Price(Record):
    """An hourly price for one instance type, region and purchase option; None when not found."""

    instance_type: str
    region: str
    purchase: PurchaseOption
    usd_per_hour: float | None
    source: str | None
    as_of: str | None
    note: str | None = None

    @model_validator(mode="after")
    def _provenance(self) -> Price:
        if self.usd_per_hour is not None and not (math.isfinite(self.usd_per_hour) and self.usd_per_hour >= 0):
            raise ValueError("usd_per_hour must be a finite, non-negative number")
        if self.usd_per_hour is not None and not self.source:
            raise ValueError("a price needs a source")
        if self.usd_per_hour is None and not (self.note or "").strip():
            raise ValueError("a missing price needs a note saying where it was looked for")
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        """(instance_type, region, purchase): what a newer price row replaces."""
        return self.instance_type, self.region, self.purchase
