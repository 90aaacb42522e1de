"""Tests for fleetwise.models.architecture: parameter counts, weight bytes, KV cache and FLOPs from the shapes."""

from __future__ import annotations

import pytest

from fleetwise.dtypes import DTYPES
from fleetwise.models import ModelArchitecture, bundled_models, load_model, parse_hf_config

# A toy Llama: hidden 512, 4 layers, 8 heads of 64 dims, 2 KV heads, MLP width 1024, vocabulary 1000.
H, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 512, 4, 8, 2, 64, 1024, 1000


def _toy(**overrides: object) -> ModelArchitecture:
    config: dict[str, object] = {
        "model_type": "llama", "hidden_size": H, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB,
        "max_position_embeddings": 4096}
    config.update(overrides)
    return parse_hf_config(config, "toy")


# ---- parameters ---------------------------------------------------------------------------------------------


def test_dense_parameter_counts_follow_the_shapes_component_by_component() -> None:
    counts = _toy().parameters()
    assert counts.embedding == counts.lm_head == VOCAB * H
    # q and o: heads x head_dim each way; k and v: KV heads x head_dim each
    assert counts.attention == LAYERS * (H * (HEADS + 2 * KV_HEADS) * HEAD_DIM + HEADS * HEAD_DIM * H)
    assert counts.dense_mlp == LAYERS * 3 * H * FFN  # gate, up, down
    assert counts.norms == LAYERS * 2 * H + H  # two per layer and the final norm
    assert counts.total == 9_941_504
    assert counts.active == counts.total  # a dense model uses every parameter


def test_tied_embeddings_store_no_separate_lm_head_but_still_multiply_through_it() -> None:
    untied, tied = _toy(), _toy(tie_word_embeddings=True)
    assert tied.parameters().lm_head == 0
    assert untied.parameters().total - tied.parameters().total == VOCAB * H
    assert tied.matmul_parameters_per_token() == untied.matmul_parameters_per_token()


def test_moe_counts_every_expert_stored_but_only_the_routed_ones_active() -> None:
    moe = _toy(model_type="mixtral", num_local_experts=4, num_experts_per_tok=2)
    counts = moe.parameters()
    expert = 3 * H * FFN
    assert counts.routed_experts == LAYERS * 4 * expert
    assert counts.routed_experts_active == LAYERS * 2 * expert
    assert counts.routers == LAYERS * H * 4
    assert counts.total - counts.active == LAYERS * 2 * expert
    assert counts.dense_mlp == 0 and moe.is_moe and not _toy().is_moe


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


def test_gpt_oss_counts_like_openai() -> None:
    counts = load_model("openai/gpt-oss-120b").parameters()
    assert counts.total == pytest.approx(116.83e9, rel=0.001)
    # OpenAI's 5.13 B active leaves out the input embedding lookup
    assert counts.active_excluding_embedding == pytest.approx(5.13e9, rel=0.005)


# ---- weights ------------------------------------------------------------------------------------------------


def test_quantised_weights_keep_embeddings_in_16_bit() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    counts = model.parameters()
    bf16 = model.weight_bytes(DTYPES["bf16"])
    int8 = model.weight_bytes(DTYPES["int8"])
    assert bf16 == counts.total * 2
    assert int8 == counts.quantizable * 1 + (counts.total - counts.quantizable) * 2
    assert model.weight_bytes(DTYPES["int4"]) == pytest.approx(
        counts.quantizable * (0.5 + 2.5 / 128) + (counts.total - counts.quantizable) * 2)
    assert counts.quantizable == counts.attention + counts.dense_mlp


# ---- KV cache -----------------------------------------------------------------------------------------------


def test_gqa_kv_cache_per_token_follows_the_shapes() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    # 32 layers x (K and V) x 8 KV heads x 128 dims x 2 bytes
    assert model.kv_cache_bytes_per_token() == 32 * 2 * 8 * 128 * 2
    assert model.attention.kind == "gqa"
    assert model.kv_cache_bytes_per_sequence(1000) == 1000 * model.kv_cache_bytes_per_token()


def test_an_fp8_kv_cache_takes_half_the_bytes() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    assert model.kv_cache_bytes_per_sequence(1000, kv_bytes=1.0) == model.kv_cache_bytes_per_sequence(1000) / 2


def test_mha_model_caches_every_head() -> None:
    model = load_model("meta-llama/Llama-2-7b-hf")
    assert model.attention.kind == "mha"
    assert model.kv_cache_bytes_per_token() == 32 * 2 * 32 * 128 * 2


def test_mla_caches_only_the_compressed_latent() -> None:
    model = load_model("deepseek-ai/DeepSeek-V3")
    assert model.attention.kind == "mla"
    # kv_lora_rank 512 + decoupled RoPE key 64, per layer, 2 bytes; far below 128 heads x 2 x 128 dims
    assert model.kv_cache_bytes_per_token() == 61 * (512 + 64) * 2


def test_sliding_window_layers_stop_growing_past_their_window() -> None:
    model = load_model("google/gemma-2-27b-it")
    window = next(w for w in model.layer_windows if w is not None)
    full_layers = model.num_layers - model.sliding_window_layers
    per_layer = model.kv_cache_bytes_per_token_per_layer()
    short, long = model.kv_cache_bytes_per_sequence(window), model.kv_cache_bytes_per_sequence(2 * window)
    # doubling past the window adds only the full-attention layers' share
    assert long - short == pytest.approx(window * full_layers * per_layer)
    # below the window every layer still keeps every token
    assert model.kv_cache_bytes_per_sequence(100) == 100 * model.kv_cache_bytes_per_token()


def test_engines_without_windowed_kv_allocate_every_layer_fully() -> None:
    model = load_model("openai/gpt-oss-20b")
    windowed = model.kv_cache_bytes_per_sequence(8192)
    full = model.kv_cache_bytes_per_sequence(8192, windowed=False)
    assert full == model.kv_cache_bytes_per_token() * 8192
    # half the layers keep 128 tokens
    assert windowed == model.kv_cache_bytes_per_token_per_layer() * 12 * (8192 + 128)


# ---- compute ------------------------------------------------------------------------------------------------


def test_moe_forward_flops_use_active_not_total_parameters() -> None:
    moe = load_model("Qwen/Qwen3-30B-A3B")
    counts = moe.parameters()
    assert moe.forward_flops_per_token(0) == pytest.approx(2 * counts.active_excluding_embedding)
    assert moe.forward_flops_per_token(0) < 0.2 * 2 * counts.total


def test_attention_flops_grow_linearly_with_the_context_attended() -> None:
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    # QK^T and PV: 2 FLOPs x 32 heads x (128 + 128) dims x 32 layers per earlier token
    assert model.forward_flops_per_token(4096) - model.forward_flops_per_token(0) == 2 * 32 * 256 * 32 * 4096


def test_tied_embedding_models_still_pay_for_the_output_projection() -> None:
    model = load_model("meta-llama/Llama-3.2-1B-Instruct")
    assert model.tie_word_embeddings
    # every stored parameter is used once per token: the shared table serves as the LM head
    assert model.forward_flops_per_token(0) == pytest.approx(2 * model.parameters().total)
