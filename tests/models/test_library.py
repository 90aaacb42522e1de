"""Tests for fleetwise.models.library: the bundled model library and resolving names and paths to models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetwise.errors import DataFileError, UnknownNameError
from fleetwise.models import bundled_models, find_bundled, load_model
from fleetwise.models.library import _parse_count

CONFIGS = Path(__file__).parents[2] / "src/fleetwise/models/data/configs"
REQUIRED = [
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf", "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mixtral-8x7B-Instruct-v0.1", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-32B", "Qwen/Qwen3-30B-A3B",
    "deepseek-ai/DeepSeek-V3", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "google/gemma-2-27b-it",
    "openai/gpt-oss-120b",
]
SMALL_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
                "tie_word_embeddings": True}


def test_library_bundles_every_required_model_once_per_config_file() -> None:
    models = bundled_models()
    assert set(REQUIRED) <= set(models)
    assert len(models) >= 25  # the library's documented floor
    assert len(models) == len(list(CONFIGS.glob("*.json")))  # no two files claim the same id


def test_every_bundled_model_names_its_source_and_date() -> None:
    undated = [hf_id for hf_id, e in bundled_models().items()
               if not (e.source and e.as_of and e.architecture.source == e.source)]
    assert undated == []


def test_published_counts_read_with_their_unit_suffix() -> None:
    published = bundled_models()["deepseek-ai/DeepSeek-V3"].published
    assert (published.total, published.active) == (671e9, 37e9)
    assert not published.includes_vision_encoder
    assert bundled_models()["google/gemma-3-27b-it"].published.includes_vision_encoder


@pytest.mark.parametrize(("text", "count"), [("8.03B", 8.03e9), ("417M", 417e6), ("1.2T", 1.2e12),
                                           ("7,000,000,000", 7e9), (8.03e9, 8.03e9), (None, None)])
def test_published_counts_accept_unit_suffixes_commas_and_plain_numbers(text: object, count: float | None) -> None:
    assert _parse_count(text) == (None if count is None else pytest.approx(count))


@pytest.mark.parametrize("name", ["meta-llama/Llama-3.1-8B-Instruct", "META-LLAMA/llama-3.1-8b-instruct",
                                  "Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"])
def test_bundled_models_are_found_by_id_case_or_short_name(name: str) -> None:
    entry = find_bundled(name)
    assert entry is not None and entry.hf_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert load_model(name).name == "meta-llama/Llama-3.1-8B-Instruct"


def test_a_name_that_is_not_bundled_is_not_found() -> None:
    assert find_bundled("Llama-3.1-8B") is None


def test_unknown_model_suggests_closest_bundled_names() -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        load_model("meta-llama/Llama-3.1-8B-Instrct")
    assert excinfo.value.suggestions[0] == "meta-llama/Llama-3.1-8B-Instruct"


def test_user_config_file_and_directory_load_the_same_model(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(SMALL_CONFIG))
    from_dir = load_model(str(folder))
    from_file = load_model(str(folder / "config.json"))
    assert from_dir.name == from_file.name == "my-model"
    assert from_dir.parameters() == from_file.parameters()
    assert from_dir.parameters().lm_head == 0  # tied embeddings: no separate LM head
    assert from_file.source == str(folder / "config.json")


def test_a_config_file_is_named_after_its_stem_or_the_name_it_records(tmp_path: Path) -> None:
    path = tmp_path / "tiny-llama.json"
    path.write_text(json.dumps(SMALL_CONFIG))
    assert load_model(str(path)).name == "tiny-llama"
    path.write_text(json.dumps({**SMALL_CONFIG, "_name_or_path": "acme/tiny-llama-1b"}))
    assert load_model(str(path)).name == "acme/tiny-llama-1b"


def test_a_missing_json_path_is_a_file_error_not_an_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        load_model(str(tmp_path / "typo.json"))


def test_malformed_user_config_names_the_file_and_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32}))
    with pytest.raises(DataFileError) as excinfo:
        load_model(str(path))
    assert excinfo.value.field == "num_attention_heads"
    assert str(path) in str(excinfo.value)
