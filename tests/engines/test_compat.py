"""Tests for fleetwise.engines.compat: which engine, chip, model, dtype and TP combinations run, and why not."""

from __future__ import annotations

import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.engines import get_engine
from fleetwise.engines.compat import (
    DeviceLayout,
    architecture_refusal,
    device_layout,
    dtype_refusal,
    kv_cache_dtype_refusal,
    kv_share_per_rank,
    tensor_parallel_refusal,
)
from fleetwise.models import ModelArchitecture, load_model, parse_hf_config


def _shapes(heads: int, kv_heads: int) -> ModelArchitecture:
    """A small Llama-style model with the given query and KV head counts (64 dims per head)."""
    return parse_hf_config({"model_type": "llama", "hidden_size": heads * 64, "intermediate_size": 1024,
                            "num_hidden_layers": 2, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                            "vocab_size": 1000, "max_position_embeddings": 4096}, f"{heads}q-{kv_heads}kv")


def _layout(catalog: Catalog, engine: str, instance: str) -> DeviceLayout:
    found = catalog.instance(instance)
    return device_layout(get_engine(engine), catalog.chip_of(found), found)


# ---- device layout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "instance", "layout"),
    [
        ("vllm", "p5.48xlarge", DeviceLayout(8, 80.0, "GPU")),
        ("vllm", "g5.xlarge", DeviceLayout(1, 22.352, "GPU")),  # EC2's listed memory, not the datasheet's 24
        ("nxdi", "inf2.48xlarge", DeviceLayout(24, 16.0, "NeuronCore")),  # 12 chips x 2 cores of 32 GiB / 2
        ("nxdi", "trn2.48xlarge", DeviceLayout(64, 24.0, "2-NeuronCore group")),  # 16 x 8 cores, 2 per rank
        ("tnx", "trn1.32xlarge", DeviceLayout(32, 16.0, "NeuronCore")),
    ],
)
def test_tp_ranks_and_memory_per_rank_follow_the_chips_and_the_engines_core_grouping(
        catalog: Catalog, engine: str, instance: str, layout: DeviceLayout) -> None:
    assert _layout(catalog, engine, instance) == layout


# ---- architecture, dtype and KV-cache format ----------------------------------------------------------------


def test_an_architecture_the_engine_does_not_list_is_refused_with_the_lists_source(catalog: Catalog) -> None:
    refusal = architecture_refusal(get_engine("nxdi"), catalog.chip("inferentia2"), load_model("google/gemma-2-27b-it"))
    assert refusal is not None
    assert refusal.reason == "Neuron: architecture Gemma2ForCausalLM not supported by NxD Inference"
    assert refusal.source is not None and "neuronx-distributed-inference" in refusal.source
    assert architecture_refusal(get_engine("vllm"), catalog.chip("h100-sxm"), load_model("google/gemma-2-27b-it")) \
        is None


def test_an_engine_is_refused_on_a_chip_generation_it_does_not_run_on(catalog: Catalog) -> None:
    refusal = architecture_refusal(get_engine("tnx"), catalog.chip("trainium2"), load_model("Llama-3.1-8B-Instruct"))
    assert refusal is not None and refusal.reason == (
        "Neuron: transformers-neuronx does not run on AWS Trainium2 (neuroncore-v3)")


def test_tgi_is_matched_on_model_type(catalog: Catalog) -> None:
    tgi, h100 = get_engine("tgi"), catalog.chip("h100-sxm")
    assert architecture_refusal(tgi, h100, load_model("Llama-3.1-8B-Instruct")) is None
    refusal = architecture_refusal(tgi, h100, load_model("Qwen/Qwen3-32B"))
    assert refusal is not None and refusal.reason == (
        "architecture Qwen3ForCausalLM not supported by text-generation-inference")
    assert refusal.source is not None and "text-generation-inference" in refusal.source


@pytest.mark.parametrize(
    ("engine", "chip", "dtype", "reason"),
    [
        ("vllm", "a10g", "fp8", "fp8 needs compute capability ≥ 8.9; NVIDIA A10G is 8.6"),
        ("vllm", "a100-80gb", "fp8", "fp8 needs compute capability ≥ 8.9; NVIDIA A100 80GB (SXM4, as in p4de) is 8.0"),
        ("nxdi", "inferentia2", "int4", "NxD Inference does not run int4 weights"),
        ("nxdi", "inferentia2", "fp8", "NxD Inference runs fp8 only on neuroncore-v3; AWS Inferentia2 is "
                                       "neuroncore-v2"),
    ],
)
def test_a_dtype_the_engine_cannot_run_on_the_chip_is_refused(catalog: Catalog, engine: str, chip: str, dtype: str,
                                                              reason: str) -> None:
    refusal = dtype_refusal(get_engine(engine), catalog.chip(chip), get_dtype(dtype))
    assert refusal is not None and refusal.reason == reason
    assert refusal.source


@pytest.mark.parametrize(("engine", "chip", "dtype"), [("vllm", "l40s", "fp8"), ("vllm", "h100-sxm", "fp8"),
                                                       ("vllm", "a10g", "int4"), ("nxdi", "trainium2", "fp8")])
def test_a_dtype_is_offered_where_the_chip_meets_the_rule(catalog: Catalog, engine: str, chip: str,
                                                          dtype: str) -> None:
    assert dtype_refusal(get_engine(engine), catalog.chip(chip), get_dtype(dtype)) is None


def test_a_gpu_without_a_known_compute_capability_is_refused_a_dtype_with_a_floor(catalog: Catalog) -> None:
    unknown = catalog.chip("h100-sxm").model_copy(update={"compute_capability": None})
    refusal = dtype_refusal(get_engine("vllm"), unknown, get_dtype("fp8"))
    assert refusal is not None and "compute capability not found in catalog" in refusal.reason


def test_an_fp8_kv_cache_is_refused_where_no_source_says_the_engine_offers_it() -> None:
    refusal = kv_cache_dtype_refusal(get_engine("tgi"), "fp8")
    assert refusal is not None and refusal.reason == "no source found that text-generation-inference offers a fp8 " \
                                                     "KV cache"
    assert kv_cache_dtype_refusal(get_engine("vllm"), "fp8") is None
    assert kv_cache_dtype_refusal(get_engine("tgi"), "auto") is None


# ---- tensor parallelism -------------------------------------------------------------------------------------


def _tp_refusal(catalog: Catalog, engine: str, instance: str, model: ModelArchitecture, tp: int) -> str | None:
    found = catalog.instance(instance)
    chip = catalog.chip_of(found)
    refusal = tensor_parallel_refusal(get_engine(engine), chip, model, tp, _layout(catalog, engine, instance))
    return None if refusal is None else refusal.reason


@pytest.mark.parametrize(
    ("engine", "instance", "model", "tp", "reason"),
    [
        ("vllm", "p5.48xlarge", "Llama-3.1-8B-Instruct", 3,
         "vLLM accepts TP degrees 1, 2, 4, 8 on NVIDIA H100 SXM5 80GB (as in p5), not 3"),
        ("vllm", "g6e.12xlarge", "Llama-3.1-8B-Instruct", 8, "TP=8 needs 8 GPUs; instance has 4"),
        ("vllm", "g6e.48xlarge", "Qwen/Qwen2.5-7B-Instruct", 8, "TP=8 does not divide 28 attention heads"),
        ("nxdi", "inf2.48xlarge", "Llama-3.1-8B-Instruct", 16,
         "NxD Inference accepts TP degrees 1, 2, 4, 8, 24 on AWS Inferentia2, not 16"),
        ("nxdi", "inf2.8xlarge", "Llama-3.1-8B-Instruct", 4, "TP=4 needs 4 NeuronCores; instance has 2"),
    ],
)
def test_tp_degrees_the_engine_will_not_shard_with_are_refused(catalog: Catalog, engine: str, instance: str,
                                                               model: str, tp: int, reason: str) -> None:
    assert _tp_refusal(catalog, engine, instance, load_model(model), tp) == reason


def test_kv_heads_must_divide_or_replicate_evenly_on_gpu_engines(catalog: Catalog) -> None:
    phi4_like = _shapes(40, 10)  # TP=4 divides 40 query heads but not 10 KV heads
    assert _tp_refusal(catalog, "vllm", "g6e.12xlarge", phi4_like, 4) == "TP=4 does not divide 10 KV heads"
    assert _tp_refusal(catalog, "tgi", "g6e.12xlarge", phi4_like, 4) == "TP=4 does not divide 10 KV heads"
    three_kv = _shapes(48, 3)  # TP=8 > 3 KV heads, and 8 copies cannot be spread over 3 heads
    assert _tp_refusal(catalog, "vllm", "g6e.48xlarge", three_kv, 8) == "TP=8 cannot replicate 3 KV heads evenly"
    assert _tp_refusal(catalog, "vllm", "g6e.48xlarge", _shapes(48, 2), 8) is None  # 4 copies of each


def test_tgi_never_replicates_kv_heads(catalog: Catalog) -> None:
    assert _tp_refusal(catalog, "tgi", "g6e.48xlarge", _shapes(32, 4), 8) == "TP=8 does not divide 4 KV heads"


def test_nxd_inference_pads_query_heads_instead_of_refusing(catalog: Catalog) -> None:
    # 70B's 64 heads do not divide by 24, NxDI pads them up to 72
    assert _tp_refusal(catalog, "nxdi", "inf2.48xlarge", load_model("Llama-3.1-70B-Instruct"), 24) is None


def test_latent_attention_has_no_kv_head_rule(catalog: Catalog) -> None:
    assert _tp_refusal(catalog, "vllm", "p5en.48xlarge", load_model("deepseek-ai/DeepSeek-V3"), 8) is None


@pytest.mark.parametrize(
    ("engine", "heads", "kv_heads", "tp", "share"),
    [
        ("vllm", 32, 8, 4, 1 / 4),  # KV heads split four ways
        ("vllm", 32, 8, 8, 1 / 8),
        ("vllm", 48, 2, 8, 1 / 2),  # each rank keeps one of the two KV heads, replicated
        ("nxdi", 32, 8, 24, 1 / 8),  # 24 % 8 == 0: each KV head replicated three times
        ("nxdi", 40, 10, 8, 5 / 10),  # 8 % 10 != 0: converted to MHA, 5 (of 40) heads per rank
        ("nxdi", 64, 8, 24, 1 / 8),
    ],
)
def test_each_rank_stores_its_share_of_the_kv_heads(engine: str, heads: int, kv_heads: int, tp: int,
                                                   share: float) -> None:
    assert kv_share_per_rank(get_engine(engine), _shapes(heads, kv_heads), tp) == pytest.approx(share)


def test_latent_attention_cache_is_replicated_on_every_rank() -> None:
    assert kv_share_per_rank(get_engine("vllm"), load_model("deepseek-ai/DeepSeek-V3"), 8) == 1.0
