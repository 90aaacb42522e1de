"""Calibration against measurements, end to end: fit a table from a measurement file, and replay every
measurement under a table (errors overall, per hardware family, and held out by source and by publisher)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fleetwise.catalog.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf.calibrate import (
    RIDGE,
    Replay,
    absolute_percentage_errors,
    calibrate,
    cross_validate,
    predict_rows,
    prepare_replay,
    publisher,
    with_table,
)
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.measurements import ExcludedRow, read_measurements


def validation_report(replay: Replay, calibration: CalibrationTable, excluded: list[ExcludedRow],
                      cross_validation: bool) -> dict[str, Any]:
    """Rows, errors overall and per hardware family, and optionally leave-one-source-out errors."""
    predicted = predict_rows(replay, with_table(replay, calibration))
    errors = absolute_percentage_errors(replay, calibration)
    by_family: dict[str, list[float]] = defaultdict(list)
    for family, error in zip(replay.family, errors, strict=True):
        by_family[family].append(float(error))
    cv = cross_validate(replay) if cross_validation else None
    publishers = {publisher(r.source) for r in replay.rows}  # holding one out needs another to fit on
    cv_publisher = cross_validate(replay, by="publisher") if cross_validation and len(publishers) > 1 else None
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


def calibrate_file(measurements: Path | None, output: Path, catalog: Catalog, ridge: float = RIDGE,
                   cross_validation: bool = True) -> dict[str, Any]:
    """Fit a table to a measurement CSV (the bundled one when None), write it to `output`, and report its errors."""
    if not 0.0 <= ridge <= 100.0:
        raise FleetwiseError(f"--ridge must be between 0 and 100, got {ridge}")
    output = output.expanduser()
    if output.is_dir():
        raise FleetwiseError(f"--output {output} is a directory; give a file name such as calibration.yaml")
    rows, excluded = read_measurements(measurements)
    replay = prepare_replay(rows, catalog)
    name = str(measurements) if measurements else "fleetwise/perf/data/measurements.csv"
    fitted, errors, cv = calibrate(replay, name, ridge, cross_validation)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(fitted.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise FleetwiseError(f"cannot write {output}: {exc.strerror or exc}") from None
    return {"output": str(output), "rows": len(rows), "excluded": len(excluded),
            "median_abs_pct_error": round(float(np.median(errors)) * 100, 2),
            "leave_one_source_out_median_abs_pct_error": None if cv is None else round(cv.median * 100, 2),
            "by_source": None if cv is None else {k: round(v * 100, 2) for k, v in cv.by_source.items()}}
