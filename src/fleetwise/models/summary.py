"""A model's figures as plain data: parameters by part, weight size per dtype, KV cache, FLOPs, its sources."""

from __future__ import annotations

from typing import Any

from fleetwise.dtypes import DTYPES
from fleetwise.errors import FleetwiseError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.models.library import bundled_models, find_bundled, load_model
from fleetwise.units import GIB


def model_summary(model: ModelArchitecture, context_tokens: int = 8192) -> dict[str, Any]:
    """What a model costs: parameters, weight GiB per dtype, KV cache and FLOPs per token."""
    p = model.parameters()
    a = model.attention
    context = min(context_tokens, model.max_position_embeddings)
    return {
        "model": model.name,
        "architecture": model.architecture,
        "model_type": model.model_type,
        "native_dtype": model.native_dtype,
        "parameters": {"total": p.total, "active": p.active, "active_excluding_embedding": p.active_excluding_embedding,
                       "embedding": p.embedding, "lm_head": p.lm_head, "attention": p.attention,
                       "dense_mlp": p.dense_mlp, "routed_experts": p.routed_experts,
                       "shared_experts": p.shared_experts, "routers": p.routers, "norms": p.norms},
        "layers": model.num_layers,
        "hidden_size": model.hidden_size,
        "attention": {"kind": a.kind, "heads": a.num_heads, "kv_heads": a.num_kv_heads, "head_dim": a.head_dim,
                      "kv_lora_rank": a.kv_lora_rank or None,
                      "sliding_window_layers": model.sliding_window_layers},
        "moe": None if model.moe is None else {
            "experts": model.moe.num_experts, "experts_per_token": model.moe.experts_per_token,
            "shared_experts": model.moe.num_shared_experts, "moe_layers": sum(model.moe_layers)},
        "max_position_embeddings": model.max_position_embeddings,
        "weights_gib": {d.id: round(model.weight_bytes(d) / GIB, 3) for d in DTYPES.values()},
        "kv_cache_bytes_per_token": model.kv_cache_bytes_per_token(),
        "context_tokens": context,
        "kv_cache_gib_per_sequence": round(model.kv_cache_bytes_per_sequence(context) / GIB, 4),
        "forward_gflops_per_token": round(model.forward_flops_per_token(context) / 1e9, 3),
        "source": model.source,
        "note": model.note,
    }


def describe_model(name_or_path: str, context_tokens: int = 8192) -> dict[str, Any]:
    """`model_summary` of a bundled model or a config, with the publisher's parameter counts where bundled."""
    if context_tokens < 1:
        raise FleetwiseError(f"--context must be at least 1 token, got {context_tokens}")
    summary = model_summary(load_model(name_or_path), context_tokens)
    entry = find_bundled(name_or_path)
    if entry is not None:
        summary["published"] = {"total": entry.published.total, "active": entry.published.active,
                                "non_embedding": entry.published.non_embedding, "source": entry.published.source}
    return summary


def library_rows() -> list[dict[str, Any]]:
    """Every bundled model: computed and published parameter counts, KV cache per token, context, source."""
    return [{"hf_id": e.hf_id, "architecture": e.architecture.architecture,
             "total_params": e.architecture.parameters().total, "active_params": e.architecture.parameters().active,
             "published_total": e.published.total, "published_active": e.published.active,
             "kv_cache_bytes_per_token": e.architecture.kv_cache_bytes_per_token(),
             "max_position_embeddings": e.architecture.max_position_embeddings,
             "source": e.source, "as_of": e.as_of} for e in bundled_models().values()]
