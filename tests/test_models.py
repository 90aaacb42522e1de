"""Model library: parameter counts match what publishers state, and KV/weight arithmetic follows the shapes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fleetwise.dtypes import DTYPES, get_dtype
from fleetwise.errors import DataFileError, FleetwiseError, UnknownNameError
from fleetwise.models import bundled_models, load_model, parse_hf_config

REQUIRED = [
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf", "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mixtral-8x7B-Instruct-v0.1", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-32B", "Qwen/Qwen3-30B-A3B",
    "deepseek-ai/DeepSeek-V3", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "google/gemma-2-27b-it",
    "openai/gpt-oss-120b",
]


def test_library_bundles_at_least_25_models_including_the_required_ones() -> None:
    models = bundled_models()
    assert len(models) >= 25
    assert set(REQUIRED) <= set(models)
    for entry in models.values():
        assert entry.source and entry.as_of


# Published totals quoted in the project's issue #2 from the model cards and reports.
@pytest.mark.parametrize(
    ("hf_id", "total", "active"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 8.03e9, None),
        ("meta-llama/Llama-3.1-70B-Instruct", 70.6e9, None),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7e9, 12.9e9),
        ("deepseek-ai/DeepSeek-V3", 671e9, 37e9),
    ],
)
def test_parameter_counts_match_published_totals_within_1_percent(hf_id: str, total: float,
                                                                  active: float | None) -> None:
    counts = load_model(hf_id).parameters()
    assert counts.total == pytest.approx(total, rel=0.01)
    if active is not None:
        # "37B activated" is given to two digits: it covers 36.5-37.5 B. DeepSeek counts it without the
        # input embedding; Mixtral's 12.9 B includes it.
        measured = counts.active_excluding_embedding if hf_id.startswith("deepseek") else counts.active
        assert measured == pytest.approx(active, rel=0.01, abs=0.5e9)


def _tolerance(published: float) -> float:
    """A published figure is good to half a unit in its last digit (8.2B: ±0.05B); allow 1% on top of that."""
    text = f"{published / 1e9:.6g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10**-decimals * 1e9 + 0.01 * published


@pytest.mark.parametrize("hf_id", sorted(bundled_models()))
def test_every_bundled_model_matches_its_published_counts(hf_id: str) -> None:
    entry = bundled_models()[hf_id]
    published = entry.published
    assert published.total is not None and published.source, f"{hf_id}: no published total with a source"
    if published.disputed:
        pytest.skip(f"publisher's figure contradicts its own config: {published.disputed}")
    counts = entry.architecture.parameters()
    tolerance = _tolerance(published.total)
    gap = published.total - counts.total
    if published.includes_vision_encoder:
        # fleetwise counts the language model only; the published total adds a vision tower (Gemma 3: 417M)
        assert -tolerance <= gap <= 0.02 * published.total + tolerance
    else:
        assert abs(gap) <= tolerance
    if published.active is not None:
        measured = counts.active if published.active_counts_input_embedding else counts.active_excluding_embedding
        assert abs(measured - published.active) <= _tolerance(published.active)
    if published.non_embedding is not None:
        non_embedding = counts.total - counts.embedding - counts.lm_head
        assert abs(non_embedding - published.non_embedding) <= _tolerance(published.non_embedding)


def test_gqa_kv_cache_per_token_follows_the_shapes() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    # 32 layers x (K and V) x 8 KV heads x 128 dims x 2 bytes
    assert model.kv_cache_bytes_per_token() == 32 * 2 * 8 * 128 * 2
    assert model.attention.kind == "gqa"
    assert model.kv_cache_bytes_per_sequence(1000) == 1000 * model.kv_cache_bytes_per_token()


def test_mha_model_caches_every_head() -> None:
    model = load_model("meta-llama/Llama-2-7b-hf")
    assert model.attention.kind == "mha"
    assert model.kv_cache_bytes_per_token() == 32 * 2 * 32 * 128 * 2


def test_mla_caches_only_the_compressed_latent() -> None:
    model = load_model("deepseek-ai/DeepSeek-V3")
    assert model.attention.kind == "mla"
    # kv_lora_rank 512 + decoupled RoPE key 64, per layer, 2 bytes; far below 128 heads x 2 x 128 dims
    assert model.kv_cache_bytes_per_token() == 61 * (512 + 64) * 2
    assert model.kv_cache_bytes_per_token() < 61 * 128 * 2 * 128 * 2 / 50


def test_sliding_window_layers_stop_growing_past_their_window() -> None:
    model = load_model("google/gemma-2-27b-it")
    window = next(w for w in model.layer_windows if w is not None)
    full_layers = model.num_layers - model.sliding_window_layers
    per_layer = model.kv_cache_bytes_per_token_per_layer()
    short, long = model.kv_cache_bytes_per_sequence(window), model.kv_cache_bytes_per_sequence(2 * window)
    # doubling past the window adds only the full-attention layers' share
    assert long - short == pytest.approx(window * full_layers * per_layer)
    assert model.sliding_window_layers == model.num_layers // 2


def test_gpt_oss_alternates_128_token_windows_and_counts_like_openai() -> None:
    model = load_model("openai/gpt-oss-120b")
    assert model.layer_windows[0] == 128 and model.layer_windows[1] is None
    counts = model.parameters()
    assert counts.total == pytest.approx(116.83e9, rel=0.001)
    # OpenAI's 5.13 B active leaves out the input embedding lookup
    assert counts.active_excluding_embedding == pytest.approx(5.13e9, rel=0.005)


def test_quantised_weights_keep_embeddings_in_16_bit() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    counts = model.parameters()
    bf16 = model.weight_bytes(DTYPES["bf16"])
    int8 = model.weight_bytes(DTYPES["int8"])
    assert bf16 == counts.total * 2
    assert int8 == counts.quantizable * 1 + (counts.total - counts.quantizable) * 2
    assert model.weight_bytes(DTYPES["int4"]) < int8 < bf16


def test_moe_forward_flops_use_active_not_total_parameters() -> None:
    moe = load_model("Qwen/Qwen3-30B-A3B")
    counts = moe.parameters()
    assert moe.forward_flops_per_token(0) == pytest.approx(2 * counts.active_excluding_embedding)
    assert moe.forward_flops_per_token(0) < 0.2 * 2 * counts.total
    # attention adds work that grows with context
    assert moe.forward_flops_per_token(4096) > moe.forward_flops_per_token(0)


def test_lookup_by_short_name_and_case() -> None:
    assert load_model("llama-3.1-8b-instruct").name == "meta-llama/Llama-3.1-8B-Instruct"


def test_unknown_model_suggests_closest_bundled_names() -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        load_model("meta-llama/Llama-3.1-8B-Instrct")
    assert excinfo.value.suggestions[0] == "meta-llama/Llama-3.1-8B-Instruct"


def test_user_config_file_and_directory_load(tmp_path: Path) -> None:
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
              "tie_word_embeddings": True}
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    from_dir = load_model(str(folder))
    from_file = load_model(str(folder / "config.json"))
    assert from_dir.name == "my-model"
    assert from_dir.parameters().total == from_file.parameters().total
    # tied embeddings: no separate LM head
    assert from_dir.parameters().lm_head == 0


def test_malformed_config_names_the_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32}))
    with pytest.raises(DataFileError) as excinfo:
        load_model(str(path))
    assert excinfo.value.field == "num_attention_heads" or excinfo.value.field == "vocab_size"
    assert str(path) in str(excinfo.value)


def test_invalid_json_and_unsupported_type_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(DataFileError, match="not valid JSON"):
        load_model(str(bad))
    bad.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FleetwiseError, match="not supported yet"):
        load_model(str(bad))


def test_dtype_aliases() -> None:
    assert get_dtype("AWQ").id == "int4"
    assert get_dtype("bfloat16").id == "bf16"
    assert math.isclose(get_dtype("int4").bytes_per_param, 0.5 + 2.5 / 128)


def test_parse_rejects_kv_heads_that_do_not_divide_heads() -> None:
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 6, "num_key_value_heads": 4, "vocab_size": 10, "max_position_embeddings": 16}
    with pytest.raises(DataFileError, match="num_key_value_heads"):
        parse_hf_config(config, "toy")


def test_tied_embedding_models_still_pay_for_the_output_projection() -> None:
    model = load_model("meta-llama/Llama-3.2-1B-Instruct")
    assert model.tie_word_embeddings
    # every stored parameter is used once per token: the shared table serves as the LM head
    assert model.forward_flops_per_token(0) == pytest.approx(2 * model.parameters().total)


def _llama_config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
        "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000,
        "max_position_embeddings": 4096}
    config.update(overrides)
    return config


def test_null_keys_take_transformers_defaults() -> None:
    model = parse_hf_config(_llama_config(num_key_value_heads=None), "toy")
    assert model.attention.num_kv_heads == 8 and model.attention.kind == "mha"


def test_missing_architectures_fall_back_to_the_model_type_class() -> None:
    config = _llama_config()
    del config["architectures"]
    assert parse_hf_config(config, "toy").architecture == "LlamaForCausalLM"


def test_layer_types_without_a_window_mean_full_attention() -> None:
    config = {**_llama_config(model_type="qwen3", architectures=["Qwen3ForCausalLM"]), "head_dim": 64,
              "layer_types": ["full_attention"] * 4, "sliding_window": None, "use_sliding_window": False}
    model = parse_hf_config(config, "qwen3-like")
    assert model.layer_windows == (None, None, None, None)


def test_llama4_empty_no_rope_layers_means_the_default_pattern() -> None:
    entry = bundled_models()["meta-llama/Llama-4-Scout-17B-16E-Instruct"]
    raw = json.loads((Path(__file__).parents[1] / "src/fleetwise/models/data/configs"
                      / "meta-llama--Llama-4-Scout-17B-16E-Instruct.json").read_text())
    raw["text_config"]["no_rope_layers"] = []
    model = parse_hf_config(raw, "scout")
    assert model.layer_windows == entry.architecture.layer_windows
    assert model.sliding_window_layers == 36  # 3 of every 4 layers use chunked local attention


def test_engines_without_windowed_kv_allocate_every_layer_fully() -> None:
    model = load_model("openai/gpt-oss-20b")
    windowed = model.kv_cache_bytes_per_sequence(8192)
    full = model.kv_cache_bytes_per_sequence(8192, windowed=False)
    assert full == model.kv_cache_bytes_per_token() * 8192
    assert windowed < 0.6 * full  # half the layers keep 128 tokens
