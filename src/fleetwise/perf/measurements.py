"""Measured inference results (published tables or a user's own benchmarks) in one CSV format.

Columns: source, hardware (instance type or chip id), tp, engine, model (bundled id or config path), dtype,
batch (a static batch of requests started together), input_tokens, output_tokens, metric, value; optional:
kv_dtype (auto or fp8), excluded (why a row cannot be replayed), assumptions, notes. Metrics: ttft_ms_p50,
tpot_ms_p50, e2e_ms_mean, output_tokens_per_s (whole replica), output_tokens_per_s_per_gpu (divided by TP ranks).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fleetwise.datafiles import read_text_file
from fleetwise.errors import DataFileError

METRICS = ("ttft_ms_p50", "tpot_ms_p50", "e2e_ms_mean", "output_tokens_per_s", "output_tokens_per_s_per_gpu")
REQUIRED = ("source", "hardware", "tp", "engine", "model", "dtype", "batch", "input_tokens", "output_tokens",
            "metric", "value")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured figure and the configuration and workload that produced it."""

    line: int
    source: str
    hardware: str
    tp: int
    engine: str
    model: str
    dtype: str
    batch: int
    input_tokens: int
    output_tokens: int
    metric: str
    value: float
    assumptions: str = ""
    kv_cache_dtype: str = "auto"

    @property
    def label(self) -> str:
        """A short human description of the row."""
        return (f"{self.model.split('/')[-1]} {self.dtype} on {self.hardware} TP{self.tp} {self.engine} "
                f"b{self.batch} {self.input_tokens}/{self.output_tokens}")


@dataclass(frozen=True, slots=True)
class ExcludedRow:
    """A row that cannot be replayed, and why."""

    line: int
    source: str
    metric: str
    reason: str


def read_measurements(path: str | Path | None = None) -> tuple[list[Measurement], list[ExcludedRow]]:
    """Rows of a measurement CSV (the bundled one when `path` is None), split into usable and excluded."""
    if path is None:
        name = "fleetwise/perf/data/measurements.csv"
        text = (resources.files("fleetwise.perf") / "data" / "measurements.csv").read_text(encoding="utf-8")
    else:
        name = str(path)
        text = read_text_file(path)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(name, f"missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
    usable: list[Measurement] = []
    excluded: list[ExcludedRow] = []
    for line, row in enumerate(reader, start=2):
        reason = (row.get("excluded") or "").strip()
        if reason:
            excluded.append(ExcludedRow(line, row["source"], row["metric"], reason))
            continue
        usable.append(_parse_row(row, line, name))
    if not usable:
        raise DataFileError(name, "no usable measurement rows")
    return usable, excluded


def _parse_row(row: dict[str, str], line: int, name: str) -> Measurement:
    entry = f"line {line}"

    def number(key: str, whole: bool = False) -> float:
        text = (row.get(key) or "").strip()
        try:
            value = float(text)
        except ValueError:
            raise DataFileError(name, f"expected a number, got {text!r}", entry=entry, field=key) from None
        if not math.isfinite(value) or value <= 0 or (whole and value != int(value)):
            kind = "a positive whole number" if whole else "a positive, finite number"
            raise DataFileError(name, f"must be {kind}, got {text!r}", entry=entry, field=key)
        return value

    metric = (row.get("metric") or "").strip()
    if metric not in METRICS:
        raise DataFileError(name, f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}", entry=entry,
                            field="metric")
    for key in ("source", "hardware", "engine", "model", "dtype"):
        if not (row.get(key) or "").strip():
            raise DataFileError(name, "missing value", entry=entry, field=key)
    return Measurement(
        line=line, source=row["source"].strip(), hardware=row["hardware"].strip(), tp=int(number("tp", True)),
        engine=row["engine"].strip(), model=row["model"].strip(), dtype=row["dtype"].strip(),
        batch=int(number("batch", True)), input_tokens=int(number("input_tokens", True)),
        output_tokens=int(number("output_tokens", True)), metric=metric, value=number("value"),
        assumptions=(row.get("assumptions") or "").strip(),
        kv_cache_dtype=(row.get("kv_dtype") or "").strip() or "auto",
    )
