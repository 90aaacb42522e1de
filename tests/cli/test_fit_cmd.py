"""`fleetwise fit MODEL`: the memory-fit table and JSON agree with fit_model, and bad input is one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.fit import FitResult, fit_model
from fleetwise.models import load_model

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def _library(catalog: Catalog, model: str, families: list[str], instances: list[str], **kwargs: Any) -> list[FitResult]:
    return fit_model(load_model(model), catalog, instances=catalog.select(families, instances), **kwargs)


@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        ((), {}),
        (("--context", "32768", "--engine", "vllm", "--tp", "1", "--dtype", "bf16"),
         {"context_tokens": 32768, "engines": ["vllm"], "tps": [1], "dtypes": ["bf16"]}),
        (("--kv-dtype", "fp8", "--memory-utilization", "0.8", "--region", "us-west-2"),
         {"kv_cache_dtype": "fp8", "memory_utilization": 0.8, "region": "us-west-2"}),
    ],
    ids=["defaults", "context-engine-tp-dtype", "kv-dtype-utilization-region"],
)
def test_fit_json_is_fit_models_answer_with_the_documented_keys(
        run: Run, catalog: Catalog, as_printed: Callable[[Any], Any], options: tuple[str, ...],
        kwargs: dict[str, Any]) -> None:
    payload = run("fit", LLAMA_8B, "--instance", "g5.xlarge", "--instance", "inf2.xlarge", *options, "--json").json()
    expected = _library(catalog, LLAMA_8B, [], ["g5.xlarge", "inf2.xlarge"], **kwargs)
    assert payload["model"] == LLAMA_8B
    assert payload["region"] == kwargs.get("region", "us-east-1")
    assert payload["context_tokens"] == expected[0].context_tokens
    assert payload["results"] == as_printed([r.to_dict() for r in expected])
    rows = payload["results"]
    for key in ("instance", "engine", "tp", "dtype", "fits", "reason", "weights_gib_per_device", "kv_cache_gib",
                "max_sequences", "replicas_per_instance", "usd_per_replica_hour"):
        assert all(key in r for r in rows), key


def test_fit_json_has_both_fitting_shapes_and_reasons_for_the_others(run: Run) -> None:
    rows = run("fit", LLAMA_8B, "--instance", "g5.xlarge", "--instance", "inf2.xlarge", "--json").json()["results"]
    assert {r["instance"] for r in rows} == {"g5.xlarge", "inf2.xlarge"}
    assert any(r["fits"] for r in rows)
    assert all(r["reason"] for r in rows if not r["fits"]) and any(not r["fits"] for r in rows)


def test_fp8_kv_cache_holds_more_sequences_than_16_bit(run: Run) -> None:
    auto = run("fit", LLAMA_8B, "--instance", "g6e.xlarge", "--engine", "vllm", "--json").json()["results"]
    fp8 = run("fit", LLAMA_8B, "--instance", "g6e.xlarge", "--engine", "vllm", "--kv-dtype", "fp8",
              "--json").json()["results"]
    pairs = [(a, b) for a, b in zip(auto, fp8, strict=True) if a["fits"]]
    assert pairs and all(b["max_sequences"] > a["max_sequences"] for a, b in pairs)


def test_table_shows_the_smallest_fitting_tp_per_engine_and_dtype_or_the_reason_nothing_fits(
        run: Run, catalog: Catalog) -> None:
    shown = run("fit", LLAMA_70B, "--family", "p5", "--family", "inf2", "--dtype", "bf16").ok()
    expected = _library(catalog, LLAMA_70B, ["p5", "inf2"], [], dtypes=["bf16"])
    rows = shown.table_rows()  # instance, engine, TP, dtype, replicas, weights, KV, max seqs, $/replica-h, verdict
    for instance in {r.instance for r in expected}:
        mine = [r for r in expected if r.instance == instance]
        table = [row for row in rows if row[0] == instance]
        fitting = [r for r in mine if r.fits]
        if fitting:
            smallest = {(r.engine, r.dtype): min(x.tp for x in fitting if (x.engine, x.dtype) == (r.engine, r.dtype))
                        for r in fitting}
            assert {(row[1], row[3]): int(row[2]) for row in table} == smallest, instance
            assert all(row[-1] == "fits" for row in table)
        else:
            assert len(table) == 1, instance
            assert table[0][-1].removeprefix("no: ") in {r.reason for r in mine}, table[0]
    assert any(row[-1] == "fits" for row in rows) and any(row[-1].startswith("no: ") for row in rows)
    assert f"{sum(r.fits for r in expected)} of {len(expected)} shapes fit" in shown.out


def test_all_shows_every_shape(run: Run, catalog: Catalog) -> None:
    rows = run("fit", LLAMA_8B, "--instance", "g6e.12xlarge", "--all").ok().table_rows()
    expected = _library(catalog, LLAMA_8B, [], ["g6e.12xlarge"])
    assert len(expected) > len({(r.engine, r.dtype) for r in expected})  # --all must show more than the default
    assert sorted((row[1], int(row[2]), row[3]) for row in rows) == sorted((r.engine, r.tp, r.dtype) for r in expected)


@pytest.mark.parametrize("where", ["directory", "config.json"])
def test_a_config_file_or_model_directory_fits_like_the_bundled_id(run: Run, tmp_path: Path, where: str) -> None:
    bundled = resources.files("fleetwise.models") / "data" / "configs" / f"{LLAMA_8B.replace('/', '--')}.json"
    (tmp_path / "config.json").write_text(bundled.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path if where == "directory" else tmp_path / "config.json"
    by_id = run("fit", LLAMA_8B, "--instance", "g6e.xlarge", "--json").json()["results"]
    by_file = run("fit", target, "--instance", "g6e.xlarge", "--json").json()["results"]
    keys = ("engine", "tp", "dtype", "fits", "weights_gib_per_device", "max_sequences")
    assert [[r[k] for k in keys] for r in by_file] == [[r[k] for k in keys] for r in by_id]


def test_malformed_config_names_the_file_and_the_missing_field(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                                  "num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}))
    run("fit", config).user_error(str(config), "intermediate_size")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("meta-llama/Llama-3.1-8B-Instrukt",), ("unknown model", f"closest: {LLAMA_8B}")),
        ((LLAMA_8B, "--instance", "p5.24xlarge"), ("p5.24xlarge", "closest: p5.48xlarge")),
        ((LLAMA_8B, "--family", "p9"), ("unknown instance family 'p9'",)),
        ((LLAMA_8B, "--dtype", "fp4"), ("unknown dtype 'fp4'",)),
        ((LLAMA_8B, "--engine", "foo"), ("unknown engine 'foo'",)),
        ((LLAMA_8B, "--kv-dtype", "int3"), ("int3",)),
        ((LLAMA_8B, "--region", "mars-1"), ("unknown region", "mars-1")),
        ((LLAMA_8B, "--context", "0"), ("--context", "0")),
        ((LLAMA_8B, "--memory-utilization", "2"), ("memory utilization", "2.0")),
        ((LLAMA_8B, "--tp", "0"), ("TP degrees", "[0]")),
        ((LLAMA_8B, "--engine", "nxdi", "--family", "g6e"), ("nothing to check", "nxdi")),
        (("/no/such/dir",), ("/no/such/dir",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_user_mistakes_exit_2_with_one_line_naming_them(run: Run, args: tuple[str, ...],
                                                         expected: tuple[str, ...]) -> None:
    run("fit", *args).user_error(*expected)


def test_bad_catalog_file_is_named_with_entry_and_field(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("instances:\n  - instance_type: g5.xlarge\n    vcpus: {value: many, source: me}\n")
    run("fit", LLAMA_8B, "--catalog", bad).user_error(str(bad), "g5.xlarge", "vcpus")
