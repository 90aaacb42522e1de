"""Tests for fleetwise.engines.profile: the bundled engine profiles and what each says it runs."""

from __future__ import annotations

import pytest

from fleetwise.engines import DEFAULT_ENGINE_FOR_KIND, engine_profiles, get_engine
from fleetwise.errors import UnknownNameError


def test_the_five_engines_are_bundled_with_their_hardware_kind() -> None:
    assert {e.id: e.hardware_kind for e in engine_profiles().values()} == {
        "vllm": "gpu", "trtllm": "gpu", "tgi": "gpu", "nxdi": "neuron", "tnx": "neuron"}


def test_each_hardware_kind_defaults_to_a_bundled_engine_of_that_kind() -> None:
    assert {kind: get_engine(e).hardware_kind for kind, e in DEFAULT_ENGINE_FOR_KIND.items()} == {
        "gpu": "gpu", "neuron": "neuron"}


def test_engine_lookup_ignores_case_and_suggests_close_ids() -> None:
    assert get_engine(" vLLM ").name == "vLLM"
    with pytest.raises(UnknownNameError) as excinfo:
        get_engine("vlm")
    assert excinfo.value.suggestions[0] == "vllm"


@pytest.mark.parametrize(("engine", "tokens"), [("vllm", 16), ("trtllm", 32), ("tgi", 1), ("nxdi", None)])
def test_kv_block_size_per_engine_with_contiguous_kv_on_nxd_inference(engine: str, tokens: int | None) -> None:
    block = get_engine(engine).kv_block_tokens
    assert block.value == tokens
    assert block.source if tokens is not None else block.note


def test_vllm_sizes_memory_from_the_total_and_tgi_from_what_is_free_after_load() -> None:
    vllm, tgi = get_engine("vllm"), get_engine("tgi")
    assert (vllm.memory_utilization.value, vllm.memory_utilization_applies_to) == (0.92, "total")
    assert (tgi.memory_utilization.value, tgi.memory_utilization_applies_to) == (0.9, "free_after_load")


def test_scheduler_limits_are_the_engines_defaults_or_none_where_not_found() -> None:
    vllm = get_engine("vllm")
    assert (vllm.sequence_limit, vllm.batched_token_limit) == (128, 2048)
    assert (get_engine("nxdi").sequence_limit, get_engine("nxdi").batched_token_limit) == (None, None)


def test_engines_match_models_by_architecture_class_or_by_model_type() -> None:
    vllm, tgi, nxdi = get_engine("vllm"), get_engine("tgi"), get_engine("nxdi")
    assert vllm.supports_model("Gemma2ForCausalLM", "gemma2")
    assert not nxdi.supports_model("Gemma2ForCausalLM", "gemma2")
    # TGI dispatches on config.json's model_type: it lists no architecture classes
    assert tgi.supports_model("AnyNameForCausalLM", "llama")
    assert not tgi.supports_model("Qwen3ForCausalLM", "qwen3")


def test_engines_run_on_the_chip_generations_they_list() -> None:
    assert get_engine("tnx").runs_on("neuroncore-v2") and not get_engine("tnx").runs_on("neuroncore-v3")
    assert get_engine("nxdi").runs_on("neuroncore-v3")
    assert get_engine("vllm").runs_on("ampere")  # no list: every chip of its kind


def test_tp_degrees_depend_on_the_chip_with_a_default_for_the_rest() -> None:
    nxdi = get_engine("nxdi").tensor_parallel
    assert nxdi.degrees_for("inferentia2") == [1, 2, 4, 8, 24]
    assert nxdi.degrees_for("trainium2") == [1, 2, 4, 8, 16, 32, 64]
    assert nxdi.degrees_for("h100-sxm") == []  # no default: a Neuron engine offers nothing on a GPU
    assert get_engine("vllm").tensor_parallel.degrees_for("h100-sxm") == [1, 2, 4, 8]


def test_every_dtype_and_kv_cache_rule_names_its_source() -> None:
    unsourced = [(e.id, dtype) for e in engine_profiles().values()
                 for dtype, rule in [*e.dtypes.items(), *e.kv_cache_dtypes.items()] if not rule.source.strip()]
    assert unsourced == []
