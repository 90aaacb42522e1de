"""Validation end to end: the replay report's errors and breakdowns, and fitting a table from a CSV to a file."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf import CalibrationTable, load_calibration
from fleetwise.perf.calibrate import Replay, absolute_percentage_errors, predict_rows, prepare_replay, with_table
from fleetwise.perf.efficiency import TERMS
from fleetwise.perf.measurements import REQUIRED, ExcludedRow, Measurement, read_measurements
from fleetwise.perf.validation import calibrate_file, validation_report

KNOWN = CalibrationTable(
    base={"compute": 0.45, "memory": 0.7, "communication": 0.35, "allreduce_us": 4.0, "overhead_ms": 2.0})
SLOWER = CalibrationTable(
    base={"compute": 0.3, "memory": 0.5, "communication": 0.25, "allreduce_us": 8.0, "overhead_ms": 3.0})


@pytest.fixture(scope="module")
def h100_rows(catalog: Catalog) -> Replay:
    """The bundled TensorRT-LLM rows on H100 (8 rows, one source)."""
    rows, _ = read_measurements()
    return prepare_replay([r for r in rows if r.engine == "trtllm" and r.hardware == "h100-sxm"], catalog)


def _generated_by(replay: Replay, table: CalibrationTable, source: str) -> list[Measurement]:
    values = predict_rows(replay, with_table(replay, table))
    return [dataclasses.replace(r, value=float(v), source=source) for r, v in zip(replay.rows, values, strict=True)]


def _write_csv(path: Path, rows: list[Measurement], excluded_reasons: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [*REQUIRED, "kv_dtype", "excluded"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**{k: getattr(r, k) for k in REQUIRED}, "kv_dtype": r.kv_cache_dtype, "excluded": ""})
        for reason in excluded_reasons:
            writer.writerow({**{k: getattr(rows[0], k) for k in REQUIRED}, "excluded": reason})
    return path


def test_the_report_lists_every_row_with_its_error(h100_rows: Replay, calibration: CalibrationTable) -> None:
    excluded = [ExcludedRow(40, "x/y:z", "ttft_ms_p50", "batch not stated")]
    report = validation_report(h100_rows, calibration, excluded, cross_validation=False)
    errors = absolute_percentage_errors(h100_rows, calibration)
    predicted = predict_rows(h100_rows, with_table(h100_rows, calibration))
    assert report["calibration"] == calibration.path
    assert [r["line"] for r in report["rows"]] == [r.line for r in h100_rows.rows]
    assert [r["measured"] for r in report["rows"]] == [r.value for r in h100_rows.rows]
    assert [r["predicted"] for r in report["rows"]] == pytest.approx(predicted.tolist(), abs=1e-4)
    assert [r["error_pct"] for r in report["rows"]] == pytest.approx((errors * 100).tolist(), abs=0.01)
    assert report["median_abs_pct_error"] == pytest.approx(float(np.median(errors)) * 100, abs=0.01)
    assert report["mean_abs_pct_error"] == pytest.approx(float(np.mean(errors)) * 100, abs=0.01)
    assert report["by_family"] == {"p5": report["median_abs_pct_error"]}
    assert report["excluded"] == [{"line": 40, "source": "x/y:z", "metric": "ttft_ms_p50",
                                   "reason": "batch not stated"}]
    assert report["leave_one_source_out"] is None and report["leave_one_publisher_out"] is None


def test_the_report_breaks_errors_down_by_hardware_family(catalog: Catalog, calibration: CalibrationTable) -> None:
    rows, _ = read_measurements()
    picked = [r for r in rows if r.hardware in ("h100-sxm", "inf2.48xlarge")][:40]
    replay = prepare_replay(picked, catalog)
    report = validation_report(replay, calibration, [], cross_validation=False)
    errors = absolute_percentage_errors(replay, calibration)
    for family in ("p5", "inf2"):
        mine = [e for f, e in zip(replay.family, errors, strict=True) if f == family]
        assert report["by_family"][family] == pytest.approx(float(np.median(mine)) * 100, abs=0.01)
    assert set(report["by_family"]) == {"p5", "inf2"}


def test_the_report_holds_out_each_source_and_each_publisher(h100_rows: Replay, catalog: Catalog) -> None:
    rows = (_generated_by(h100_rows, KNOWN, "lab-a/bench:one.csv")
            + _generated_by(h100_rows, KNOWN, "lab-a/bench:two.csv")
            + _generated_by(h100_rows, SLOWER, "https://lab-b.example.com/results"))
    report = validation_report(prepare_replay(rows, catalog), KNOWN, [], cross_validation=True)
    by_source = report["leave_one_source_out"]["by_source"]
    by_publisher = report["leave_one_publisher_out"]["by_publisher"]
    assert set(by_source) == {"lab-a/bench:one.csv", "lab-a/bench:two.csv", "https://lab-b.example.com/results"}
    assert set(by_publisher) == {"lab-a", "lab-b.example.com"}
    # lab A's second file is predicted by a table that still saw lab A's first: far better than across labs
    assert by_source["lab-a/bench:two.csv"] < by_publisher["lab-a"]


@pytest.mark.parametrize("ridge", [-0.1, 100.5])
def test_a_ridge_out_of_range_is_refused_before_any_work(tmp_path: Path, catalog: Catalog, ridge: float) -> None:
    with pytest.raises(FleetwiseError, match="--ridge must be between 0 and 100"):
        calibrate_file(tmp_path / "absent.csv", tmp_path / "out.yaml", catalog, ridge=ridge)


def test_a_directory_is_not_an_output_file(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(FleetwiseError, match="is a directory; give a file name"):
        calibrate_file(tmp_path / "absent.csv", tmp_path, catalog)


def test_an_unwritable_output_is_reported(tmp_path: Path, h100_rows: Replay, catalog: Catalog) -> None:
    measurements = _write_csv(tmp_path / "m.csv", _generated_by(h100_rows, KNOWN, "lab-a/bench:one.csv"))
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(FleetwiseError, match="cannot write"):
        calibrate_file(measurements, blocker / "out.yaml", catalog, ridge=0.0, cross_validation=False)


def test_calibrating_a_file_writes_a_table_that_reproduces_it(tmp_path: Path, h100_rows: Replay,
                                                             catalog: Catalog) -> None:
    measurements = _write_csv(tmp_path / "m.csv", _generated_by(h100_rows, KNOWN, "lab-a/bench:one.csv"),
                              excluded_reasons=("concurrency run",))
    output = tmp_path / "new" / "calibration.yaml"
    summary = calibrate_file(measurements, output, catalog, ridge=0.0, cross_validation=False)
    assert summary["output"] == str(output) and summary["rows"] == 8 and summary["excluded"] == 1
    assert summary["median_abs_pct_error"] == 0.0
    assert summary["leave_one_source_out_median_abs_pct_error"] is None and summary["by_source"] is None
    table = load_calibration(output)
    assert table.meta["fitted_from"] == str(measurements) and table.meta["rows"] == 8
    fitted, truth = table.lookup("trtllm", "h100-sxm", "gpu"), KNOWN.lookup("trtllm", "h100-sxm", "gpu")
    for term in TERMS:
        assert getattr(fitted, term) == pytest.approx(getattr(truth, term), rel=0.01), term


def test_calibrating_with_cross_validation_reports_each_source(tmp_path: Path, h100_rows: Replay,
                                                               catalog: Catalog) -> None:
    rows = _generated_by(h100_rows, KNOWN, "lab-a/bench:one.csv") + _generated_by(h100_rows, KNOWN, "lab-b/x:y.csv")
    summary = calibrate_file(_write_csv(tmp_path / "m.csv", rows), tmp_path / "out.yaml", catalog, ridge=0.0)
    assert set(summary["by_source"]) == {"lab-a/bench:one.csv", "lab-b/x:y.csv"}
    # both labs measured the same thing: each is predicted from the other almost exactly
    assert summary["leave_one_source_out_median_abs_pct_error"] == pytest.approx(0.0, abs=0.05)


def test_two_sources_from_one_publisher_still_get_leave_one_source_out(h100_rows: Replay, catalog: Catalog) -> None:
    rows = _generated_by(h100_rows, KNOWN, "me/bench:day1.csv") + _generated_by(h100_rows, SLOWER, "me/bench:day2.csv")
    report = validation_report(prepare_replay(rows, catalog), KNOWN, [], cross_validation=True)
    assert set(report["leave_one_source_out"]["by_source"]) == {"me/bench:day1.csv", "me/bench:day2.csv"}


def test_an_output_under_home_is_written_where_load_calibration_reads_it(
        tmp_path: Path, h100_rows: Replay, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    measurements = _write_csv(tmp_path / "m.csv", _generated_by(h100_rows, KNOWN, "lab-a/bench:one.csv"))
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    calibrate_file(measurements, Path("~/cal.yaml"), catalog, ridge=0.0, cross_validation=False)
    assert load_calibration("~/cal.yaml").meta["rows"] == 8
