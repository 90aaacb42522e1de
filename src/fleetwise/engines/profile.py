"""Serving-engine profiles as data: what each engine runs (architectures, dtypes, TP shapes) and its defaults."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from pydantic import Field

from fleetwise.datafiles import Record, parse_yaml, validate_record
from fleetwise.errors import UnknownNameError
from fleetwise.sourced import Sourced


class DTypeRule(Record):
    """When an engine can run a weight dtype: a minimum CUDA capability (GPU) or a list of Neuron generations."""

    supported: bool = True  # False records, with its source, that the engine does not run this dtype
    min_compute_capability: str | None = None  # None: no floor found, runs on every chip the engine runs on
    generations: list[str] | None = None
    source: str
    as_of: str | None = None
    note: str | None = None


KVHeadSharding = Literal["replicate", "must_divide", "replicate_or_convert_to_mha"]


class TensorParallelRule(Record):
    """How an engine shards a model: over GPUs or NeuronCores, which degrees, and what must divide."""

    unit: Literal["gpu", "neuron_core"]
    # Degrees the engine accepts, keyed by chip id, with "default" for chips not named.
    degrees: dict[str, list[int]]
    heads_divisible: bool  # num_attention_heads % tp == 0 is required (else query heads are padded)
    # replicate: tp > kv heads copies KV heads (tp % kv must be 0); must_divide: kv % tp == 0;
    # replicate_or_convert_to_mha: replicate when tp % kv == 0, else expand KV to one head per query head.
    kv_heads: KVHeadSharding
    # Physical NeuronCores that form one TP rank, per Neuron generation (logical NeuronCore config).
    cores_per_rank: dict[str, int] = Field(default_factory=dict)
    source: str
    as_of: str | None = None
    note: str | None = None

    def degrees_for(self, chip_id: str) -> list[int]:
        """TP degrees accepted on this chip."""
        return self.degrees.get(chip_id, self.degrees.get("default", []))


class EngineProfile(Record):
    """One serving engine: its capabilities and defaults, each with a source."""

    id: str
    name: str
    hardware_kind: Literal["gpu", "neuron"]
    version_note: str | None = None
    generations: Sourced[list[str]] | None = None  # chip generations it runs on (None: every one of its kind)
    supported_architectures: Sourced[list[str]]
    supported_model_types: Sourced[list[str]] | None = None  # engines that dispatch on config model_type
    dtypes: dict[str, DTypeRule]
    kv_cache_dtypes: dict[str, DTypeRule] = Field(default_factory=dict)  # beyond the 16-bit default
    tensor_parallel: TensorParallelRule
    memory_utilization: Sourced[float]  # share of memory the engine lets itself use; None = not found
    memory_utilization_applies_to: Literal["total", "free_after_load"] = "total"
    max_num_seqs: Sourced[int] | None = None
    max_num_batched_tokens: Sourced[int] | None = None
    compiled_shapes: Sourced[bool]  # batch size and sequence buckets fixed at compile time (Neuron)
    windowed_kv_cache: Sourced[bool]  # sliding/chunked-window layers keep only their window of KV
    continuous_batching: Sourced[bool]
    chunked_prefill: Sourced[bool]
    prefix_caching: Sourced[bool]
    kv_block_tokens: Sourced[int]  # tokens per paged KV block; None: contiguous KV, one block per sequence

    @property
    def sequence_limit(self) -> int | None:
        """The engine's default max_num_seqs, or None where not found."""
        return self.max_num_seqs.value if self.max_num_seqs else None

    @property
    def batched_token_limit(self) -> int | None:
        """The engine's default max_num_batched_tokens, or None where not found."""
        return self.max_num_batched_tokens.value if self.max_num_batched_tokens else None

    def supports_model(self, architecture: str, model_type: str) -> bool:
        """True when the engine lists this HF architecture class (or, for some engines, the model_type)."""
        if architecture in (self.supported_architectures.value or []):
            return True
        return self.supported_model_types is not None and model_type in (self.supported_model_types.value or [])

    def runs_on(self, generation: str) -> bool:
        """True when the engine runs on chips of this generation."""
        return self.generations is None or generation in (self.generations.value or [])


DEFAULT_ENGINE_FOR_KIND = {"gpu": "vllm", "neuron": "nxdi"}


@cache
def engine_profiles() -> dict[str, EngineProfile]:
    """Every bundled engine profile by id."""
    name = "fleetwise/engines/data/engines.yaml"
    text = (resources.files("fleetwise.engines") / "data" / "engines.yaml").read_text(encoding="utf-8")
    doc = parse_yaml(text) or {}
    profiles: dict[str, EngineProfile] = {}
    for index, raw in enumerate(doc.get("engines") or []):
        profile = validate_record(EngineProfile, raw, name, f"{index} ({raw.get('id')})")
        profiles[profile.id] = profile
    return profiles


def get_engine(engine_id: str) -> EngineProfile:
    """The engine profile with that id, or an error naming the closest ids."""
    profiles = engine_profiles()
    key = engine_id.strip().lower()
    if key not in profiles:
        raise UnknownNameError("engine", engine_id, profiles)
    return profiles[key]
