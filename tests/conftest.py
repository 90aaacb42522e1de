"""Shared fixtures: an isolated FLEETWISE_HOME (no test reads or writes the user's imported prices), the bundled
catalog and calibration. Tests mirror the source tree: tests/<package>/test_<module>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetwise.catalog import Catalog, load_catalog
from fleetwise.perf import CalibrationTable, bundled_calibration


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fleetwise-home"
    monkeypatch.setenv("FLEETWISE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The bundled catalog, without any user's imported prices."""
    return load_catalog(include_user_prices=False)


@pytest.fixture(scope="session")
def calibration() -> CalibrationTable:
    """The bundled efficiency table."""
    return bundled_calibration()
