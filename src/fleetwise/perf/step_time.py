"""Step-time model: how long one prefill or decode step of a replica takes, from first principles.

A step costs the larger of its compute time (matmul + attention FLOPs at the achieved share of peak) and its
memory time (weights, touched experts and KV cache streamed at the achieved share of bandwidth), plus
tensor-parallel all-reduces over the link, plus a fixed per-step overhead. Everything is numpy arrays so that
thousands of configurations are evaluated at once: each field of `ReplicaArrays` has shape (N,), and the batch
arguments broadcast against (N, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from fleetwise.dtypes import ACTIVATION_BYTES, WeightDType, kv_cache_bytes
from fleetwise.engines.compat import kv_share_per_rank
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import weight_bytes_per_device
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import Efficiency
from fleetwise.perf.hardware import ReplicaHardware

Array = NDArray[np.float64]
MAX_WINDOW_GROUPS = 2  # distinct sliding-window sizes per model (gpt-oss, Gemma, Llama 4 have one)
NEURON_MIN_BUCKET = 128  # NxDI / transformers-neuronx auto-buckets are powers of two from 128 (engines.yaml)


@dataclass(frozen=True)
class ReplicaArrays:
    """Per-configuration constants of the step model, one entry per configuration."""

    tp: Array
    peak_flops: Array  # per rank, FLOP/s
    memory_bandwidth: Array  # per rank, bytes/s
    link_bandwidth: Array  # per rank per direction, bytes/s (inf when tp == 1)
    compute_eff: Array
    memory_eff: Array
    comm_eff: Array
    allreduce_s: Array  # latency of one hop of a ring all-reduce
    overhead_s: Array
    matmul_flops_per_token: Array  # whole replica, excluding the input embedding lookup
    lm_head_flops_per_token: Array
    attention_flops_per_token_layer: Array  # per attended token per layer
    layers: Array
    hidden: Array
    full_layers: Array
    window_size: Array  # (N, MAX_WINDOW_GROUPS)
    window_layers: Array  # (N, MAX_WINDOW_GROUPS)
    kv_bytes_per_token_layer: Array  # per rank
    dense_weight_bytes: Array  # per rank, everything but routed experts
    expert_bytes: Array  # per rank, one routed expert of one layer
    moe_layers: Array
    experts: Array
    experts_per_token: Array
    pads_prompts: Array  # 1.0 where prompts are padded to compiled power-of-two buckets (Neuron)
    chunked_prefill: Array  # 1.0 where the engine folds prompt chunks into decode steps

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def take(self, rows: NDArray[np.intp]) -> ReplicaArrays:
        """The configurations at `rows` (repeats allowed), e.g. one per point of a load grid."""
        return ReplicaArrays(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def column(self, key: str) -> Array:
        """A field shaped (N, 1) to broadcast against per-configuration batch arrays."""
        value: Array = getattr(self, key)
        return value[:, None] if value.ndim == 1 else value


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """One configuration to predict: a model on a replica's hardware, in a dtype, with fitted efficiencies."""

    model: ModelArchitecture
    hardware: ReplicaHardware
    dtype: WeightDType
    efficiency: Efficiency
    kv_cache_dtype: str = "auto"


def build_arrays(configs: Sequence[ReplicaConfig]) -> ReplicaArrays:
    """Pack configurations into arrays; a figure missing from the catalog is an error naming it."""
    columns: dict[str, list[object]] = {f.name: [] for f in fields(ReplicaArrays)}
    for config in configs:
        for key, value in _constants(config).items():
            columns[key].append(value)
    return ReplicaArrays(**{k: np.asarray(v, dtype=np.float64) for k, v in columns.items()})


def _constants(config: ReplicaConfig) -> dict[str, object]:
    model, hw, dtype, eff = config.model, config.hardware, config.dtype, config.efficiency
    tp = hw.tp
    peak = hw.peak_flops_per_rank(dtype)
    bandwidth = hw.memory_bytes_per_s_per_rank
    link = hw.link_bytes_per_s_per_rank if tp > 1 else float("inf")
    for value, what in ((peak, f"{'fp8' if dtype.id == 'fp8' else 'bf16'} TFLOPS"), (bandwidth, "memory GB/s"),
                        (link, "interconnect GB/s")):
        if value is None:
            raise FleetwiseError(f"{hw.chip.name}: {what} not found in the catalog, so its step time cannot be "
                                 f"predicted; add the figure with --catalog (see `fleetwise catalog show`)")
    counts = model.parameters()
    a = model.attention
    kv_share = kv_share_per_rank(hw.engine, model, tp)
    weights = weight_bytes_per_device(model, dtype, tp, kv_share)
    expert_bytes = 0.0
    if model.moe is not None:
        per_expert = counts.routed_experts / max(sum(model.moe_layers) * model.moe.num_experts, 1)
        expert_bytes = per_expert * dtype.bytes_per_param / tp  # routed experts are quantisable linears
    windows = sorted({w for w in model.layer_windows if w is not None})
    if len(windows) > MAX_WINDOW_GROUPS:
        raise FleetwiseError(f"{model.name}: more than {MAX_WINDOW_GROUPS} distinct attention windows")
    sizes = [*windows, *[1] * (MAX_WINDOW_GROUPS - len(windows))]
    layer_counts = [sum(w == size for w in model.layer_windows) for size in windows]
    layer_counts += [0] * (MAX_WINDOW_GROUPS - len(layer_counts))
    routed_total = expert_bytes * sum(model.moe_layers) * (model.moe.num_experts if model.moe else 0)
    return {
        "tp": tp, "peak_flops": peak, "memory_bandwidth": bandwidth, "link_bandwidth": link,
        "compute_eff": eff.compute, "memory_eff": eff.memory, "comm_eff": eff.communication,
        "allreduce_s": eff.allreduce_us / 1e6, "overhead_s": eff.overhead_ms / 1000.0,
        "matmul_flops_per_token": 2.0 * model.matmul_parameters_per_token(),
        "lm_head_flops_per_token": 2.0 * model.vocab_size * model.hidden_size,
        "attention_flops_per_token_layer": 2.0 * a.num_heads * (a.head_dim + a.v_head_dim),
        "layers": model.num_layers, "hidden": model.hidden_size,
        "full_layers": sum(w is None for w in model.layer_windows),
        "window_size": sizes, "window_layers": layer_counts,
        "kv_bytes_per_token_layer": model.kv_cache_bytes_per_token_per_layer(kv_cache_bytes(config.kv_cache_dtype))
        * kv_share,
        "dense_weight_bytes": weights - routed_total, "expert_bytes": expert_bytes,
        "moe_layers": sum(model.moe_layers), "experts": model.moe.num_experts if model.moe else 0,
        "experts_per_token": model.moe.experts_per_token if model.moe else 0,
        "pads_prompts": 1.0 if hw.engine.compiled_shapes.value else 0.0,
        "chunked_prefill": 1.0 if hw.engine.chunked_prefill.value else 0.0,
    }


@dataclass(frozen=True)
class StepTimes:
    """Seconds per step and what they are made of; arrays shaped like the batch arguments."""

    compute_s: Array
    memory_s: Array
    communication_s: Array
    overhead_s: Array

    @property
    def total_s(self) -> Array:
        """Step time: compute and memory overlap, communication and overhead add."""
        return np.maximum(self.compute_s, self.memory_s) + self.communication_s + self.overhead_s


def bucketed(r: ReplicaArrays, tokens: Array) -> Array:
    """Sequence length as executed: Neuron runs compiled power-of-two buckets of at least 128 tokens."""
    length = np.asarray(tokens, dtype=np.float64)
    bucket = np.maximum(2.0 ** np.ceil(np.log2(np.maximum(length, 1.0))), NEURON_MIN_BUCKET)
    return np.asarray(np.where(r.column("pads_prompts") > 0, bucket, length), dtype=np.float64)


def attended_tokens(r: ReplicaArrays, context: Array) -> Array:
    """Tokens attended across all layers by one token at position `context` (windows cap their layers)."""
    context = np.asarray(context, dtype=np.float64)
    windowed = (r.window_layers[:, None, :] * np.minimum(r.window_size[:, None, :], context[..., None])).sum(-1)
    return np.asarray(r.column("full_layers") * context + windowed, dtype=np.float64)


def _causal_attended(r: ReplicaArrays, prompt: Array) -> Array:
    """Sum over the prompt's tokens of the tokens each attends to, over all layers (causal prefill)."""
    full = prompt * (prompt + 1.0) / 2.0
    w = r.window_size[:, None, :]
    p = prompt[..., None]
    capped = np.where(p <= w, p * (p + 1.0) / 2.0, w * (w + 1.0) / 2.0 + (p - w) * w)
    return np.asarray(r.column("full_layers") * full + (r.window_layers[:, None, :] * capped).sum(-1),
                      dtype=np.float64)


def _experts_touched(r: ReplicaArrays, tokens: Array) -> Array:
    """Expected distinct routed experts per MoE layer that `tokens` tokens activate (uniform routing)."""
    experts = r.column("experts")
    share = np.divide(r.column("experts_per_token"), experts, out=np.zeros_like(experts), where=experts > 0)
    return experts * (1.0 - (1.0 - share) ** tokens)


def _allreduce_s(r: ReplicaArrays, tokens: Array) -> Array:
    """Two ring all-reduces of the hidden states per layer (after attention and after the MLP): 2(tp-1) hops of
    fixed latency each, plus the ring's share of the bytes over the link."""
    tp = r.column("tp")
    size = tokens * r.column("hidden") * ACTIVATION_BYTES
    transfer = 2.0 * (tp - 1.0) / tp * size / (r.column("link_bandwidth") * r.column("comm_eff"))
    per_allreduce = 2.0 * (tp - 1.0) * r.column("allreduce_s") + transfer  # a ring takes 2(tp-1) hops
    return np.where(tp > 1, 2.0 * r.column("layers") * per_allreduce, 0.0)


def _weights_s(r: ReplicaArrays, tokens: Array) -> Array:
    expert_bytes = r.column("moe_layers") * _experts_touched(r, tokens) * r.column("expert_bytes")
    return r.column("dense_weight_bytes") + expert_bytes


def prefill_step(r: ReplicaArrays, batch: Array, prompt_tokens: Array) -> StepTimes:
    """One step that prefills `batch` prompts of `prompt_tokens` each (no cached prefix)."""
    batch = np.asarray(batch, dtype=np.float64)
    prompt = bucketed(r, prompt_tokens)
    tokens = batch * prompt
    tp = r.column("tp")
    flops = (tokens * r.column("matmul_flops_per_token")
             - batch * (prompt - 1.0) * r.column("lm_head_flops_per_token")  # logits only for the last token
             + batch * _causal_attended(r, prompt) * r.column("attention_flops_per_token_layer"))
    compute = flops / tp / (r.column("peak_flops") * r.column("compute_eff"))
    kv_write = tokens * r.column("layers") * r.column("kv_bytes_per_token_layer")
    memory = (_weights_s(r, tokens) + kv_write) / (r.column("memory_bandwidth") * r.column("memory_eff"))
    return StepTimes(compute, memory, _allreduce_s(r, tokens), np.broadcast_to(r.column("overhead_s"), tokens.shape))


def decode_step(r: ReplicaArrays, batch: Array, context_tokens: Array) -> StepTimes:
    """One decode step for `batch` sequences that each hold `context_tokens` tokens."""
    batch = np.asarray(batch, dtype=np.float64)
    attended = attended_tokens(r, bucketed(r, context_tokens))
    tp = r.column("tp")
    flops = batch * (r.column("matmul_flops_per_token") + attended * r.column("attention_flops_per_token_layer"))
    compute = flops / tp / (r.column("peak_flops") * r.column("compute_eff"))
    kv_read = batch * attended * r.column("kv_bytes_per_token_layer")
    memory = (_weights_s(r, batch) + kv_read) / (r.column("memory_bandwidth") * r.column("memory_eff"))
    shape = np.broadcast_shapes(batch.shape, attended.shape)
    return StepTimes(np.broadcast_to(compute, shape), np.broadcast_to(memory, shape),
                     np.broadcast_to(_allreduce_s(r, batch), shape), np.broadcast_to(r.column("overhead_s"), shape))
