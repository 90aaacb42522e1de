"""`fleetwise predict`: one replica's latency, throughput and cost, exactly as predict() answers, and its refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.predict import PredictRequest, predict

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
BASE = ("predict", "-m", LLAMA, "-i", "512", "-o", "128")


@pytest.mark.parametrize(
    ("options", "request_fields"),
    [
        (("-H", "inf2.48xlarge", "--tp", "8", "--batch", "4"),
         {"hardware": "inf2.48xlarge", "tp": 8, "mode": "batch", "load": 4.0}),
        (("-H", "p5.48xlarge", "--concurrency", "16", "--dtype", "fp8", "--engine", "trtllm"),
         {"hardware": "p5.48xlarge", "mode": "concurrency", "load": 16.0, "dtype": "fp8", "engine": "trtllm"}),
        (("-H", "g6e.12xlarge", "--tp", "2", "--rate", "3", "--max-batch", "32", "--kv-dtype", "fp8", "--region",
          "us-west-2"),
         {"hardware": "g6e.12xlarge", "tp": 2, "mode": "rate", "load": 3.0, "max_seqs": 32, "kv_cache_dtype": "fp8",
          "region": "us-west-2"}),
        (("-H", "h100-sxm", "--batch", "1"), {"hardware": "h100-sxm", "mode": "batch", "load": 1.0}),
    ],
    ids=["neuron-batch", "gpu-concurrency-fp8-trtllm", "gpu-rate-options", "chip"],
)
def test_json_is_predicts_answer(run: Run, catalog: Catalog, calibration: CalibrationTable,
                                 as_printed: Callable[[Any], Any], options: tuple[str, ...],
                                 request_fields: dict[str, Any]) -> None:
    payload = run(*BASE, *options, "--json").json()
    fields = {"tp": 1, "dtype": "bf16", "engine": None, **request_fields}
    expected = predict(PredictRequest(model=load_model(LLAMA), input_tokens=512, output_tokens=128, **fields),
                       catalog, calibration)
    assert payload == as_printed(expected.to_json())
    assert payload["mode"] == fields["mode"] and payload["load"] == fields["load"]


def test_json_has_the_documented_figures(run: Run) -> None:
    payload = run(*BASE, "-H", "inf2.48xlarge", "--tp", "8", "--batch", "4", "--json").json()
    for key in ("ttft_ms", "tpot_ms"):
        assert payload[key]["p50"] > 0 and payload[key]["mean"] > 0
    assert payload["e2e_s"]["p50"] > 0
    assert payload["output_tokens_per_s"] > 0 and payload["requests_per_s"] > 0
    assert payload["usd_per_million_output_tokens"] > 0
    for phase in ("prefill", "decode"):
        assert payload["breakdown"][phase]["bound"] in ("compute", "memory", "communication", "overhead")


def test_text_output_states_the_question_and_what_bounds_each_phase(run: Run, catalog: Catalog,
                                                                    calibration: CalibrationTable) -> None:
    out = run(*BASE, "-H", "inf2.48xlarge", "--tp", "8", "--batch", "4").ok().out
    expected = predict(PredictRequest(model=load_model(LLAMA), hardware="inf2.48xlarge", tp=8, dtype="bf16",
                                      engine=None, mode="batch", load=4, input_tokens=512, output_tokens=128),
                       catalog, calibration)
    assert out.startswith(f"{LLAMA} on inf2.48xlarge")
    assert f"TTFT p50 {expected.ttft_ms.p50:,.1f} ms" in out
    assert f"prefill: {expected.breakdown.prefill.step_ms:.3f} ms/step, {expected.breakdown.prefill.bound}-bound" in out
    assert f"decode: {expected.breakdown.decode.step_ms:.3f} ms/step, {expected.breakdown.decode.bound}-bound" in out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ((), ("exactly one of",)),
        (("--batch", "2", "--rate", "1"), ("exactly one of",)),
        (("--batch", "2", "--tp", "3"), ("TP=3",)),
        (("--rate", "nan"), ("--rate", "positive number")),
        (("--batch", "0"), ("--batch", "positive")),
        (("--concurrency", "1000000000"), ("limit 100,000",)),
        (("--batch", "1", "--max-batch", "0"), ("--max-batch",)),
        (("--batch", "1", "--dtype", "fp4"), ("unknown dtype 'fp4'",)),
        (("--batch", "1", "--engine", "foo"), ("unknown engine 'foo'",)),
        (("--batch", "1", "--kv-dtype", "int3"), ("int3",)),
        (("--batch", "1", "--region", "mars-1"), ("mars-1",)),
        (("--batch", "100000",), ("does not fit the KV cache",)),
        (("--batch", "1", "-i", "200000"), ("exceeds the model's maximum",)),
        (("--batch", "1", "-i", "0"), ("--input-tokens",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_argument_mistakes_exit_2_with_one_line(run: Run, extra: tuple[str, ...], expected: tuple[str, ...]) -> None:
    run("predict", "-m", LLAMA, "-H", "g6e.12xlarge", "-i", "100", "-o", "10", *extra).user_error(*expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-m", LLAMA, "-H", "p5.99xlarge"), ("p5.99xlarge", "closest: p5.48xlarge")),
        (("-m", "no-such-model", "-H", "p5.48xlarge"), ("no-such-model",)),
        (("-m", LLAMA, "-H", "inf2.48xlarge", "--dtype", "int4"), ("int4",)),
        (("-m", LLAMA, "-H", "g5.xlarge"), ("not found in the catalog",)),
    ],
    ids=["unknown-hardware", "unknown-model", "neuron-int4", "missing-catalog-figure"],
)
def test_hardware_and_model_mistakes_exit_2_with_one_line(run: Run, args: tuple[str, ...],
                                                          expected: tuple[str, ...]) -> None:
    run("predict", *args, "--batch", "1", "-i", "10", "-o", "10").user_error(*expected)


def test_calibration_that_is_a_folder_or_missing_is_one_line(run: Run, tmp_path: Path) -> None:
    args = ("predict", "-m", LLAMA, "-H", "p5.48xlarge", "--batch", "1", "-i", "10", "-o", "10")
    run(*args, "--calibration", tmp_path).user_error(str(tmp_path), "is a directory")
    run(*args, "--calibration", tmp_path / "cal.yaml").user_error(str(tmp_path / "cal.yaml"), "no such file")
    not_a_table = tmp_path / "other.yaml"
    not_a_table.write_text("hello: 1\n")
    run(*args, "--calibration", not_a_table).user_error(str(not_a_table), "base")
