"""Configurations packed for the step-time model: one entry per (model, hardware, dtype, efficiency) configuration.

`ReplicaArrays` holds the raw per-configuration figures (peak rates, efficiencies, model sizes), each field an
array of shape (N,), so that thousands of configurations are priced in one vectorised call; calibration swaps
the efficiency columns without repacking. `fleetwise.perf.step_time` derives the step model's constants from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

from fleetwise.dtypes import WeightDType, kv_cache_bytes
from fleetwise.engines.compat import kv_share_per_rank
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import step_token_budget, weight_bytes_per_device
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import Efficiency
from fleetwise.perf.hardware import ReplicaHardware

Array = NDArray[np.float64]
MAX_WINDOW_GROUPS = 2  # distinct sliding-window sizes per model (gpt-oss, Gemma, Llama 4 have one)


@dataclass(frozen=True)
class ReplicaArrays:
    """Per-configuration figures of the step model, one entry per configuration."""

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
    batched_tokens: Array  # tokens one step may compute (vLLM max_num_batched_tokens)

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def take(self, rows: NDArray[np.intp]) -> ReplicaArrays:
        """The configurations at `rows` (repeats allowed), e.g. one per point of a load grid."""
        return ReplicaArrays(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def with_efficiencies(self, efficiencies: Sequence[Efficiency]) -> ReplicaArrays:
        """The same configurations with one set of efficiencies per configuration."""
        return replace(self, compute_eff=np.array([e.compute for e in efficiencies]),
                       memory_eff=np.array([e.memory for e in efficiencies]),
                       comm_eff=np.array([e.communication for e in efficiencies]),
                       allreduce_s=np.array([e.allreduce_us / 1e6 for e in efficiencies]),
                       overhead_s=np.array([e.overhead_ms / 1e3 for e in efficiencies]))


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
        for key, value in _figures(config).items():
            columns[key].append(value)
    return ReplicaArrays(**{k: np.asarray(v, dtype=np.float64) for k, v in columns.items()})


def _figures(config: ReplicaConfig) -> dict[str, object]:
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
        "batched_tokens": float(step_token_budget(hw.engine)),
    }
