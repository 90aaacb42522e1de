"""Calibration: replaying measurements, recovering a known efficiency table by fitting, cross-validating by source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf import CalibrationTable
from fleetwise.perf.calibrate import (
    Replay,
    absolute_percentage_errors,
    calibrate,
    cross_validate,
    fit_table,
    predict_rows,
    prepare_replay,
    publisher,
    with_table,
)
from fleetwise.perf.efficiency import TERMS
from fleetwise.perf.measurements import METRICS, Measurement, read_measurements
from fleetwise.perf.scenarios import static_batch

# A table unlike the fit's starting point (0.5, 0.5, 0.5, 10 us, 1 ms), with a factor at every level.
KNOWN = CalibrationTable(
    base={"compute": 0.45, "memory": 0.7, "communication": 0.35, "allreduce_us": 4.0, "overhead_ms": 2.0},
    kinds={"gpu": {"memory": 1.1}, "neuron": {"compute": 0.8}},
    engines={"trtllm": {"overhead_ms": 0.5}, "tnx": {"memory": 0.9}},
    cells={"tnx/trainium1": {"compute": 1.2, "communication": 1.5}})
# The same kind of table, every time term slower: what a second lab measuring the same configurations might see.
SLOWER = CalibrationTable(
    base={"compute": 0.3, "memory": 0.5, "communication": 0.25, "allreduce_us": 8.0, "overhead_ms": 3.0})
CELLS = {("trtllm", "h100-sxm"), ("tnx", "trainium1")}  # a GPU and a Neuron cell: 26 bundled rows


def _row(metric: str, **overrides: object) -> Measurement:
    values: dict[str, object] = dict(
        line=2, source="me/bench:run.csv", hardware="p5.48xlarge", tp=2, engine="trtllm",
        model="meta-llama/Llama-3.1-8B-Instruct", dtype="bf16", batch=4, input_tokens=512, output_tokens=128,
        metric=metric, value=1.0)
    values.update(overrides)
    return Measurement(**values)  # type: ignore[arg-type]


def _generated_by(replay: Replay, table: CalibrationTable, source: str | None = None) -> list[Measurement]:
    """The replay's rows with the values `table` predicts for them (optionally under another source name)."""
    values = predict_rows(replay, with_table(replay, table))
    return [dataclasses.replace(r, value=float(v), source=source or r.source)
            for r, v in zip(replay.rows, values, strict=True)]


@pytest.fixture(scope="module")
def real_rows(catalog: Catalog) -> Replay:
    """The bundled rows of the two cells, as measured."""
    rows, _ = read_measurements()
    everything = prepare_replay(rows, catalog)
    picked = [r for r, e, c in zip(rows, everything.engines, everything.chips, strict=True) if (e, c) in CELLS]
    return prepare_replay(picked, catalog)


@pytest.fixture(scope="module")
def synthetic(real_rows: Replay, catalog: Catalog) -> Replay:
    """The same rows with the values the model predicts under KNOWN."""
    return prepare_replay(_generated_by(real_rows, KNOWN), catalog)


@pytest.fixture(scope="module")
def unpenalised(synthetic: Replay) -> tuple[CalibrationTable, np.ndarray, object]:
    return calibrate(synthetic, "synthetic.csv", ridge=0.0, cross_validation=False)


def test_calibration_recovers_known_efficiencies_from_synthetic_data(
        synthetic: Replay, unpenalised: tuple[CalibrationTable, np.ndarray, object]) -> None:
    table, errors, _ = unpenalised
    assert len(synthetic.rows) == 26 and set(synthetic.kinds) == {"gpu", "neuron"}
    assert float(np.max(errors)) < 1e-6  # the model can reproduce what it generated
    for engine, chip, kind in set(zip(synthetic.engines, synthetic.chips, synthetic.kinds, strict=True)):
        fitted, truth = table.lookup(engine, chip, kind), KNOWN.lookup(engine, chip, kind)
        for term in TERMS:
            assert getattr(fitted, term) == pytest.approx(getattr(truth, term), rel=0.01), (engine, chip, term)


def test_the_fit_has_a_factor_for_every_kind_engine_and_cell_it_saw(
        synthetic: Replay, unpenalised: tuple[CalibrationTable, np.ndarray, object]) -> None:
    table, _, _ = unpenalised
    assert set(table.kinds) == {"gpu", "neuron"} and set(table.engines) == {"trtllm", "tnx"}
    assert set(table.cells) == {"trtllm/h100-sxm", "tnx/trainium1"}
    assert all(table.has_cell(e, c) for e, c in zip(synthetic.engines, synthetic.chips, strict=True))


def test_calibrate_records_how_the_table_was_fitted(
        synthetic: Replay, unpenalised: tuple[CalibrationTable, np.ndarray, object]) -> None:
    table, errors, cv = unpenalised
    assert cv is None
    assert errors.tolist() == pytest.approx(absolute_percentage_errors(synthetic, table).tolist(), abs=1e-12)
    assert table.meta["fitted_from"] == "synthetic.csv" and table.meta["rows"] == 26 and table.meta["ridge"] == 0.0
    assert table.meta["median_abs_pct_error"] == round(float(np.median(errors)) * 100, 2)
    assert "leave_one_source_out_median_abs_pct_error" not in table.meta


def test_the_ridge_pulls_cells_towards_the_shared_base(synthetic: Replay) -> None:
    table = fit_table(synthetic, ridge=1.0)
    assert float(np.median(absolute_percentage_errors(synthetic, table))) > 1e-4  # the pull costs some fit
    gpu, neuron = ("trtllm", "h100-sxm", "gpu"), ("tnx", "trainium1", "neuron")
    for term in ("compute", "memory", "overhead_ms"):  # the terms in which KNOWN's two cells differ
        def spread(t: CalibrationTable, term: str = term) -> float:
            return abs(np.log(getattr(t.lookup(*gpu), term) / getattr(t.lookup(*neuron), term)))
        assert spread(table) < spread(KNOWN), term


def test_cross_validation_predicts_each_source_from_a_table_fitted_without_it(real_rows: Replay,
                                                                              catalog: Catalog) -> None:
    h100 = prepare_replay([r for r in real_rows.rows if r.engine == "trtllm"], catalog)
    rows = _generated_by(h100, KNOWN, "lab-a/bench:a.csv") + _generated_by(h100, SLOWER, "lab-b/bench:b.csv")
    cv = cross_validate(prepare_replay(rows, catalog), ridge=0.0)
    a = predict_rows(h100, with_table(h100, KNOWN))
    b = predict_rows(h100, with_table(h100, SLOWER))
    held_out_a, held_out_b = np.abs(b - a) / a, np.abs(a - b) / b  # each lab predicted by the other's table
    assert cv.errors.tolist() == pytest.approx(np.concatenate([held_out_a, held_out_b]).tolist(), abs=1e-6)
    assert cv.by_source == pytest.approx({"lab-a/bench:a.csv": float(np.median(held_out_a)),
                                          "lab-b/bench:b.csv": float(np.median(held_out_b))}, abs=1e-6)
    assert cv.median == pytest.approx(float(np.median(cv.errors)))


def test_cross_validation_needs_two_sources(real_rows: Replay, catalog: Catalog) -> None:
    one = prepare_replay([dataclasses.replace(r, source="only/one:x") for r in real_rows.rows[:3]], catalog)
    with pytest.raises(FleetwiseError, match="at least two sources"):
        cross_validate(one)
    with pytest.raises(FleetwiseError, match="at least two sources"):
        cross_validate(prepare_replay([dataclasses.replace(r, source=f"same-owner/repo:{i}")
                                       for i, r in enumerate(real_rows.rows[:3])], catalog), by="publisher")


def test_a_publisher_is_the_repository_owner_or_the_host() -> None:
    assert publisher("aws-neuron/aws-neuron-sdk:about-neuron/benchmarks/inf2/latency.csv") == "aws-neuron"
    assert publisher("https://huggingface.co/docs/optimum-neuron/benchmarks") == "huggingface.co"


def test_each_metric_is_replayed_in_its_own_unit(catalog: Catalog, calibration: CalibrationTable) -> None:
    # Neuron buckets make decode steps uneven along the request, so the median step (ITL) differs from TPOT
    config = {"hardware": "inf2.48xlarge", "tp": 8, "engine": "tnx", "input_tokens": 128, "output_tokens": 1000}
    replay = prepare_replay([_row(metric, **config) for metric in METRICS], catalog)
    arrays = with_table(replay, calibration)
    predicted = dict(zip(METRICS, predict_rows(replay, arrays).tolist(), strict=True))
    expected = static_batch(arrays.take(np.array([0])), 4, 128, 1000)
    assert predicted["ttft_ms_p50"] == pytest.approx(float(expected.ttft_p50_s[0]) * 1e3)
    # published TPOT p50 figures are medians of per-token latencies: the ITL
    assert predicted["tpot_ms_p50"] == pytest.approx(float(expected.itl_p50_s[0]) * 1e3)
    assert predicted["tpot_ms_p50"] != pytest.approx(float(expected.tpot_p50_s[0]) * 1e3)
    assert predicted["e2e_ms_mean"] == pytest.approx(float(expected.e2e_p50_s[0]) * 1e3)
    assert predicted["output_tokens_per_s"] == pytest.approx(float(expected.output_tokens_per_s[0]))
    assert predicted["output_tokens_per_s_per_gpu"] == pytest.approx(predicted["output_tokens_per_s"] / 8)


def test_with_table_looks_up_each_rows_engine_and_chip(real_rows: Replay) -> None:
    arrays = with_table(real_rows, KNOWN)
    for i, (engine, chip, kind) in enumerate(zip(real_rows.engines, real_rows.chips, real_rows.kinds, strict=True)):
        eff = KNOWN.lookup(engine, chip, kind)
        assert (arrays.compute_eff[i], arrays.memory_eff[i], arrays.overhead_s[i]) == pytest.approx(
            (eff.compute, eff.memory, eff.overhead_ms / 1e3))


def test_errors_are_relative_to_the_measured_value(catalog: Catalog, calibration: CalibrationTable) -> None:
    replay = prepare_replay([_row("ttft_ms_p50")], catalog)
    predicted = float(predict_rows(replay, with_table(replay, calibration))[0])
    doubled = prepare_replay([_row("ttft_ms_p50", value=2 * predicted)], catalog)
    halved = prepare_replay([_row("ttft_ms_p50", value=predicted / 2)], catalog)
    assert float(absolute_percentage_errors(doubled, calibration)[0]) == pytest.approx(0.5)
    assert float(absolute_percentage_errors(halved, calibration)[0]) == pytest.approx(1.0)


def test_a_replay_knows_each_rows_engine_chip_and_family(catalog: Catalog) -> None:
    replay = prepare_replay([_row("ttft_ms_p50"), _row("ttft_ms_p50", hardware="inf2.48xlarge", engine="tnx")],
                            catalog)
    assert replay.engines == ("trtllm", "tnx") and replay.chips == ("h100-sxm", "inferentia2")
    assert replay.kinds == ("gpu", "neuron") and replay.family == ("p5", "inf2")


def test_a_measured_configuration_is_replayed_even_if_fit_would_refuse_it(catalog: Catalog) -> None:
    big = _row("tpot_ms_p50", model="meta-llama/Llama-3.1-70B-Instruct", tp=1)  # 140 GB of weights on one H100
    assert len(prepare_replay([big], catalog).rows) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "nobody/NoSuchModel-7B"}, "unknown model"),
        ({"input_tokens": 131072}, "exceed the model's maximum 131072"),
        ({"hardware": "p9.48xlarge"}, "unknown hardware"),
    ],
)
def test_an_unreplayable_row_is_refused_naming_its_line(catalog: Catalog, overrides: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(FleetwiseError, match=f"measurement line 7 \\(me/bench:run.csv\\): .*{message}"):
        prepare_replay([_row("ttft_ms_p50"), _row("ttft_ms_p50", line=7, **overrides)], catalog)
