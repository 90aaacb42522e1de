"""Tests for fleetwise.workload.library: bundled workloads by name, or a user's workload file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetwise.errors import DataFileError, UnknownNameError
from fleetwise.workload import bundled_workloads, generate, resolve_workload, save_workload


def test_bundled_chat_workload_is_diurnal() -> None:
    assert "chat-diurnal" in bundled_workloads()
    workload = resolve_workload("chat-diurnal")
    assert workload.arrivals.hourly_profile is not None and workload.duration_s == 86400
    hours = np.bincount((generate(workload).arrival_s // 3600).astype(int), minlength=24)
    assert hours[15] > 4 * hours[3]  # mid-afternoon peak (x1.6) against the night (x0.2)


def test_a_workload_file_resolves_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    save_workload(resolve_workload("chat-diurnal").replace(name="mine", duration_s=60.0), path)
    workload = resolve_workload(str(path))
    assert (workload.name, workload.duration_s) == ("mine", 60.0)


def test_a_missing_workload_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        resolve_workload(str(tmp_path / "typo.yaml"))


def test_an_unknown_workload_name_suggests_the_bundled_ones() -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        resolve_workload("chat-diurnl")
    assert excinfo.value.suggestions == ["chat-diurnal"]
