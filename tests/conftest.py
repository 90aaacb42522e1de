"""Shared fixtures: an isolated FLEETWISE_HOME so no test reads or writes the user's imported prices."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fleetwise-home"
    monkeypatch.setenv("FLEETWISE_HOME", str(home))
    return home
