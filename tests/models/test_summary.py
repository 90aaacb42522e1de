"""Tests for fleetwise.models.summary: a model's figures as plain data for `fleetwise models`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetwise.errors import FleetwiseError
from fleetwise.models import bundled_models, load_model
from fleetwise.models.summary import describe_model, library_rows, model_summary


def test_summary_reports_weights_per_dtype_in_gib() -> None:
    summary = model_summary(load_model("meta-llama/Llama-2-7b-hf"))
    total = summary["parameters"]["total"]
    assert total == 6_738_415_616
    assert summary["weights_gib"]["fp16"] == round(total * 2 / 2**30, 3) == 12.551
    assert summary["weights_gib"]["fp8"] == summary["weights_gib"]["int8"] < summary["weights_gib"]["fp16"]


def test_summary_context_is_capped_at_the_model_maximum() -> None:
    summary = model_summary(load_model("meta-llama/Llama-2-7b-hf"), context_tokens=8192)
    assert summary["context_tokens"] == 4096
    # 4096 tokens x 32 layers x K and V x 32 heads x 128 dims x 2 bytes = 2 GiB
    assert summary["kv_cache_gib_per_sequence"] == 2.0


def test_summary_describes_moe_and_latent_attention() -> None:
    summary = model_summary(load_model("deepseek-ai/DeepSeek-V3"), context_tokens=1024)
    assert summary["moe"] == {"experts": 256, "experts_per_token": 8, "shared_experts": 1, "moe_layers": 58}
    assert summary["attention"]["kind"] == "mla" and summary["attention"]["kv_lora_rank"] == 512
    assert model_summary(load_model("meta-llama/Llama-3.1-8B-Instruct"))["moe"] is None


def test_describe_adds_the_publishers_counts_for_a_bundled_model() -> None:
    described = describe_model("Llama-2-7b-hf")
    assert described["model"] == "meta-llama/Llama-2-7b-hf"
    assert described["published"]["total"] == 7e9
    assert described["published"]["source"]


def test_describe_a_user_config_has_no_published_counts(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
                                "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
                                "max_position_embeddings": 512}))
    described = describe_model(str(path))
    assert "published" not in described
    assert described["source"] == str(path) and described["context_tokens"] == 512


def test_describe_refuses_a_context_below_one_token() -> None:
    with pytest.raises(FleetwiseError, match="--context must be at least 1"):
        describe_model("Llama-2-7b-hf", context_tokens=0)


def test_library_rows_list_every_bundled_model_with_computed_and_published_counts() -> None:
    rows = {row["hf_id"]: row for row in library_rows()}
    assert set(rows) == set(bundled_models())
    mixtral = rows["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert mixtral["total_params"] == load_model("mistralai/Mixtral-8x7B-Instruct-v0.1").parameters().total
    assert mixtral["active_params"] < mixtral["total_params"]
    assert mixtral["published_total"] == 46.7e9
