"""`fleetwise calibrate` fits the efficiency table; `fleetwise validate` shows predicted vs measured."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fleetwise.catalog import load_catalog
from fleetwise.cli.output import console, emit_json, table
from fleetwise.errors import FleetwiseError
from fleetwise.perf.calibrate import (
    RIDGE,
    Replay,
    absolute_percentage_errors,
    calibrate,
    cross_validate,
    predict_rows,
    prepare_replay,
    with_table,
)
from fleetwise.perf.efficiency import CalibrationTable, load_calibration
from fleetwise.perf.measurements import ExcludedRow, read_measurements

MeasurementsOption = typer.Option(None, "--measurements", help="Measurement CSV (default: the bundled published "
                                                               "measurements); see docs/measurements.md.")
CatalogOption = typer.Option([], "--catalog", help="Extra catalog file(s).")


def calibrate_command(
    measurements: Path = MeasurementsOption,
    output: Path = typer.Option(Path("calibration.yaml"), "--output", "-o", help="Where to write the table."),
    ridge: float = typer.Option(RIDGE, "--ridge", help="Pull of engine/chip factors towards the shared base."),
    cross_validation: bool = typer.Option(True, "--cross-validate/--no-cross-validate",
                                          help="Also report leave-one-source-out errors."),
    catalog_files: list[Path] = CatalogOption,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Fit efficiencies to measurements (least squares on log error) and write a calibration file."""
    if not 0.0 <= ridge <= 100.0:
        raise FleetwiseError(f"--ridge must be between 0 and 100, got {ridge}")
    if output.is_dir():
        raise FleetwiseError(f"--output {output} is a directory; give a file name such as calibration.yaml")
    rows, excluded = read_measurements(measurements)
    replay = prepare_replay(rows, load_catalog(catalog_files))
    name = str(measurements) if measurements else "fleetwise/perf/data/measurements.csv"
    fitted, errors, cv = calibrate(replay, name, ridge, cross_validation)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(fitted.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise FleetwiseError(f"cannot write {output}: {exc.strerror or exc}") from None
    summary = {"output": str(output), "rows": len(rows), "excluded": len(excluded),
               "median_abs_pct_error": round(float(np.median(errors)) * 100, 2),
               "leave_one_source_out_median_abs_pct_error": None if cv is None else round(cv.median * 100, 2),
               "by_source": None if cv is None else {k: round(v * 100, 2) for k, v in cv.by_source.items()}}
    if as_json:
        emit_json(summary)
        return
    console.print(f"Fitted {len(rows)} rows ({len(excluded)} excluded) → {output}")
    console.print(f"median absolute percentage error: {summary['median_abs_pct_error']}% in sample"
                  + ("" if cv is None else f", {summary['leave_one_source_out_median_abs_pct_error']}% leave-one-"
                     "source-out"))


def validate_command(
    measurements: Path = MeasurementsOption,
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file (default: the bundled one)."),
    cross_validation: bool = typer.Option(False, "--cross-validate", help="Also refit without each source and "
                                                                          "predict it (leave-one-source-out)."),
    catalog_files: list[Path] = CatalogOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print predicted vs measured for every row, and the median absolute percentage error overall and by family."""
    rows, excluded = read_measurements(measurements)
    replay = prepare_replay(rows, load_catalog(catalog_files))
    report = validation_report(replay, load_calibration(calibration), excluded, cross_validation)
    if as_json:
        emit_json(report)
        return
    t = table("Predicted vs measured", [("row", "left"), ("metric", "left"), ("measured", "right"),
                                        ("predicted", "right"), ("error", "right")])
    for r in report["rows"]:
        t.add_row(r["label"], r["metric"], f"{r['measured']:,.2f}", f"{r['predicted']:,.2f}", f"{r['error_pct']:.1f}%")
    console.print(t)
    for family, value in report["by_family"].items():
        console.print(f"  {family}: median |error| {value}%")
    console.print(f"[bold]median absolute percentage error: {report['median_abs_pct_error']}%[/] over "
                  f"{len(report['rows'])} rows")
    if report["leave_one_source_out"] is not None:
        cv = report["leave_one_source_out"]
        console.print(f"[bold]leave-one-source-out: {cv['median_abs_pct_error']}%[/]")
        for source, value in cv["by_source"].items():
            console.print(f"  {source}: {value}%")
        by_publisher = report["leave_one_publisher_out"]
        console.print(f"[bold]leave-one-publisher-out: {by_publisher['median_abs_pct_error']}%[/] "
                      + ", ".join(f"{k} {v}%" for k, v in by_publisher["by_publisher"].items()))
    for row in report["excluded"]:
        console.print(f"[dim]excluded line {row['line']} ({row['metric']}): {row['reason']}[/]")


def validation_report(replay: Replay, calibration: CalibrationTable, excluded: list[ExcludedRow],
                      cross_validation: bool) -> dict[str, Any]:
    """Rows, errors overall and per hardware family, and optionally leave-one-source-out errors."""
    predicted = predict_rows(replay, with_table(replay, calibration))
    errors = absolute_percentage_errors(replay, calibration)
    by_family: dict[str, list[float]] = defaultdict(list)
    for family, error in zip(replay.family, errors, strict=True):
        by_family[family].append(float(error))
    cv = cross_validate(replay) if cross_validation else None
    cv_publisher = cross_validate(replay, by="publisher") if cross_validation else None
    return {
        "calibration": calibration.path,
        "rows": [{"line": r.line, "source": r.source, "label": r.label, "metric": r.metric, "measured": r.value,
                  "predicted": round(float(p), 4), "error_pct": round(float(e) * 100, 2)}
                 for r, p, e in zip(replay.rows, predicted, errors, strict=True)],
        "median_abs_pct_error": round(float(np.median(errors)) * 100, 2),
        "by_family": {k: round(float(np.median(v)) * 100, 2) for k, v in sorted(by_family.items())},
        "mean_abs_pct_error": round(float(np.mean(errors)) * 100, 2),
        "leave_one_source_out": None if cv is None else {
            "median_abs_pct_error": round(cv.median * 100, 2),
            "mean_abs_pct_error": round(float(np.mean(cv.errors)) * 100, 2),
            "by_source": {k: round(v * 100, 2) for k, v in cv.by_source.items()}},
        "leave_one_publisher_out": None if cv_publisher is None else {
            "median_abs_pct_error": round(cv_publisher.median * 100, 2),
            "by_publisher": {k: round(v * 100, 2) for k, v in cv_publisher.by_source.items()}},
        "excluded": [{"line": x.line, "source": x.source, "metric": x.metric, "reason": x.reason} for x in excluded],
    }
