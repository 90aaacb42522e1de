"""CLI fixtures: `run` calls the real entry point (fleetwise.cli.main.main) in-process and returns what a user sees."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import rich.console

from fleetwise.cli import output
from fleetwise.cli.main import main

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FORCED_TERMINAL = ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


@dataclass(frozen=True)
class Ran:
    """One `fleetwise` run: exit status, stdout and stderr (colour codes removed)."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as strict JSON (NaN or Infinity would fail)."""
        assert self.code == 0, f"fleetwise {' '.join(self.args)} exited {self.code}: {self.err}"
        return json.loads(self.out, parse_constant=_refuse_constant)

    def ok(self) -> Ran:
        """Assert a clean success and return self."""
        __tracebackhide__ = True
        assert self.code == 0, f"fleetwise {' '.join(self.args)} exited {self.code}:\n{self.err}"
        return self

    def table_rows(self) -> list[list[str]]:
        """The cells of every rich-table body row on stdout; a wrapped row's continuation lines are joined to it."""
        rows: list[list[str]] = []
        for line in self.out.splitlines():
            if not line.startswith("│"):
                continue
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells[0] or not rows:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        return rows

    def user_error(self, *fragments: str) -> str:
        """Assert the user-error contract: exit 2, nothing on stdout, one `error:` line naming each fragment."""
        __tracebackhide__ = True
        shown = f"fleetwise {' '.join(self.args)} -> exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"
        assert self.code == 2, shown
        assert "Traceback" not in self.out + self.err, shown
        assert self.out.strip() == "", shown
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        for fragment in fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
        return lines[0]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name}")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run `fleetwise ARGS...` through the console entry point in this process (user errors included)."""
    monkeypatch.setenv("COLUMNS", "200")  # help screens: one option per line
    monkeypatch.setattr(output.console, "width", 200)  # tables: as wide as when piped
    # output is captured, as when piped, even where CI forces a terminal (FORCE_COLOR, GITHUB_ACTIONS): no progress bar
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: False))

    def _run(*args: str | Path) -> Ran:
        argv = tuple(str(a) for a in args)
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["fleetwise", *argv])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Ran(argv, code, _ANSI.sub("", out), _ANSI.sub("", err))

    return _run


@pytest.fixture
def as_printed() -> Callable[[Any], Any]:
    """A library value as `--json` prints it: through JSON, non-finite floats as null."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v) for v in value]
        return value

    return lambda value: json.loads(json.dumps(finite(value), default=str))


@pytest.fixture
def run_installed() -> Callable[..., Ran]:
    """Run the installed `fleetwise` console script as a real subprocess (slow: keep to a handful of tests)."""
    script = Path(sys.executable).parent / "fleetwise"
    assert script.is_file(), f"no console script at {script}: install the project (pip install -e .)"

    def _run(*args: str | Path, cwd: Path | None = None) -> Ran:
        argv = tuple(str(a) for a in args)
        env = {k: v for k, v in os.environ.items() if k not in _FORCED_TERMINAL}  # piped, as a script would be
        done = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=180, check=False,
                              cwd=cwd, env=env)
        return Ran(argv, done.returncode, _ANSI.sub("", done.stdout), _ANSI.sub("", done.stderr))

    return _run


# A miniature AWS Price List bulk offer (products + terms) for inf2.xlarge in us-east-1: a Linux shared-tenancy
# on-demand price and two no-upfront reserved terms. The figures are test inputs, not real prices.
OFFER_PRICES = {"on-demand": 0.9, "reserved-1y": 0.5, "reserved-3y": 0.25}


def offer_document() -> dict[str, Any]:
    sku = "SKU1"
    product = {"sku": sku, "productFamily": "Compute Instance", "attributes": {
        "instanceType": "inf2.xlarge", "location": "US East (N. Virginia)", "regionCode": "us-east-1",
        "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
        "licenseModel": "No License required"}}
    on_demand = {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "priceDimensions": {
        f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": str(OFFER_PRICES["on-demand"])}}}}}
    reserved = {
        f"{sku}.R{years}": {
            "priceDimensions": {f"{sku}.{years}yr.hrs": {"unit": "Hrs", "pricePerUnit": {
                "USD": str(OFFER_PRICES[f"reserved-{years}y"])}}},
            "termAttributes": {"LeaseContractLength": f"{years}yr", "OfferingClass": "standard",
                               "PurchaseOption": "No Upfront"}}
        for years in (1, 3)}
    return {"formatVersion": "v1.0", "offerCode": "AmazonEC2", "publicationDate": "2026-11-01T00:00:00Z",
            "products": {sku: product}, "terms": {"OnDemand": {sku: on_demand}, "Reserved": {sku: reserved}}}


@pytest.fixture
def offer_prices() -> dict[str, float]:
    """The prices `offer_file` holds for inf2.xlarge in us-east-1, by purchase option."""
    return dict(OFFER_PRICES)


@pytest.fixture
def offer_file(tmp_path: Path) -> Path:
    """An AWS Price List offer file with on-demand, 1-year and 3-year prices for inf2.xlarge (OFFER_PRICES)."""
    path = tmp_path / "index.json"
    path.write_text(json.dumps(offer_document()), encoding="utf-8")
    return path


@pytest.fixture
def small_measurements(tmp_path: Path) -> Path:
    """The bundled measurement CSV cut to one source (the Neuron Inf2 latency table): quick to calibrate."""
    bundled = resources.files("fleetwise.perf") / "data" / "measurements.csv"
    header, *rows = bundled.read_text(encoding="utf-8").splitlines()
    kept = [row for row in rows if "benchmarks/inf2/latency_data_decoder.csv," in row]
    assert kept, "the bundled measurements no longer hold the Inf2 latency table"
    path = tmp_path / "measurements.csv"
    path.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    return path
