"""Tests for fleetwise.fit.memory: where models fit, how many sequences the KV cache holds, and why not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.engines import get_engine
from fleetwise.errors import FleetwiseError, UnknownNameError
from fleetwise.fit import FitResult, fit_model, fit_one
from fleetwise.fit.memory import activation_bytes_per_device, weight_bytes_per_device
from fleetwise.models import load_model

GIB = 2**30
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
KV_GIB_PER_8K_SEQUENCE = 8192 * 128 * 1024 / GIB  # Llama-3.1-8B: 128 KiB of KV per token, 1 GiB per 8k tokens


def _fit(catalog: Catalog, model: str, **kwargs: Any) -> list[FitResult]:
    return fit_model(load_model(model), catalog, **kwargs)


def _one(results: list[FitResult], instance: str, tp: int, dtype: str) -> FitResult:
    (row,) = [r for r in results if r.instance == instance and r.tp == tp and r.dtype == dtype]
    return row


def _on(catalog: Catalog, model: str, instance: str, **kwargs: Any) -> list[FitResult]:
    return _fit(catalog, model, instances=[catalog.instance(instance)], **kwargs)


# ---- what fits, and how much KV room is left ----------------------------------------------------------------


def test_8b_bf16_fits_one_a10g_with_room_for_five_8k_sequences(catalog: Catalog) -> None:
    row = _one(_on(catalog, LLAMA_8B, "g5.xlarge"), "g5.xlarge", 1, "bf16")
    assert row.fits and row.reason == "" and row.refused_by == ""
    assert row.weights_gib_per_device == pytest.approx(8.03e9 * 2 / GIB, rel=0.01)
    # vLLM may use 92% of the 22.35 GiB: 20.56 - 14.96 GiB weights - 0.23 GiB activations = 5.37 GiB of KV
    assert row.kv_cache_gib_per_device == pytest.approx(22.352 * 0.92 - 14.958 - 0.233, abs=0.002)
    assert row.max_sequences == 5


def test_engines_that_size_kv_after_loading_take_their_share_of_what_is_free(catalog: Catalog) -> None:
    row = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", engines=["tgi"], dtypes=["bf16"]), "g6e.xlarge", 1, "bf16")
    # TGI: 90% of (44.70 GiB - 14.96 GiB weights - 0.17 GiB activations)
    assert row.kv_cache_gib_per_device == pytest.approx((44.703 - 14.958 - 0.172) * 0.9, abs=0.002)


def test_a_model_bigger_than_every_single_accelerator_only_fits_with_tp(catalog: Catalog) -> None:
    results = _fit(catalog, "meta-llama/Llama-3.1-405B-Instruct", dtypes=["bf16"])
    fitting = {(r.instance, r.tp) for r in results if r.fits}
    assert fitting == {("p5e.48xlarge", 8), ("p5en.48xlarge", 8), ("trn2.48xlarge", 64)}  # 8 x H200 or a trn2
    too_small = _one(results, "p5.48xlarge", 8, "bf16")
    assert not too_small.fits and too_small.refused_by == "memory"
    assert too_small.reason == ("needs 756.0 GiB in bf16 (94.5 GiB per GPU at TP=8) plus 0.3 GiB activations; "
                                "each GPU has 80.0 GiB × 0.92")


def test_neuron_pads_heads_instead_of_refusing(catalog: Catalog) -> None:
    # NxDI pads query heads to a multiple of TP, so 70B's 64 heads run at TP=24 on inf2.48xlarge.
    row = _one(_on(catalog, "meta-llama/Llama-3.1-70B-Instruct", "inf2.48xlarge", dtypes=["bf16"]),
               "inf2.48xlarge", 24, "bf16")
    assert row.fits, row.reason


def test_kv_capacity_counts_each_sequence_once_when_kv_heads_are_replicated(catalog: Catalog) -> None:
    # TP=24 over 8 KV heads: each head lives on 3 NeuronCores, so each core holds 1/8 of every sequence's KV
    row = _one(_on(catalog, LLAMA_8B, "inf2.48xlarge", engines=["nxdi"]), "inf2.48xlarge", 24, "bf16")
    assert row.kv_cache_gib == pytest.approx(row.kv_cache_gib_per_device * 8, abs=0.01)
    assert row.max_sequences == int(row.kv_cache_gib // KV_GIB_PER_8K_SEQUENCE) == 122


def test_mla_cache_is_replicated_on_every_rank(catalog: Catalog) -> None:
    results = _on(catalog, "deepseek-ai/DeepSeek-V3", "p5en.48xlarge", dtypes=["fp8"], context_tokens=4096)
    row = _one(results, "p5en.48xlarge", 8, "fp8")
    assert row.fits
    per_sequence_gib = 61 * 576 * 2 * 4096 / GIB
    assert row.max_sequences == int(row.kv_cache_gib_per_device // per_sequence_gib)
    assert row.kv_cache_gib == row.kv_cache_gib_per_device


def test_more_context_means_proportionally_fewer_sequences(catalog: Catalog) -> None:
    short = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", context_tokens=2048), "g6e.xlarge", 1, "bf16")
    long = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", context_tokens=8192), "g6e.xlarge", 1, "bf16")
    assert short.kv_cache_gib == long.kv_cache_gib
    # floor(room / 2k) and floor(room / 8k) for the same room
    assert 4 * long.max_sequences <= short.max_sequences < 4 * (long.max_sequences + 1)


def test_default_context_is_8k_or_the_model_maximum(catalog: Catalog) -> None:
    assert {r.context_tokens for r in _on(catalog, LLAMA_8B, "g6e.xlarge")} == {8192}
    phi3 = _on(catalog, "microsoft/Phi-3-mini-4k-instruct", "g6e.xlarge")
    assert {r.context_tokens for r in phi3} == {4096}


def test_fp8_kv_cache_doubles_sequences_where_the_engine_offers_it(catalog: Catalog) -> None:
    auto = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["fp8"]), "g6e.xlarge", 1, "fp8")
    fp8 = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["fp8"], kv_cache_dtype="fp8"), "g6e.xlarge", 1, "fp8")
    assert fp8.kv_cache_dtype == "fp8"
    assert 2 * auto.max_sequences <= fp8.max_sequences <= 2 * auto.max_sequences + 1
    tgi = _on(catalog, LLAMA_8B, "g6e.xlarge", engines=["tgi"], kv_cache_dtype="fp8")
    assert tgi and all(not r.fits and "KV cache" in r.reason for r in tgi)


def test_the_kv_cache_dtype_is_case_insensitive_like_the_weight_dtype(catalog: Catalog) -> None:
    lower = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["BF16"], kv_cache_dtype="fp8"), "g6e.xlarge", 1, "bf16")
    upper = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["BF16"], kv_cache_dtype="FP8"), "g6e.xlarge", 1, "bf16")
    assert upper.fits and upper.max_sequences == lower.max_sequences


def test_replicas_per_instance_and_price_per_replica(catalog: Catalog) -> None:
    results = _on(catalog, LLAMA_8B, "g5.12xlarge", dtypes=["bf16"])
    assert {r.tp: r.replicas_per_instance for r in results} == {1: 4, 2: 2, 4: 1}
    row = _one(results, "g5.12xlarge", 1, "bf16")
    assert row.usd_per_hour == catalog.usd_per_hour("g5.12xlarge") == 5.672
    assert row.usd_per_replica_hour == pytest.approx(5.672 / 4)


def test_prices_come_from_the_region_asked(catalog: Catalog) -> None:
    row = _one(_on(catalog, LLAMA_8B, "g5.xlarge", dtypes=["bf16"], region="us-west-2"), "g5.xlarge", 1, "bf16")
    assert row.usd_per_hour == catalog.usd_per_hour("g5.xlarge", "us-west-2")
    unpriced = _one(_on(catalog, LLAMA_8B, "trn2.48xlarge", dtypes=["bf16"], tps=[1]), "trn2.48xlarge", 1, "bf16")
    assert unpriced.fits and unpriced.usd_per_hour is None and unpriced.usd_per_replica_hour is None


# ---- refusals -----------------------------------------------------------------------------------------------


def test_fp8_is_refused_before_ada_and_offered_on_hopper(catalog: Catalog) -> None:
    results = _fit(catalog, LLAMA_8B, dtypes=["fp8"])
    a10g = _one(results, "g5.xlarge", 1, "fp8")
    assert not a10g.fits and a10g.refused_by == "engine"
    assert "compute capability ≥ 8.9" in a10g.reason and "8.6" in a10g.reason
    a100 = _one(results, "p4d.24xlarge", 1, "fp8")
    assert not a100.fits and "8.0" in a100.reason
    assert _one(results, "p5.48xlarge", 1, "fp8").fits
    assert _one(results, "g6e.xlarge", 1, "fp8").fits


def test_neuron_refuses_an_architecture_nxdi_does_not_list(catalog: Catalog) -> None:
    results = _on(catalog, "google/gemma-2-27b-it", "inf2.48xlarge")
    assert results and all(not r.fits for r in results)
    assert all(r.reason.startswith("Neuron: architecture Gemma2ForCausalLM not supported") for r in results)
    assert all(r.reason_source for r in results)


def test_int4_is_not_offered_on_neuron(catalog: Catalog) -> None:
    results = _on(catalog, LLAMA_8B, "inf2.xlarge", dtypes=["int4"])
    assert results and all("does not run int4" in r.reason for r in results)


def test_tp_that_does_not_divide_heads_is_refused_on_gpu(catalog: Catalog) -> None:
    # Qwen2.5-7B has 28 attention heads: vLLM needs heads % tp == 0, and 28 % 8 != 0.
    row = _one(_fit(catalog, "Qwen/Qwen2.5-7B-Instruct", tps=[8], dtypes=["bf16"]), "g6e.48xlarge", 8, "bf16")
    assert not row.fits and row.reason == "TP=8 does not divide 28 attention heads"


def test_vllm_refuses_tp_that_does_not_divide_kv_heads(catalog: Catalog, tmp_path: Path) -> None:
    # Phi-4's shapes: 40 query heads, 10 KV heads. TP=4 divides 40 but not 10.
    config = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 5120,
              "intermediate_size": 17920, "num_hidden_layers": 40, "num_attention_heads": 40,
              "num_key_value_heads": 10, "vocab_size": 100352, "max_position_embeddings": 16384}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    (row,) = _on(catalog, str(path), "g6e.12xlarge", tps=[4], dtypes=["bf16"])
    assert not row.fits and row.reason == "TP=4 does not divide 10 KV heads"


def test_neuron_tp_degree_outside_the_platform_list_is_refused(catalog: Catalog) -> None:
    row = _one(_fit(catalog, LLAMA_8B, tps=[16], dtypes=["bf16"]), "inf2.48xlarge", 16, "bf16")
    assert not row.fits and "accepts TP degrees 1, 2, 4, 8, 24" in row.reason


def test_without_tps_only_the_degrees_the_instance_can_offer_are_tried(catalog: Catalog) -> None:
    assert sorted({r.tp for r in _on(catalog, LLAMA_8B, "inf2.xlarge")}) == [1, 2]  # 2 NeuronCores
    assert sorted({r.tp for r in _on(catalog, LLAMA_8B, "inf2.48xlarge")}) == [1, 2, 4, 8, 24]


def test_context_beyond_the_model_maximum_is_refused(catalog: Catalog) -> None:
    row = _one(_on(catalog, "meta-llama/Llama-2-7b-hf", "g6e.xlarge", context_tokens=8192), "g6e.xlarge", 1, "bf16")
    assert not row.fits and row.reason == "context 8192 exceeds the model's maximum 4096 tokens"


def test_kv_cache_too_small_for_one_sequence_is_a_refusal(catalog: Catalog) -> None:
    row = _one(_on(catalog, LLAMA_8B, "g5.xlarge", context_tokens=131072), "g5.xlarge", 1, "bf16")
    assert not row.fits and row.refused_by == "memory"
    assert row.reason.startswith("KV-cache room 5.37 GiB per GPU holds no 131072-token sequence (needs 16.00 GiB)")


def test_refused_shapes_offer_no_replicas_or_kv(catalog: Catalog) -> None:
    row = _one(_on(catalog, LLAMA_8B, "inf2.xlarge"), "inf2.xlarge", 1, "fp8")
    assert not row.fits
    assert row.replicas_per_instance == 0 and row.max_sequences == 0
    assert row.kv_cache_gib == 0 and row.kv_cache_gib_per_device == 0 and row.usd_per_replica_hour is None
    assert row.reason_source  # even "does not run" carries its source


def test_every_refusal_has_a_reason_and_every_fit_has_sequences(catalog: Catalog) -> None:
    for model in ("meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-120b"):
        for r in _fit(catalog, model):
            assert (r.fits and r.reason == "" and r.max_sequences >= 1) or (not r.fits and r.reason), r


def test_default_engines_are_vllm_on_gpus_and_nxd_inference_on_neuron(catalog: Catalog) -> None:
    assert {(r.accelerator, r.engine) for r in _fit(catalog, LLAMA_8B, dtypes=["bf16"])
            if r.instance in ("p5.48xlarge", "inf2.xlarge")} == {("h100-sxm", "vllm"), ("inferentia2", "nxdi")}


@pytest.mark.parametrize(
    "kwargs",
    [{"context_tokens": 0}, {"memory_utilization": 1.5}, {"memory_utilization": 0.0}, {"tps": [0]},
     {"kv_cache_dtype": "fp4"}],
)
def test_bad_arguments_are_user_errors(catalog: Catalog, kwargs: dict[str, Any]) -> None:
    with pytest.raises(FleetwiseError):
        _fit(catalog, LLAMA_8B, **kwargs)


@pytest.mark.parametrize("kwargs", [{"engines": ["sglang"]}, {"dtypes": ["fp4"]}])
def test_unknown_engines_and_dtypes_suggest_known_ones(catalog: Catalog, kwargs: dict[str, Any]) -> None:
    with pytest.raises(UnknownNameError):
        _fit(catalog, LLAMA_8B, **kwargs)


def test_a_lower_memory_utilization_leaves_less_kv_room(catalog: Catalog) -> None:
    default = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["bf16"]), "g6e.xlarge", 1, "bf16")
    held_back = _one(_on(catalog, LLAMA_8B, "g6e.xlarge", dtypes=["bf16"], memory_utilization=0.8),
                     "g6e.xlarge", 1, "bf16")
    assert default.kv_cache_gib_per_device - held_back.kv_cache_gib_per_device == pytest.approx(
        44.703 * (0.92 - 0.8), abs=0.002)


# ---- the pieces ---------------------------------------------------------------------------------------------


def test_weights_split_across_ranks_except_replicated_kv_projections() -> None:
    model = load_model(LLAMA_8B)
    bf16 = get_dtype("bf16")
    total = model.weight_bytes(bf16)
    kv_projection = 32 * 4096 * 8 * (128 + 128) * 2  # layers x hidden x KV heads x (K + V dims) x 2 bytes
    assert weight_bytes_per_device(model, bf16, 4, 1 / 4) == pytest.approx(total / 4)
    # at TP=16 each rank holds a whole KV head (1/8 of the KV projections), not 1/16 of them
    assert weight_bytes_per_device(model, bf16, 16, 1 / 8) == pytest.approx(
        (total - kv_projection) / 16 + kv_projection / 8)


def test_activation_estimate_is_batched_tokens_through_the_widest_layer_plus_logits() -> None:
    model = load_model(LLAMA_8B)
    # vLLM: 2048 batched tokens x (4 x 4096 + 2 x 14336) x 2 bytes, plus 128 sequences x 128256 fp32 logits
    assert activation_bytes_per_device(model, get_engine("vllm"), 1) == 2048 * (4 * 4096 + 2 * 14336) * 2 + \
        128 * 128256 * 4
    # TGI publishes no limits: vLLM's 2048 tokens and a single sequence's logits
    assert activation_bytes_per_device(model, get_engine("tgi"), 1) == 2048 * (4 * 4096 + 2 * 14336) * 2 + \
        128256 * 4


def test_fit_one_matches_the_row_fit_model_gives(catalog: Catalog) -> None:
    model = load_model(LLAMA_8B)
    instance = catalog.instance("g6e.xlarge")
    single = fit_one(model, catalog, instance, get_engine("vllm"), 1, get_dtype("bf16"), 8192)
    assert single == _one(_on(catalog, LLAMA_8B, "g6e.xlarge"), "g6e.xlarge", 1, "bf16")
    assert single.to_dict()["max_sequences"] == single.max_sequences == 25
