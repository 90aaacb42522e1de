"""`fleetwise calibrate` fits the efficiency table; `fleetwise validate` shows predicted vs measured."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.catalog import load_catalog
from fleetwise.cli.output import console, emit_json, table
from fleetwise.perf.calibrate import RIDGE, prepare_replay
from fleetwise.perf.efficiency import load_calibration
from fleetwise.perf.measurements import read_measurements
from fleetwise.perf.validation import calibrate_file, validation_report

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
    summary = calibrate_file(measurements, output, load_catalog(catalog_files), ridge, cross_validation)
    if as_json:
        emit_json(summary)
        return
    held_out = summary["leave_one_source_out_median_abs_pct_error"]
    console.print(f"Fitted {summary['rows']} rows ({summary['excluded']} excluded) → {output}")
    console.print(f"median absolute percentage error: {summary['median_abs_pct_error']}% in sample"
                  + ("" if held_out is None else f", {held_out}% leave-one-source-out"))


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
        if by_publisher is not None:  # one publisher only: nothing to hold out
            console.print(f"[bold]leave-one-publisher-out: {by_publisher['median_abs_pct_error']}%[/] "
                          + ", ".join(f"{k} {v}%" for k, v in by_publisher["by_publisher"].items()))
    for row in report["excluded"]:
        console.print(f"[dim]excluded line {row['line']} ({row['metric']}): {row['reason']}[/]")
