"""The efficiency table: hierarchical lookup with bounds, YAML round trip, and errors that point at the bad entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetwise.errors import DataFileError
from fleetwise.perf import CalibrationTable, Efficiency, bundled_calibration, load_calibration
from fleetwise.perf.efficiency import BOUNDS, TERMS, parse_calibration
from fleetwise.perf.measurements import read_measurements

BASE = {"compute": 0.5, "memory": 0.6, "communication": 0.4, "allreduce_us": 5.0, "overhead_ms": 2.0}
TABLE = CalibrationTable(base=BASE, kinds={"gpu": {"memory": 1.5, "overhead_ms": 0.5}},
                         engines={"vllm": {"memory": 0.8, "compute": 1.2}},
                         cells={"vllm/h100-sxm": {"compute": 1.1, "allreduce_us": 3.0}}, meta={"rows": 3})
BASE_YAML = "base: {compute: 0.5, memory: 0.6, communication: 0.4, allreduce_us: 5, overhead_ms: 2}\n"


def test_lookup_multiplies_base_kind_engine_and_cell_factors() -> None:
    assert TABLE.lookup("vllm", "h100-sxm", "gpu") == Efficiency(
        compute=pytest.approx(0.5 * 1.2 * 1.1), memory=pytest.approx(0.6 * 1.5 * 0.8), communication=0.4,
        allreduce_us=pytest.approx(15.0), overhead_ms=pytest.approx(1.0))


def test_a_missing_factor_is_one() -> None:
    assert TABLE.lookup("trtllm", "h100-sxm", "gpu") == Efficiency(0.5, pytest.approx(0.9), 0.4, 5.0, 1.0)
    assert TABLE.lookup("nxdi", "inferentia2", "neuron") == Efficiency(**BASE)


def test_lookup_keeps_every_term_within_its_physical_bounds() -> None:
    extreme = CalibrationTable(base={"compute": 0.9, "memory": 0.01, "communication": 0.5, "allreduce_us": 500.0,
                                     "overhead_ms": 0.001}, kinds={"gpu": {"compute": 3.0, "allreduce_us": 10.0}})
    eff = extreme.lookup("vllm", "h100-sxm", "gpu")
    assert eff.compute == BOUNDS["compute"][1] == 1.0  # never more than the peak
    assert eff.memory == BOUNDS["memory"][0]
    assert eff.allreduce_us == BOUNDS["allreduce_us"][1]
    assert eff.overhead_ms == BOUNDS["overhead_ms"][0]
    assert eff.communication == 0.5


def test_cells_say_which_engine_and_chip_were_measured() -> None:
    assert TABLE.has_cell("vllm", "h100-sxm")
    assert not TABLE.has_cell("vllm", "a100-80gb") and not TABLE.has_cell("trtllm", "h100-sxm")


def test_a_table_survives_its_yaml_round_trip() -> None:
    again = parse_calibration(TABLE.to_yaml(), "round-trip.yaml")
    assert (again.base, again.kinds, again.engines, again.cells, again.meta) == (
        TABLE.base, TABLE.kinds, TABLE.engines, TABLE.cells, TABLE.meta)
    assert again.path == "round-trip.yaml"


def test_the_yaml_keeps_five_significant_digits() -> None:
    table = CalibrationTable(base={**BASE, "compute": 0.123456789})
    assert parse_calibration(table.to_yaml(), "x").base["compute"] == 0.12346


def test_the_bundled_table_was_fitted_from_the_bundled_measurements() -> None:
    table = bundled_calibration()
    assert load_calibration(None) is table
    assert set(table.base) == set(TERMS)
    usable, _ = read_measurements()
    assert table.meta["rows"] == len(usable)
    assert table.meta["fitted_from"] == "fleetwise/perf/data/measurements.csv"


def test_a_users_table_is_read_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(BASE_YAML + "engines: {vllm: {memory: 1.25}}\n", encoding="utf-8")
    table = load_calibration(path)
    assert table.path == str(path)
    assert table.lookup("vllm", "l4", "gpu").memory == pytest.approx(0.75)
    with pytest.raises(DataFileError, match="no such file"):
        load_calibration(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "message", "entry", "field"),
    [
        ("base: {compute: [0.5\n", "not valid YAML at line", None, None),
        ("- 1\n- 2\n", "needs a 'base' mapping", None, None),
        ("kinds: {gpu: {compute: 1.0}}\n", "needs a 'base' mapping", None, None),
        ("base: {compute: 0.5, memory: 0.5}\n", "needs all of compute, memory", "base", None),
        (BASE_YAML + "kinds: [gpu]\n", "expected a mapping", None, "kinds"),
        (BASE_YAML + "engines: {vllm: 1.1}\n", "expected a mapping of efficiency terms", "engines.vllm", None),
        (BASE_YAML + "cells: {vllm/l4: {latency: 1.0}}\n", "unknown term", "cells.vllm/l4", "latency"),
        (BASE_YAML + "kinds: {gpu: {memory: 0}}\n", "expected a positive number, got 0", "kinds.gpu", "memory"),
        (BASE_YAML + "kinds: {gpu: {memory: -1.5}}\n", "expected a positive number", "kinds.gpu", "memory"),
        (BASE_YAML + "kinds: {gpu: {memory: .nan}}\n", "expected a positive number", "kinds.gpu", "memory"),
        (BASE_YAML + "kinds: {gpu: {memory: true}}\n", "expected a positive number", "kinds.gpu", "memory"),
        (BASE_YAML + "kinds: {gpu: {memory: fast}}\n", "expected a positive number", "kinds.gpu", "memory"),
    ],
)
def test_malformed_tables_are_refused_naming_the_entry(text: str, message: str, entry: str | None,
                                                       field: str | None) -> None:
    with pytest.raises(DataFileError, match=message) as caught:
        parse_calibration(text, "bad.yaml")
    assert caught.value.path == "bad.yaml"
    assert (caught.value.entry, caught.value.field) == (entry, field)
