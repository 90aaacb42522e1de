"""Tests for fleetwise.models.hf_config: reading Hugging Face config.json files into architectures."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.models import bundled_models, parse_hf_config
from fleetwise.models.hf_config import load_config_file

CONFIGS = Path(__file__).parents[2] / "src/fleetwise/models/data/configs"


def _llama_config(**overrides: object) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
        "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096}
    config.update(overrides)
    return config


def _bundled_config(filename: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / filename).read_text())
    return config


# ---- reading the file ---------------------------------------------------------------------------------------


def test_a_model_directory_reads_its_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_llama_config()))
    config, read = load_config_file(tmp_path)
    assert read == str(tmp_path / "config.json")
    assert config["hidden_size"] == 512


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON (line 1, column 2)"), ("[1, 2]", "expected a JSON object")],
)
def test_a_broken_config_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(DataFileError, match=re.escape(message)):
        load_config_file(path)


def test_a_directory_without_a_config_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"expected a Hugging Face config\.json or a model directory") as excinfo:
        load_config_file(tmp_path)
    assert excinfo.value.path == str(tmp_path / "config.json")


# ---- required fields and their checks -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["num_attention_heads", "vocab_size", "hidden_size", "max_position_embeddings"])
def test_a_missing_required_field_is_named_with_the_file(field: str) -> None:
    config = _llama_config()
    del config[field]
    with pytest.raises(DataFileError) as excinfo:
        parse_hf_config(config, "toy", "/models/toy/config.json")
    assert excinfo.value.field == field
    assert excinfo.value.path == "/models/toy/config.json"


def test_a_config_without_model_type_is_refused() -> None:
    config = _llama_config()
    del config["model_type"]
    with pytest.raises(DataFileError) as excinfo:
        parse_hf_config(config, "toy")
    assert excinfo.value.field == "model_type"


def test_an_unsupported_model_type_lists_the_supported_ones() -> None:
    with pytest.raises(FleetwiseError, match=r"'bert' is not supported yet; supported: .*gpt_oss.*llama"):
        parse_hf_config({"model_type": "bert"}, "toy")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"hidden_size": 512.0}, "hidden_size", "expected a non-negative integer"),
        ({"vocab_size": True}, "vocab_size", "expected a non-negative integer"),
        ({"num_hidden_layers": 0}, "num_hidden_layers", "must be at least 1"),
        ({"tie_word_embeddings": "yes"}, "tie_word_embeddings", "expected true/false"),
        ({"layer_types": "full_attention"}, "layer_types", "expected a list"),
        ({"layer_types": ["full_attention"] * 3}, "layer_types", "has 3 entries, expected 4"),
    ],
)
def test_a_field_of_the_wrong_type_or_size_is_named(overrides: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message) as excinfo:
        parse_hf_config(_llama_config(**overrides), "toy")
    assert excinfo.value.field == field


def test_kv_heads_that_do_not_divide_the_heads_are_refused() -> None:
    with pytest.raises(DataFileError, match="num_attention_heads 6 is not a multiple of num_key_value_heads 4"):
        parse_hf_config(_llama_config(num_attention_heads=6, num_key_value_heads=4), "toy")


# ---- defaults -----------------------------------------------------------------------------------------------


def test_null_keys_take_transformers_defaults() -> None:
    model = parse_hf_config(_llama_config(num_key_value_heads=None), "toy")
    assert model.attention.num_kv_heads == 8 and model.attention.kind == "mha"


@pytest.mark.parametrize(("kv_heads", "kind"), [(8, "mha"), (2, "gqa"), (1, "mqa")])
def test_attention_kind_follows_the_kv_head_count(kv_heads: int, kind: str) -> None:
    assert parse_hf_config(_llama_config(num_key_value_heads=kv_heads), "toy").attention.kind == kind


def test_head_dim_defaults_to_hidden_over_heads_unless_given() -> None:
    assert parse_hf_config(_llama_config(), "toy").attention.head_dim == 64
    assert parse_hf_config(_llama_config(head_dim=128), "toy").attention.head_dim == 128


def test_missing_architectures_fall_back_to_the_model_type_class() -> None:
    config = _llama_config()
    del config["architectures"]
    assert parse_hf_config(config, "toy").architecture == "LlamaForCausalLM"


def test_tied_embeddings_default_per_config_class() -> None:
    gemma = _llama_config(model_type="gemma", architectures=["GemmaForCausalLM"])
    assert parse_hf_config(gemma, "gemma-like").tie_word_embeddings  # GemmaConfig ties by default
    assert not parse_hf_config(_llama_config(), "llama-like").tie_word_embeddings
    assert parse_hf_config(_llama_config(tie_word_embeddings=True), "llama-like").tie_word_embeddings


@pytest.mark.parametrize(
    ("overrides", "native"),
    [
        ({}, "bf16"),
        ({"torch_dtype": "float16"}, "fp16"),
        ({"dtype": "float32"}, "fp32"),
        ({"quantization_config": {"quant_method": "AWQ", "bits": 4}}, "int4"),
        ({"quantization_config": {"quant_method": "fp8"}}, "fp8"),
    ],
)
def test_native_dtype_is_the_quantisation_method_else_torch_dtype(overrides: dict[str, object], native: str) -> None:
    assert parse_hf_config(_llama_config(**overrides), "toy").native_dtype == native


# ---- windows and experts per model_type ---------------------------------------------------------------------


def test_layer_types_without_a_window_mean_full_attention() -> None:
    config = {**_llama_config(model_type="qwen3", architectures=["Qwen3ForCausalLM"]), "head_dim": 64,
              "layer_types": ["full_attention"] * 4, "sliding_window": None, "use_sliding_window": False}
    assert parse_hf_config(config, "qwen3-like").layer_windows == (None, None, None, None)


def test_layer_types_place_the_sliding_window_on_the_sliding_layers() -> None:
    config = _llama_config(model_type="mistral", sliding_window=256,
                           layer_types=["sliding_attention", "full_attention"] * 2)
    assert parse_hf_config(config, "toy").layer_windows == (256, None, 256, None)


def test_llama_ignores_a_sliding_window_key_but_mistral_applies_it_to_every_layer() -> None:
    assert parse_hf_config(_llama_config(sliding_window=256), "toy").layer_windows == (None,) * 4
    mistral = _llama_config(model_type="mistral", sliding_window=256)
    assert parse_hf_config(mistral, "toy").layer_windows == (256,) * 4


def test_qwen_slides_only_when_enabled_and_only_from_max_window_layers_on() -> None:
    qwen = _llama_config(model_type="qwen2", sliding_window=128, max_window_layers=2)
    assert parse_hf_config(qwen, "toy").layer_windows == (None,) * 4
    enabled = parse_hf_config({**qwen, "use_sliding_window": True}, "toy")
    assert enabled.layer_windows == (None, None, 128, 128)
    assert enabled.attention.qkv_bias  # Qwen2 biases q, k and v by default


def test_gemma2_alternates_local_and_global_layers_starting_local() -> None:
    config = _llama_config(model_type="gemma2", sliding_window=4096)
    model = parse_hf_config(config, "toy")
    assert model.layer_windows == (4096, None, 4096, None)
    assert model.norms_per_layer == 4


def test_gemma3_keeps_every_sixth_layer_global() -> None:
    config = _llama_config(model_type="gemma3_text", num_hidden_layers=12, sliding_window=1024)
    windows = parse_hf_config(config, "toy").layer_windows
    assert [i for i, w in enumerate(windows) if w is None] == [5, 11]


def test_bundled_gemma2_27b_has_half_its_layers_windowed() -> None:
    model = bundled_models()["google/gemma-2-27b-it"].architecture
    assert model.sliding_window_layers == model.num_layers // 2 == 23


def test_gpt_oss_alternates_128_token_windows() -> None:
    model = bundled_models()["openai/gpt-oss-120b"].architecture
    assert model.layer_windows[:4] == (128, None, 128, None)
    assert model.attention.sinks and model.moe is not None and model.moe.expert_bias


def test_qwen_moe_layers_skip_mlp_only_layers_and_follow_the_sparse_step() -> None:
    config = _llama_config(model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64,
                           decoder_sparse_step=1, mlp_only_layers=[0], shared_expert_intermediate_size=128)
    model = parse_hf_config(config, "toy")
    assert model.moe_layers == (False, True, True, True)
    assert model.moe is not None and model.moe.num_shared_experts == 1 and model.moe.shared_expert_gate


def test_deepseek_uses_latent_attention_and_dense_first_layers() -> None:
    model = bundled_models()["deepseek-ai/DeepSeek-V3"].architecture
    assert model.attention.kind == "mla"
    assert (model.attention.kv_lora_rank, model.attention.qk_rope_head_dim) == (512, 64)
    assert model.moe_layers[:4] == (False, False, False, True)  # first_k_dense_replace = 3
    assert sum(model.moe_layers) == 58


def test_multimodal_wrappers_read_the_language_model_from_text_config() -> None:
    config = {"architectures": ["Wrapper"], "model_type": "gemma3",
              "text_config": {**_llama_config(model_type="gemma3_text", sliding_window=512), "hidden_size": None}}
    with pytest.raises(DataFileError) as excinfo:
        parse_hf_config(config, "toy")
    assert excinfo.value.field == "text_config.hidden_size"
    config["text_config"]["hidden_size"] = 512
    model = parse_hf_config(config, "toy")
    assert model.model_type == "gemma3" and model.architecture == "Wrapper"
    assert model.note == "language model only; the vision encoder is not counted"


def test_llama4_empty_no_rope_layers_means_the_default_pattern() -> None:
    entry = bundled_models()["meta-llama/Llama-4-Scout-17B-16E-Instruct"]
    raw = _bundled_config("meta-llama--Llama-4-Scout-17B-16E-Instruct.json")
    raw["text_config"]["no_rope_layers"] = []
    model = parse_hf_config(raw, "scout")
    assert model.layer_windows == entry.architecture.layer_windows
    assert model.sliding_window_layers == 36  # 3 of every 4 layers use chunked local attention
