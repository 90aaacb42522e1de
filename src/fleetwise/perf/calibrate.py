"""Fit the efficiency table to measurements, replay measurements against it, and cross-validate by source.

The fit minimises squared log error (so 2x too slow and 2x too fast cost the same) with scipy's bounded
least squares. Each efficiency term is base(kind) x factor(engine) x factor(engine, chip); factors are pulled
towards 1 by a ridge penalty, so a chip or engine with few rows borrows from the rest instead of fitting noise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fleetwise.catalog.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models.library import load_model
from fleetwise.perf.efficiency import BOUNDS, TERMS, CalibrationTable, Efficiency, bundled_calibration
from fleetwise.perf.measurements import Measurement
from fleetwise.perf.replica_arrays import Array, ReplicaArrays, build_arrays
from fleetwise.perf.scenarios import static_batch
from fleetwise.perf.shape import DeploymentShape, resolve_shape

# Pull of kind, engine and cell factors towards 1 (log units), chosen from {0.03, 0.1, 0.3, 1} by the lowest
# leave-one-source-out error on the bundled measurements.
RIDGE = 1.0
_START = Efficiency(compute=0.5, memory=0.5, communication=0.5, allreduce_us=10.0, overhead_ms=1.0)  # fit start


@dataclass(frozen=True)
class Replay:
    """Measurements packed for fast re-prediction under any efficiency table."""

    rows: tuple[Measurement, ...]
    arrays: ReplicaArrays  # its efficiencies are replaced by each table tried
    kinds: tuple[str, ...]
    engines: tuple[str, ...]
    chips: tuple[str, ...]
    family: tuple[str, ...]  # hardware family per row, for per-family errors


def prepare_replay(rows: Sequence[Measurement], catalog: Catalog) -> Replay:
    """Resolve each row's model, hardware, engine and dtype; errors name the row."""
    shapes: list[DeploymentShape] = []
    for row in rows:
        try:
            model = load_model(row.model)
            if row.input_tokens + row.output_tokens > model.max_position_embeddings:
                raise FleetwiseError(f"{row.input_tokens}+{row.output_tokens} tokens exceed the model's maximum "
                                     f"{model.max_position_embeddings}")
            # a measured configuration evidently ran: its memory is not second-guessed
            shapes.append(resolve_shape(model, catalog, bundled_calibration(), row.hardware, row.tp, row.dtype,
                                        row.engine, context_tokens=row.input_tokens + row.output_tokens,
                                        kv_cache_dtype=row.kv_cache_dtype, check_fit=False))
        except FleetwiseError as exc:
            raise FleetwiseError(f"measurement line {row.line} ({row.source}): {exc}") from None
    chips = [shape.hardware.chip for shape in shapes]
    return Replay(tuple(rows), build_arrays([shape.config for shape in shapes]), tuple(c.kind for c in chips),
                  tuple(shape.engine.id for shape in shapes), tuple(c.id for c in chips),
                  tuple(shape.hardware.instance.family for shape in shapes))


def with_table(replay: Replay, table: CalibrationTable) -> ReplicaArrays:
    """The replay's arrays with every row's efficiencies looked up in `table`."""
    return replay.arrays.with_efficiencies(
        [table.lookup(e, c, k) for e, c, k in zip(replay.engines, replay.chips, replay.kinds, strict=True)])


def predict_rows(replay: Replay, arrays: ReplicaArrays) -> Array:
    """The model's value for each row's metric, in the row's unit."""
    rows = replay.rows
    batch = np.array([r.batch for r in rows], dtype=np.float64)
    inputs = np.array([r.input_tokens for r in rows], dtype=np.float64)
    outputs = np.array([r.output_tokens for r in rows], dtype=np.float64)
    result = static_batch(arrays, batch, inputs, outputs)
    by_metric = {
        # Published "TPOT p50" figures (Neuron, TensorRT-LLM) are medians of per-token latencies: the ITL.
        "ttft_ms_p50": result.ttft_p50_s * 1e3, "tpot_ms_p50": result.itl_p50_s * 1e3,
        "e2e_ms_mean": result.e2e_p50_s * 1e3, "output_tokens_per_s": result.output_tokens_per_s,
        "output_tokens_per_s_per_gpu": result.output_tokens_per_s / arrays.tp,
    }
    return np.array([by_metric[r.metric][i] for i, r in enumerate(rows)], dtype=np.float64)


def absolute_percentage_errors(replay: Replay, table: CalibrationTable) -> Array:
    """|predicted − measured| / measured for each row."""
    predicted = predict_rows(replay, with_table(replay, table))
    measured = np.array([r.value for r in replay.rows], dtype=np.float64)
    return np.asarray(np.abs(predicted - measured) / measured, dtype=np.float64)


def fit_table(replay: Replay, ridge: float = RIDGE) -> CalibrationTable:
    """Least-squares fit of the efficiency hierarchy to the replay's rows (log error, bounded, ridge on factors)."""
    from scipy.optimize import least_squares  # loaded only when a table is fitted

    kinds = sorted(set(replay.kinds))
    engines = sorted(set(replay.engines))
    cells = sorted({f"{e}/{c}" for e, c in zip(replay.engines, replay.chips, strict=True)})
    groups = ([("base", "all")] + [("kinds", k) for k in kinds] + [("engines", e) for e in engines]
              + [("cells", c) for c in cells])
    n_groups = len(groups)
    kind_ix = np.array([1 + kinds.index(k) for k in replay.kinds])
    engine_ix = np.array([1 + len(kinds) + engines.index(e) for e in replay.engines])
    cell_ix = np.array([1 + len(kinds) + len(engines) + cells.index(f"{e}/{c}")
                        for e, c in zip(replay.engines, replay.chips, strict=True)])
    measured = np.log(np.array([r.value for r in replay.rows]))
    log_bounds = {t: (math.log(lo), math.log(hi)) for t, (lo, hi) in BOUNDS.items()}
    start = {t: math.log(getattr(_START, t)) for t in TERMS}

    def unpack(theta: Array) -> dict[str, Array]:
        return {t: theta[i * n_groups:(i + 1) * n_groups] for i, t in enumerate(TERMS)}

    def row_values(theta: Array) -> dict[str, Array]:
        out = {}
        for term, values in unpack(theta).items():
            lo, hi = log_bounds[term]
            out[term] = np.exp(np.clip(values[0] + values[kind_ix] + values[engine_ix] + values[cell_ix], lo, hi))
        return out

    def residuals(theta: Array) -> Array:
        v = row_values(theta)
        arrays = dataclasses.replace(replay.arrays, compute_eff=v["compute"], memory_eff=v["memory"],
                                     comm_eff=v["communication"], allreduce_s=v["allreduce_us"] / 1e6,
                                     overhead_s=v["overhead_ms"] / 1e3)
        predicted = np.log(np.maximum(predict_rows(replay, arrays), 1e-12))
        factors = np.concatenate([values[1:] for values in unpack(theta).values()])
        return np.concatenate([predicted - measured, math.sqrt(ridge) * factors])

    theta0 = np.concatenate([[start[t] if kind == "base" else 0.0 for kind, _ in groups] for t in TERMS])
    lower = np.concatenate([[log_bounds[t][0] if kind == "base" else -4.0 for kind, _ in groups] for t in TERMS])
    upper = np.concatenate([[log_bounds[t][1] if kind == "base" else 4.0 for kind, _ in groups] for t in TERMS])
    solution = least_squares(residuals, theta0, bounds=(lower, upper), x_scale=1.0, max_nfev=4000)
    values = unpack(solution.x)
    tables: dict[str, dict[str, dict[str, float]]] = {"base": {}, "kinds": {}, "engines": {}, "cells": {}}
    for g, (section, key) in enumerate(groups):
        tables[section][key] = {t: float(math.exp(values[t][g])) for t in TERMS}
    return CalibrationTable(base=tables["base"]["all"], kinds=tables["kinds"], engines=tables["engines"],
                            cells=tables["cells"])


@dataclass(frozen=True)
class CrossValidation:
    """Leave-one-source-out errors: each source predicted by a table fitted without it."""

    by_source: dict[str, float]  # median absolute percentage error of the held-out source
    errors: Array  # every row's held-out error, in row order

    @property
    def median(self) -> float:
        """Median absolute percentage error over all held-out rows."""
        return float(np.median(self.errors))


def publisher(source: str) -> str:
    """Who published a source: the owner of `owner/repo:path`, or the host of a URL."""
    if "://" in source:
        return source.split("://", 1)[1].split("/", 1)[0]
    return source.split("/", 1)[0]


def cross_validate(replay: Replay, ridge: float = RIDGE, by: str = "source") -> CrossValidation:
    """Fit without each source (or each publisher, `by="publisher"`) in turn and predict its rows."""
    key = (lambda r: r.source) if by == "source" else (lambda r: publisher(r.source))
    errors = np.zeros(len(replay.rows))
    by_source: dict[str, float] = {}
    for source in sorted({key(r) for r in replay.rows}):
        held = np.array([key(r) == source for r in replay.rows])
        train = _subset(replay, ~held)
        test = _subset(replay, held)
        if not train.rows:
            raise FleetwiseError("cross-validation needs measurements from at least two sources")
        table = fit_table(train, ridge)
        errors[held] = absolute_percentage_errors(test, table)
        by_source[source] = float(np.median(errors[held]))
    return CrossValidation(by_source, errors)


def _subset(replay: Replay, mask: Array) -> Replay:
    picked = np.flatnonzero(mask)
    arrays = replay.arrays
    sliced = {f.name: getattr(arrays, f.name)[picked] for f in dataclasses.fields(arrays)}
    return Replay(rows=tuple(replay.rows[i] for i in picked), arrays=ReplicaArrays(**sliced),
                  kinds=tuple(replay.kinds[i] for i in picked), engines=tuple(replay.engines[i] for i in picked),
                  chips=tuple(replay.chips[i] for i in picked), family=tuple(replay.family[i] for i in picked))


def calibrate(replay: Replay, source_name: str, ridge: float = RIDGE, cross_validation: bool = True
              ) -> tuple[CalibrationTable, Array, CrossValidation | None]:
    """Fit a table, measure its in-sample errors and (optionally) its leave-one-source-out errors."""
    table = fit_table(replay, ridge)
    errors = absolute_percentage_errors(replay, table)
    cv = cross_validate(replay, ridge) if cross_validation else None
    meta = {
        "fitted_from": source_name, "rows": len(replay.rows), "fitted_on": dt.date.today().isoformat(),
        "ridge": ridge, "median_abs_pct_error": round(float(np.median(errors)) * 100, 2),
    }
    if cv is not None:
        meta["leave_one_source_out_median_abs_pct_error"] = round(cv.median * 100, 2)
    return dataclasses.replace(table, meta=meta), errors, cv
