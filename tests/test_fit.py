"""Memory fit: known answers for where models fit, and a human reason for every refusal."""

from __future__ import annotations

import pytest

from fleetwise.catalog import load_catalog
from fleetwise.errors import FleetwiseError
from fleetwise.fit import FitResult, fit_model
from fleetwise.models import load_model


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(include_user_prices=False)


def _fit(catalog, model: str, **kwargs) -> list[FitResult]:  # type: ignore[no-untyped-def]
    return fit_model(load_model(model), catalog, **kwargs)


def _one(results: list[FitResult], instance: str, tp: int, dtype: str) -> FitResult:
    (row,) = [r for r in results if r.instance == instance and r.tp == tp and r.dtype == dtype]
    return row


def test_8b_bf16_fits_one_a10g_with_room_for_a_few_8k_sequences(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct"), "g5.xlarge", 1, "bf16")
    assert row.fits and row.reason == ""
    assert row.weights_gib_per_device == pytest.approx(8.03e9 * 2 / 2**30, rel=0.01)
    # 22.35 GiB x 0.92 - 15 GiB weights - activations leaves ~5 GiB: 5 sequences of 1 GiB (8192 x 128 KiB)
    assert 3 <= row.max_sequences <= 6


def test_a_model_bigger_than_every_single_accelerator_only_fits_with_tp(catalog) -> None:  # type: ignore[no-untyped-def]
    results = _fit(catalog, "meta-llama/Llama-3.1-405B-Instruct", dtypes=["bf16"])
    fitting = [r for r in results if r.fits]
    assert fitting, "405B bf16 should fit somewhere (8 x H200, trn2)"
    assert all(r.tp >= 8 for r in fitting)
    assert {r.instance for r in fitting} <= {"p5e.48xlarge", "p5en.48xlarge", "trn2.48xlarge"}
    too_small = _one(results, "p5.48xlarge", 8, "bf16")
    assert not too_small.fits and too_small.reason.startswith("needs 756.")


def test_fp8_is_refused_before_ada_and_offered_on_hopper(catalog) -> None:  # type: ignore[no-untyped-def]
    results = _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", dtypes=["fp8"])
    a10g = _one(results, "g5.xlarge", 1, "fp8")
    assert not a10g.fits and "compute capability ≥ 8.9" in a10g.reason and "8.6" in a10g.reason
    a100 = _one(results, "p4d.24xlarge", 1, "fp8")
    assert not a100.fits and "8.0" in a100.reason
    assert _one(results, "p5.48xlarge", 1, "fp8").fits
    assert _one(results, "g6e.xlarge", 1, "fp8").fits


def test_neuron_refuses_an_architecture_nxdi_does_not_list(catalog) -> None:  # type: ignore[no-untyped-def]
    results = _fit(catalog, "google/gemma-2-27b-it", instances=[catalog.instance("inf2.48xlarge")])
    assert results and all(not r.fits for r in results)
    assert all(r.reason.startswith("Neuron: architecture Gemma2ForCausalLM not supported") for r in results)
    assert all(r.reason_source for r in results)


def test_int4_is_not_offered_on_neuron(catalog) -> None:  # type: ignore[no-untyped-def]
    results = _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", dtypes=["int4"],
                   instances=[catalog.instance("inf2.xlarge")])
    assert results and all("does not run int4" in r.reason for r in results)


def test_tp_that_does_not_divide_heads_is_refused_on_gpu(catalog) -> None:  # type: ignore[no-untyped-def]
    # Qwen2.5-7B has 28 attention heads: vLLM needs heads % tp == 0, and 28 % 8 != 0.
    row = _one(_fit(catalog, "Qwen/Qwen2.5-7B-Instruct", tps=[8], dtypes=["bf16"]), "g6e.48xlarge", 8, "bf16")
    assert not row.fits and row.reason == "TP=8 does not divide 28 attention heads"


def test_neuron_pads_heads_instead_of_refusing(catalog) -> None:  # type: ignore[no-untyped-def]
    # NxDI pads query heads to a multiple of TP, so 70B's 64 heads run at TP=24 on inf2.48xlarge.
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-70B-Instruct", dtypes=["bf16"]), "inf2.48xlarge", 24, "bf16")
    assert row.fits, row.reason


def test_neuron_tp_degree_outside_the_platform_list_is_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", tps=[16], dtypes=["bf16"]),
               "inf2.48xlarge", 16, "bf16")
    assert not row.fits and "accepts TP degrees 1, 2, 4, 8, 24" in row.reason


def test_more_context_means_fewer_sequences(catalog) -> None:  # type: ignore[no-untyped-def]
    short = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", context_tokens=2048), "g6e.xlarge", 1, "bf16")
    long = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", context_tokens=8192), "g6e.xlarge", 1, "bf16")
    assert short.max_sequences >= 4 * long.max_sequences - 3
    assert short.kv_cache_gib == long.kv_cache_gib


def test_context_beyond_the_model_maximum_is_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-2-7b-hf", context_tokens=8192), "g6e.xlarge", 1, "bf16")
    assert not row.fits and "exceeds the model's maximum 4096" in row.reason


def test_kv_cache_too_small_for_one_sequence_is_a_refusal(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", context_tokens=131072), "g5.xlarge", 1, "bf16")
    assert not row.fits and row.reason.startswith("KV-cache room")


def test_mla_cache_is_replicated_on_every_rank(catalog) -> None:  # type: ignore[no-untyped-def]
    results = _fit(catalog, "deepseek-ai/DeepSeek-V3", dtypes=["fp8"], context_tokens=4096)
    row = _one(results, "p5en.48xlarge", 8, "fp8")
    assert row.fits
    per_sequence_gib = 61 * 576 * 2 * 4096 / 2**30
    assert row.max_sequences == int(row.kv_cache_gib_per_device // per_sequence_gib)


def test_replicas_per_instance_and_price_per_replica(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct"), "g5.12xlarge", 1, "bf16")
    assert row.replicas_per_instance == 4
    assert row.usd_per_replica_hour == pytest.approx(catalog.usd_per_hour("g5.12xlarge") / 4)


def test_every_refusal_has_a_reason_and_every_fit_has_sequences(catalog) -> None:  # type: ignore[no-untyped-def]
    for model in ("meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-120b"):
        for r in _fit(catalog, model):
            assert (r.fits and r.reason == "" and r.max_sequences >= 1) or (not r.fits and r.reason)


def test_bad_arguments_are_user_errors(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FleetwiseError):
        _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", context_tokens=0)
    with pytest.raises(FleetwiseError):
        _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", memory_utilization=1.5)
    with pytest.raises(FleetwiseError):
        _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", engines=["sglang"])


def test_vllm_refuses_tp_that_does_not_divide_kv_heads(catalog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    # Phi-4's shapes: 40 query heads, 10 KV heads. TP=4 divides 40 but not 10.
    config = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 5120,
              "intermediate_size": 17920, "num_hidden_layers": 40, "num_attention_heads": 40,
              "num_key_value_heads": 10, "vocab_size": 100352, "max_position_embeddings": 16384}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    results = fit_model(load_model(str(path)), catalog, instances=[catalog.instance("g6e.12xlarge")], tps=[4],
                        dtypes=["bf16"])
    assert not results[0].fits and results[0].reason == "TP=4 does not divide 10 KV heads"


def test_kv_capacity_counts_each_sequence_once_when_kv_heads_are_replicated(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", engines=["nxdi"]), "inf2.48xlarge", 24, "bf16")
    per_sequence_gib = 8192 * 128 * 1024 / 2**30  # 1 GiB of KV per 8k-token sequence
    assert row.max_sequences == pytest.approx(row.kv_cache_gib / per_sequence_gib, abs=1.0)


def test_refused_shapes_offer_no_replicas_or_kv(catalog) -> None:  # type: ignore[no-untyped-def]
    row = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct"), "inf2.xlarge", 1, "fp8")
    assert not row.fits
    assert row.replicas_per_instance == 0 and row.kv_cache_gib == 0 and row.kv_cache_gib_per_device == 0
    assert row.reason_source  # even "does not run" carries its source


def test_unknown_region_is_an_error(catalog) -> None:  # type: ignore[no-untyped-def]
    from fleetwise.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        catalog.check_region("mars-1")


def test_fp8_kv_cache_doubles_sequences_where_the_engine_offers_it(catalog) -> None:  # type: ignore[no-untyped-def]
    auto = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", dtypes=["fp8"]), "g6e.xlarge", 1, "fp8")
    fp8 = _one(_fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", dtypes=["fp8"], kv_cache_dtype="fp8"),
               "g6e.xlarge", 1, "fp8")
    assert fp8.max_sequences == pytest.approx(2 * auto.max_sequences, abs=1)
    tgi = fit_model(load_model("meta-llama/Llama-3.1-8B-Instruct"), catalog, engines=["tgi"],
                    instances=[catalog.instance("g6e.xlarge")], kv_cache_dtype="fp8")
    assert all("KV cache" in r.reason for r in tgi)
    with pytest.raises(FleetwiseError):
        _fit(catalog, "meta-llama/Llama-3.1-8B-Instruct", kv_cache_dtype="fp4")
