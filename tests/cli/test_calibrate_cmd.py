"""`fleetwise validate` and `calibrate`: predicted vs measured as the library reports it, and a table predict uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.perf.calibrate import prepare_replay
from fleetwise.perf.efficiency import load_calibration
from fleetwise.perf.measurements import read_measurements
from fleetwise.perf.validation import validation_report
from fleetwise.predict import PredictRequest, predict

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

PREDICT = ("predict", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "inf2.48xlarge", "--tp", "8",
           "--batch", "4", "--input-tokens", "512", "--output-tokens", "128", "--json")


def _report(catalog: Catalog, calibration: CalibrationTable, measurements: Path | None = None) -> dict[str, Any]:
    rows, excluded = read_measurements(measurements)
    return validation_report(prepare_replay(rows, catalog), calibration, excluded, False)


def test_validate_json_is_the_libraries_report(run: Run, catalog: Catalog, calibration: CalibrationTable,
                                               as_printed: Callable[[Any], Any]) -> None:
    report = run("validate", "--json").json()
    assert report == as_printed(_report(catalog, calibration))


def test_validate_reports_errors_by_family_and_why_rows_were_excluded(run: Run) -> None:
    report = run("validate", "--json").json()
    assert {"inf2", "trn1", "trn2", "p5", "g6e"} <= set(report["by_family"])  # the families README.md quotes
    assert report["rows"] and all(r["measured"] > 0 and r["predicted"] > 0 for r in report["rows"])
    assert report["excluded"] and all(x["reason"] for x in report["excluded"])
    assert report["leave_one_source_out"] is None  # only with --cross-validate


def test_validate_table_prints_rows_families_and_the_median(run: Run, catalog: Catalog,
                                                            calibration: CalibrationTable,
                                                            small_measurements: Path) -> None:
    out = run("validate", "--measurements", small_measurements).ok().out
    report = _report(catalog, calibration, small_measurements)
    assert f"median absolute percentage error: {report['median_abs_pct_error']}% over {len(report['rows'])} rows" in out
    for family, value in report["by_family"].items():
        assert f"{family}: median |error| {value}%" in out


def test_calibrate_on_the_shipped_measurements_reproduces_the_shipped_table(run: Run, tmp_path: Path,
                                                                           catalog: Catalog) -> None:
    calibration = tmp_path / "cal.yaml"
    fitted = run("calibrate", "--no-cross-validate", "--output", calibration, "--json").json()
    assert fitted["output"] == str(calibration) and calibration.is_file()
    assert fitted["leave_one_source_out_median_abs_pct_error"] is None

    shipped = run("validate", "--json").json()
    refit = run("validate", "--calibration", calibration, "--json").json()
    assert refit["calibration"] == str(calibration)
    assert refit["median_abs_pct_error"] == pytest.approx(fitted["median_abs_pct_error"], abs=0.05)
    assert refit["median_abs_pct_error"] == pytest.approx(shipped["median_abs_pct_error"], abs=0.5)

    bundled = run(*PREDICT).json()
    again = run(*PREDICT, "--calibration", calibration).json()
    assert again["tpot_ms"]["p50"] == pytest.approx(bundled["tpot_ms"]["p50"], rel=0.02)
    assert again["efficiency"]["calibration"] != bundled["efficiency"]["calibration"]


def test_calibrate_from_a_users_measurements_writes_the_table_predict_reads(
        run: Run, tmp_path: Path, catalog: Catalog, calibration: CalibrationTable, small_measurements: Path,
        as_printed: Callable[[Any], Any]) -> None:
    table = tmp_path / "cal.yaml"
    shown = run("calibrate", "--measurements", small_measurements, "--no-cross-validate", "-o", table).ok()
    assert str(table) in shown.out and "median absolute percentage error" in shown.out
    rows, excluded = read_measurements(small_measurements)
    assert f"Fitted {len(rows)} rows ({len(excluded)} excluded)" in shown.out

    mine = load_calibration(table)
    request = PredictRequest(model=load_model("meta-llama/Llama-3.1-8B-Instruct"), hardware="inf2.48xlarge", tp=8,
                             dtype="bf16", engine=None, mode="batch", load=4, input_tokens=512, output_tokens=128)
    with_mine = predict(request, catalog, mine)
    assert with_mine.tpot_ms.p50 != predict(request, catalog, calibration).tpot_ms.p50  # the table matters
    assert run(*PREDICT, "--calibration", table).json() == as_printed(with_mine.to_json())


def _measurement_file(tmp_path: Path, column: str, value: str) -> Path:
    row = {"source": "me", "hardware": "p5.48xlarge", "tp": "1", "engine": "vllm",
           "model": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bf16", "batch": "1", "input_tokens": "128",
           "output_tokens": "128", "metric": "tpot_ms_p50", "value": "7.0"}
    row[column] = value
    path = tmp_path / "m.csv"
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    return path


@pytest.mark.parametrize("command", ["validate", "calibrate"])
@pytest.mark.parametrize(("column", "value"), [("tp", "1.5"), ("value", "nan"), ("tp", "inf")])
def test_bad_measurement_rows_name_file_line_and_field(run: Run, tmp_path: Path, command: str, column: str,
                                                       value: str) -> None:
    path = _measurement_file(tmp_path, column, value)
    extra = ("--output", tmp_path / "cal.yaml") if command == "calibrate" else ()
    run(command, "--measurements", path, *extra).user_error(str(path), "line 2", column)


def test_measurements_without_the_columns_are_named(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("a,b\n1,2\n")
    run("validate", "--measurements", path).user_error(str(path), "missing column")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("validate", "--measurements", "{tmp}"), ("{tmp}", "is a directory")),
        (("validate", "--calibration", "{tmp}/none.yaml"), ("{tmp}/none.yaml", "no such file")),
        (("calibrate", "--ridge", "-1"), ("--ridge", "-1")),
        (("calibrate", "--output", "{tmp}", "--no-cross-validate"), ("{tmp}", "is a directory")),
        (("calibrate", "--measurements", "{tmp}/none.csv"), ("{tmp}/none.csv", "no such file")),
    ],
    ids=["measurements-folder", "missing-calibration", "negative-ridge", "output-folder", "missing-measurements"],
)
def test_user_mistakes_exit_2_with_one_line_naming_them(run: Run, tmp_path: Path, args: tuple[str, ...],
                                                         expected: tuple[str, ...]) -> None:
    shown = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    shown.user_error(*(e.replace("{tmp}", str(tmp_path)) for e in expected))


def test_calibrate_reports_an_output_it_cannot_write(run: Run, tmp_path: Path, small_measurements: Path) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "cal.yaml"
    run("calibrate", "--measurements", small_measurements, "--no-cross-validate", "-o", target).user_error(
        f"cannot write {target}")
