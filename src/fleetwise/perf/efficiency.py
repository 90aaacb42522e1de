"""Achieved-efficiency table: what share of peak compute, memory and link bandwidth an engine reaches on a chip.

Values are fitted by `fleetwise calibrate` from measurements. They are organised as a hierarchy so that a chip or
engine without measurements still gets a sensible value: one base for all hardware, times a factor per hardware
kind (gpu, neuron), per engine, and per engine × chip cell; a missing factor is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fleetwise.datafiles import parse_yaml, read_text_file
from fleetwise.errors import DataFileError

TERMS = ("compute", "memory", "communication", "allreduce_us", "overhead_ms")
BOUNDS = {"compute": (0.02, 1.0), "memory": (0.02, 1.0), "communication": (0.02, 1.0), "allreduce_us": (0.1, 1000.0),
          "overhead_ms": (0.01, 100.0)}


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Efficiencies for one engine on one chip."""

    compute: float  # share of dense peak FLOP/s the matmuls and attention reach
    memory: float  # share of memory bandwidth reached streaming weights and KV cache
    communication: float  # share of link bandwidth reached by tensor-parallel all-reduces
    allreduce_us: float  # fixed latency of one hop of a ring all-reduce
    overhead_ms: float  # fixed time per forward step (scheduling, launches, sampling)


@dataclass(frozen=True)
class CalibrationTable:
    """A base efficiency for every term, times factors per hardware kind, per engine and per engine/chip cell."""

    base: dict[str, float]
    kinds: dict[str, dict[str, float]] = field(default_factory=dict)
    engines: dict[str, dict[str, float]] = field(default_factory=dict)
    cells: dict[str, dict[str, float]] = field(default_factory=dict)  # key "engine/chip"
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def lookup(self, engine: str, chip: str, kind: str) -> Efficiency:
        """The efficiencies for `engine` on `chip` (a chip of hardware `kind`)."""
        factors = (self.kinds.get(kind, {}), self.engines.get(engine, {}), self.cells.get(f"{engine}/{chip}", {}))
        values = {}
        for term in TERMS:
            value = self.base[term] * math.prod(f.get(term, 1.0) for f in factors)
            low, high = BOUNDS[term]
            values[term] = min(max(value, low), high)
        return Efficiency(**values)

    def has_cell(self, engine: str, chip: str) -> bool:
        """True when measurements for this engine on this chip informed the table."""
        return f"{engine}/{chip}" in self.cells

    def to_yaml(self) -> str:
        """The table as the YAML `calibrate` writes."""
        def rounded(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
            return {k: {t: float(f"{v:.5g}") for t, v in terms.items()} for k, terms in sorted(table.items())}
        doc = {"meta": self.meta, "base": rounded({"all": self.base})["all"], "kinds": rounded(self.kinds),
               "engines": rounded(self.engines), "cells": rounded(self.cells)}
        return yaml.safe_dump(doc, sort_keys=False, width=120)


def parse_calibration(text: str, name: str) -> CalibrationTable:
    """Validate a calibration YAML document; errors name the file, the entry and the field."""
    try:
        doc = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DataFileError(name, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("base"), dict):
        raise DataFileError(name, f"a calibration file needs a 'base' mapping of {', '.join(TERMS)}")
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for section in ("base", "kinds", "engines", "cells"):
        raw = {"all": doc["base"]} if section == "base" else (doc.get(section) or {})
        if not isinstance(raw, dict):
            raise DataFileError(name, "expected a mapping", field=section)
        table: dict[str, dict[str, float]] = {}
        for key, terms in raw.items():
            if not isinstance(terms, dict):
                raise DataFileError(name, "expected a mapping of efficiency terms", entry=f"{section}.{key}")
            checked = {}
            for term, value in terms.items():
                if term not in TERMS:
                    raise DataFileError(name, f"unknown term; expected one of {', '.join(TERMS)}",
                                        entry=f"{section}.{key}", field=term)
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                        or value <= 0:
                    raise DataFileError(name, f"expected a positive number, got {value!r}",
                                        entry=f"{section}.{key}", field=term)
                checked[str(term)] = float(value)
            if section == "base" and set(checked) != set(TERMS):
                raise DataFileError(name, f"needs all of {', '.join(TERMS)}", entry="base")
            table[str(key)] = checked
        tables[section] = table
    return CalibrationTable(base=tables["base"]["all"], kinds=tables["kinds"], engines=tables["engines"],
                            cells=tables["cells"], meta=doc.get("meta") or {}, path=name)


@cache
def bundled_calibration() -> CalibrationTable:
    """The calibration shipped with fleetwise (fitted from perf/data/measurements.csv)."""
    text = (resources.files("fleetwise.perf") / "data" / "calibration.yaml").read_text(encoding="utf-8")
    return parse_calibration(text, "fleetwise/perf/data/calibration.yaml")


def load_calibration(path: str | Path | None) -> CalibrationTable:
    """A user's calibration file, or the bundled one when `path` is None."""
    if path is None:
        return bundled_calibration()
    return parse_calibration(read_text_file(path), str(Path(path).expanduser()))
