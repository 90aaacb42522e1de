"""Measurement CSVs: usable rows parsed, excluded rows kept with their reason, malformed rows refused by line."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest

from fleetwise.errors import DataFileError
from fleetwise.perf.measurements import METRICS, REQUIRED, read_measurements

HEADER = ("source,hardware,tp,engine,model,dtype,batch,input_tokens,output_tokens,metric,value,"
          "kv_dtype,excluded,assumptions")
ROW = "me/bench:run1,p5.48xlarge,2,vllm,meta-llama/Llama-3.1-8B-Instruct,bf16,4,512,128,tpot_ms_p50,7.5,,,"


def _write(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "measured.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_the_bundled_file_splits_every_row_into_usable_or_excluded() -> None:
    text = (resources.files("fleetwise.perf") / "data" / "measurements.csv").read_text(encoding="utf-8")
    raw = list(csv.DictReader(io.StringIO(text)))
    rows, excluded = read_measurements()
    assert len(excluded) == sum(1 for r in raw if r["excluded"].strip())
    assert len(rows) + len(excluded) == len(raw)
    assert all(x.reason for x in excluded)
    assert all(r.metric in METRICS and r.value > 0 for r in rows)
    for r in rows:  # line numbers point at the file's lines (the header is line 1)
        assert (raw[r.line - 2]["metric"], float(raw[r.line - 2]["value"])) == (r.metric, r.value)


def test_a_users_row_is_parsed_with_its_line_and_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, ROW, ROW.replace(",,,", ",fp8,,FP8 KV assumed").replace("tpot_ms_p50", "ttft_ms_p50"))
    rows, excluded = read_measurements(path)
    assert excluded == []
    first, second = rows
    assert (first.line, first.source, first.hardware, first.tp, first.engine, first.dtype) == (
        2, "me/bench:run1", "p5.48xlarge", 2, "vllm", "bf16")
    assert (first.batch, first.input_tokens, first.output_tokens, first.metric, first.value) == (
        4, 512, 128, "tpot_ms_p50", 7.5)
    assert first.kv_cache_dtype == "auto" and first.assumptions == ""
    assert (second.line, second.kv_cache_dtype, second.assumptions) == (3, "fp8", "FP8 KV assumed")
    assert first.label == "Llama-3.1-8B-Instruct bf16 on p5.48xlarge TP2 vllm b4 512/128"


def test_an_excluded_row_is_kept_with_its_reason_and_not_parsed(tmp_path: Path) -> None:
    skipped = "me/bench:run2,p5.48xlarge,2,vllm,some/model,bf16,?,512,128,ttft_ms_p50,,,batch not stated,"
    rows, excluded = read_measurements(_write(tmp_path, ROW, skipped))
    assert len(rows) == 1
    assert [(x.line, x.source, x.metric, x.reason) for x in excluded] == [
        (3, "me/bench:run2", "ttft_ms_p50", "batch not stated")]


def test_missing_columns_are_named(tmp_path: Path) -> None:
    header = HEADER.replace("batch,", "").replace(",metric", "")
    with pytest.raises(DataFileError, match="missing column\\(s\\) batch, metric") as caught:
        read_measurements(_write(tmp_path, ROW, header=header))
    assert all(column in str(caught.value) for column in REQUIRED)  # the expected layout is spelled out


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (ROW.replace("tpot_ms_p50", "tpot_p99"), "metric", "unknown metric 'tpot_p99'"),
        (ROW.replace(",7.5,", ",fast,"), "value", "expected a number, got 'fast'"),
        (ROW.replace(",7.5,", ",0,"), "value", "must be a positive, finite number"),
        (ROW.replace(",7.5,", ",-7.5,"), "value", "must be a positive, finite number"),
        (ROW.replace(",7.5,", ",inf,"), "value", "must be a positive, finite number"),
        (ROW.replace(",7.5,", ",nan,"), "value", "must be a positive, finite number"),
        (ROW.replace(",2,vllm", ",2.5,vllm"), "tp", "must be a positive whole number, got '2.5'"),
        (ROW.replace(",4,512", ",0,512"), "batch", "must be a positive whole number"),
        (ROW.replace(",512,128", ",,128"), "input_tokens", "expected a number, got ''"),
        (ROW.replace(",vllm,", ",,"), "engine", "missing value"),
        (ROW.replace("me/bench:run1", " "), "source", "missing value"),
    ],
)
def test_a_malformed_row_is_refused_naming_line_and_field(tmp_path: Path, row: str, field: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message) as caught:
        read_measurements(_write(tmp_path, ROW, row))
    assert (caught.value.entry, caught.value.field) == ("line 3", field)


def test_a_file_with_nothing_usable_is_refused(tmp_path: Path) -> None:
    skipped = "me/bench:run2,p5.48xlarge,2,vllm,some/model,bf16,4,512,128,ttft_ms_p50,1,,concurrency run,"
    with pytest.raises(DataFileError, match="no usable measurement rows"):
        read_measurements(_write(tmp_path, skipped))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_measurements(tmp_path / "absent.csv")
