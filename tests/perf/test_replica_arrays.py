"""Packing configurations for the step model: per-rank sizes from the architecture, engine flags, efficiency swaps."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable, Efficiency
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaArrays, ReplicaConfig, build_arrays
from fleetwise.sourced import Sourced

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _config(catalog: Catalog, calibration: CalibrationTable, model: str, hardware: str, tp: int, dtype: str = "bf16",
            kv_cache_dtype: str = "auto") -> ReplicaConfig:
    hw = resolve_hardware(catalog, hardware, tp)
    return ReplicaConfig(load_model(model), hw, get_dtype(dtype),
                         calibration.lookup(hw.engine.id, hw.chip.id, hw.chip.kind), kv_cache_dtype)


def _arrays(catalog: Catalog, calibration: CalibrationTable, *args: object, **kwargs: str) -> ReplicaArrays:
    return build_arrays([_config(catalog, calibration, *args, **kwargs)])  # type: ignore[arg-type]


def test_dense_weights_and_kv_split_evenly_across_ranks(catalog: Catalog, calibration: CalibrationTable) -> None:
    model = load_model(LLAMA_8B)
    for tp in (1, 2):
        r = _arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", tp)
        assert float(r.dense_weight_bytes[0]) == pytest.approx(model.weight_bytes(get_dtype("bf16")) / tp, rel=1e-6)
        # Llama 3.1 8B: 8 KV heads of 128 dims, K and V, 2 bytes each
        assert float(r.kv_bytes_per_token_layer[0]) == 8 * 128 * 2 * 2 / tp
        assert float(r.expert_bytes[0]) == 0.0 and float(r.moe_layers[0]) == 0.0
        assert float(r.full_layers[0]) == float(r.layers[0]) == 32


def test_fp8_kv_cache_halves_the_bytes_per_token(catalog: Catalog, calibration: CalibrationTable) -> None:
    auto = _arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1)
    fp8 = _arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1, kv_cache_dtype="fp8")
    assert float(fp8.kv_bytes_per_token_layer[0]) == float(auto.kv_bytes_per_token_layer[0]) / 2


def test_flops_per_token_follow_the_parameter_count(catalog: Catalog, calibration: CalibrationTable) -> None:
    model = load_model(LLAMA_8B)
    r = _arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1)
    assert float(r.matmul_flops_per_token[0]) == 2.0 * model.matmul_parameters_per_token()
    assert float(r.lm_head_flops_per_token[0]) == 2.0 * 128256 * 4096  # vocabulary × hidden size
    assert float(r.attention_flops_per_token_layer[0]) == 2.0 * 32 * (128 + 128)  # heads × (QK + AV) dims


def test_moe_weights_split_into_dense_part_and_routed_experts(catalog: Catalog, calibration: CalibrationTable) -> None:
    tp = 2
    r = _arrays(catalog, calibration, MIXTRAL, "p5.48xlarge", tp)
    one_expert = 3 * 4096 * 14336 * 2 / tp  # gate, up and down projections of one expert, bf16, per rank
    assert float(r.expert_bytes[0]) == pytest.approx(one_expert)
    assert (float(r.experts[0]), float(r.experts_per_token[0]), float(r.moe_layers[0])) == (8, 2, 32)
    total = load_model(MIXTRAL).weight_bytes(get_dtype("bf16")) / tp
    assert float(r.dense_weight_bytes[0]) + one_expert * 8 * 32 == pytest.approx(total, rel=1e-6)


def test_sliding_window_layers_are_grouped_by_window(catalog: Catalog, calibration: CalibrationTable) -> None:
    r = _arrays(catalog, calibration, "google/gemma-3-27b-it", "p5.48xlarge", 2)
    # Gemma 3 27B: 62 layers, every sixth global, the rest attending to 1,024 tokens
    assert float(r.full_layers[0]) == 10
    assert r.window_size[0].tolist()[0] == 1024 and r.window_layers[0].tolist() == [52, 0]


def test_engine_flags_mark_compiled_buckets_and_chunked_prefill(catalog: Catalog,
                                                               calibration: CalibrationTable) -> None:
    gpu = _arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1)
    neuron = _arrays(catalog, calibration, LLAMA_8B, "inf2.48xlarge", 2)
    assert (float(gpu.pads_prompts[0]), float(gpu.chunked_prefill[0])) == (0.0, 1.0)  # vLLM
    assert (float(neuron.pads_prompts[0]), float(neuron.chunked_prefill[0])) == (1.0, 0.0)  # NxD Inference


def test_one_rank_has_no_link_to_pay_for(catalog: Catalog, calibration: CalibrationTable) -> None:
    assert float(_arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1).link_bandwidth[0]) == np.inf
    assert np.isfinite(_arrays(catalog, calibration, LLAMA_8B, "p5.48xlarge", 2).link_bandwidth[0])


def test_efficiencies_are_stored_in_seconds(catalog: Catalog, calibration: CalibrationTable) -> None:
    config = _config(catalog, calibration, LLAMA_8B, "p5.48xlarge", 2)
    r = build_arrays([config])
    eff = config.efficiency
    assert (float(r.compute_eff[0]), float(r.memory_eff[0]), float(r.comm_eff[0])) == (
        eff.compute, eff.memory, eff.communication)
    assert float(r.allreduce_s[0]) == pytest.approx(eff.allreduce_us / 1e6)
    assert float(r.overhead_s[0]) == pytest.approx(eff.overhead_ms / 1e3)


def test_take_and_with_efficiencies_touch_only_what_they_say(catalog: Catalog, calibration: CalibrationTable) -> None:
    configs = [_config(catalog, calibration, LLAMA_8B, "p5.48xlarge", 1),
               _config(catalog, calibration, MIXTRAL, "p5.48xlarge", 2)]
    r = build_arrays(configs)
    assert len(r) == 2
    picked = r.take(np.array([1, 1, 0]))
    assert len(picked) == 3 and picked.tp.tolist() == [2, 2, 1]
    assert picked.expert_bytes[0] == picked.expert_bytes[1] == r.expert_bytes[1]
    new = [Efficiency(0.1, 0.2, 0.3, 40.0, 5.0), Efficiency(0.6, 0.7, 0.8, 90.0, 2.0)]
    swapped = r.with_efficiencies(new)
    assert swapped.compute_eff.tolist() == [0.1, 0.6] and swapped.comm_eff.tolist() == [0.3, 0.8]
    assert swapped.allreduce_s.tolist() == pytest.approx([40e-6, 90e-6])
    assert swapped.overhead_s.tolist() == pytest.approx([5e-3, 2e-3])
    efficiency_fields = {"compute_eff", "memory_eff", "comm_eff", "allreduce_s", "overhead_s"}
    for f in dataclasses.fields(r):
        if f.name not in efficiency_fields:
            assert getattr(swapped, f.name) is getattr(r, f.name), f.name


@pytest.mark.parametrize(("hardware", "dtype", "figure"),
                         [("g5.12xlarge", "bf16", "bf16 TFLOPS"), ("p4d.24xlarge", "fp8", "fp8 TFLOPS")])
def test_a_missing_chip_figure_is_named(catalog: Catalog, calibration: CalibrationTable, hardware: str, dtype: str,
                                        figure: str) -> None:
    config = _config(catalog, calibration, LLAMA_8B, hardware, 1, dtype)
    expected = f"{config.hardware.chip.name}: {figure} not found in the catalog"
    with pytest.raises(FleetwiseError, match=re.escape(expected)):
        build_arrays([config])


def test_a_multi_rank_replica_needs_a_link_figure(catalog: Catalog, calibration: CalibrationTable) -> None:
    """The README's remedy for g5: add the A10G's TFLOPS; TP=1 then predicts, TP=2 still lacks the PCIe figure."""
    config = _config(catalog, calibration, LLAMA_8B, "g5.12xlarge", 2)
    tflops = Sourced[float](value=125.0, source="https://example.com/a10g")  # a user's --catalog figure
    chip = config.hardware.chip.model_copy(update={"bf16_tflops": tflops})
    hw = dataclasses.replace(config.hardware, chip=chip)
    assert len(build_arrays([dataclasses.replace(config, hardware=dataclasses.replace(hw, tp=1))])) == 1
    with pytest.raises(FleetwiseError, match="interconnect GB/s not found"):
        build_arrays([dataclasses.replace(config, hardware=hw)])
