"""Shared fixtures: an isolated FLEETWISE_HOME so no test reads or writes the user's imported prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetwise.catalog import Catalog, load_catalog


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fleetwise-home"
    monkeypatch.setenv("FLEETWISE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The bundled catalog, without any user's imported prices."""
    return load_catalog(include_user_prices=False)
