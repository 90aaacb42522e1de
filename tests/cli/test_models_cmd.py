"""`fleetwise models` and `models show`: the bundled library and one model's figures, as the library computes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.dtypes import DTYPES
from fleetwise.models import bundled_models
from fleetwise.models.summary import describe_model, library_rows

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_list_json_is_the_library_with_one_row_per_bundled_model(run: Run, as_printed: Callable[[Any], Any]) -> None:
    models = run("models", "--json").json()["models"]
    assert models == as_printed(library_rows())
    assert [m["hf_id"] for m in models] == list(bundled_models())


def test_computed_parameter_count_agrees_with_the_publisher(run: Run) -> None:
    llama = next(m for m in run("models", "--json").json()["models"] if m["hf_id"] == LLAMA)
    assert llama["published_total"]
    assert llama["total_params"] == pytest.approx(llama["published_total"], rel=0.01)


def test_list_table_names_every_bundled_model(run: Run) -> None:
    shown = run("models").ok()
    assert [row[0] for row in shown.table_rows()] == list(bundled_models())
    assert f"{len(bundled_models())} bundled models" in shown.out


@pytest.mark.parametrize(("model", "context"), [(LLAMA, 8192), ("deepseek-ai/DeepSeek-V3", 32768),
                                                ("Llama-3.1-8B-Instruct", 1000)])
def test_show_json_is_the_libraries_description(run: Run, as_printed: Callable[[Any], Any], model: str,
                                                context: int) -> None:
    payload = run("models", "show", model, "--context", str(context), "--json").json()
    assert payload == as_printed(describe_model(model, context))
    assert payload["context_tokens"] == context


def test_show_reports_mla_attention_and_smaller_fp8_weights_for_deepseek(run: Run) -> None:
    summary = run("models", "show", "deepseek-ai/DeepSeek-V3", "--json").json()
    assert summary["attention"]["kind"] == "mla"
    assert summary["weights_gib"]["fp8"] < summary["weights_gib"]["bf16"]
    assert summary["moe"]["experts"] > summary["moe"]["experts_per_token"]


@pytest.mark.parametrize("model", [LLAMA, "Qwen/Qwen3-30B-A3B"])
def test_show_table_prints_parameters_attention_weights_and_kv(run: Run, model: str) -> None:
    out = run("models", "show", model, "--context", "4096").ok().out
    summary = describe_model(model, 4096)
    assert out.startswith(model)
    assert f"attention: {summary['attention']['kind'].upper()}" in out
    assert ("MoE:" in out) == (summary["moe"] is not None)
    weights = next(line for line in out.splitlines() if line.startswith("weights:"))
    assert all(dtype in weights for dtype in DTYPES)
    assert f"per {summary['context_tokens']}-token sequence" in out


def test_json_on_the_group_applies_to_show(run: Run) -> None:
    assert run("models", "--json", "show", "Qwen/Qwen3-8B").json()["model"] == "Qwen/Qwen3-8B"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "no/such-model"), ("unknown model", "no/such-model")),
        (("show", "meta-llama/Llama-3.1-8B-Instrukt"), ("closest: meta-llama/Llama-3.1-8B-Instruct",)),
        (("show", LLAMA, "--context", "-5"), ("--context", "-5")),
    ],
    ids=["unknown", "misspelt", "negative-context"],
)
def test_user_mistakes_exit_2_with_one_line_naming_them(run: Run, args: tuple[str, ...],
                                                         expected: tuple[str, ...]) -> None:
    run("models", *args).user_error(*expected)


def test_a_file_that_is_not_a_config_is_named(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("model: llama\n")
    run("models", "show", bad).user_error(str(bad), "JSON")


def test_a_folder_without_config_is_named(run: Run, tmp_path: Path) -> None:
    run("models", "show", tmp_path).user_error(str(tmp_path / "config.json"), "no such file")
