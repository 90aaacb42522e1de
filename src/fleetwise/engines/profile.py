"""Serving-engine profiles as data: what each engine runs (architectures, dtypes, TP shapes) and its defaults."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fleetwise.errors import DataFileError, UnknownNameError
from fleetwise.sourced import Sourced


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DTypeRule(_Record):
    """When an engine can run a weight dtype: a minimum CUDA capability (GPU) or a list of Neuron generations."""

    min_compute_capability: str | None = None
    generations: list[str] | None = None
    source: str
    as_of: str | None = None
    note: str | None = None


class TensorParallelRule(_Record):
    """How an engine shards a model: over GPUs or NeuronCores, which degrees, and what must divide."""

    unit: Literal["gpu", "neuron_core"]
    degrees: list[int]  # degrees the engine accepts; the planner also caps them by the devices present
    heads_divisible: bool  # num_attention_heads % tp == 0 is required
    kv_heads_replicated: bool  # when tp > num_kv_heads, KV heads are replicated (tp % kv_heads must be 0)
    # Physical NeuronCores that form one TP rank, per Neuron generation (logical NeuronCore config).
    cores_per_rank: dict[str, int] = {}
    source: str
    as_of: str | None = None
    note: str | None = None


class EngineProfile(_Record):
    """One serving engine: its capabilities and defaults, each with a source."""

    id: str
    name: str
    hardware_kind: Literal["gpu", "neuron"]
    version_note: str | None = None
    supported_architectures: Sourced[list[str]]
    dtypes: dict[str, DTypeRule]
    tensor_parallel: TensorParallelRule
    memory_utilization: Sourced[float]  # share of device memory the engine lets itself use
    max_num_seqs: Sourced[int] | None = None
    max_num_batched_tokens: Sourced[int] | None = None
    compiled_shapes: Sourced[bool]  # batch size and sequence buckets fixed at compile time (Neuron)
    continuous_batching: Sourced[bool]
    chunked_prefill: Sourced[bool]
    prefix_caching: Sourced[bool]

    def supports_architecture(self, architecture: str) -> bool:
        """True when the engine lists this HF architecture class."""
        return architecture in (self.supported_architectures.value or [])


DEFAULT_ENGINE_FOR_KIND = {"gpu": "vllm", "neuron": "nxdi"}


@cache
def engine_profiles() -> dict[str, EngineProfile]:
    """Every bundled engine profile by id."""
    name = "fleetwise/engines/data/engines.yaml"
    text = (resources.files("fleetwise.engines") / "data" / "engines.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    profiles: dict[str, EngineProfile] = {}
    for index, raw in enumerate(doc.get("engines") or []):
        try:
            profile = EngineProfile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DataFileError(name, first["msg"], entry=f"{index} ({raw.get('id')})",
                                field=".".join(str(p) for p in first["loc"])) from None
        profiles[profile.id] = profile
    return profiles


def get_engine(engine_id: str) -> EngineProfile:
    """The engine profile with that id, or an error naming the closest ids."""
    profiles = engine_profiles()
    key = engine_id.strip().lower()
    if key not in profiles:
        raise UnknownNameError("engine", engine_id, profiles)
    return profiles[key]
