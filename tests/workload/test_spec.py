"""Tests for fleetwise.workload.spec: what a workload must state to be valid, and saving and loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleetwise.errors import DataFileError
from fleetwise.workload import Arrivals, Lengths, Sessions, SharedPrefixes, load_workload, save_workload
from tests.workload.builders import small_workload as _workload

# ---- arrivals and lengths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [[1.0] * 23, [0.0] * 24, [1.0] * 23 + [-1.0]])
def test_an_hourly_profile_needs_24_non_negative_multipliers_one_positive(profile: list[float]) -> None:
    with pytest.raises(ValidationError, match="hourly_profile"):
        Arrivals(rate_per_s=1.0, hourly_profile=profile)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_the_arrival_rate_must_be_a_positive_finite_number(rate: float) -> None:
    with pytest.raises(ValidationError, match="rate_per_s"):
        Arrivals(rate_per_s=rate)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"distribution": "empirical"}, "an empirical distribution needs 'values'"),
        ({"distribution": "lognormal", "std": 10}, "a lognormal distribution needs 'mean'"),
        ({"mean": 10, "minimum": 20, "maximum": 10}, "minimum exceeds maximum"),
        ({"mean": 10, "minimum": 0}, "minimum"),
    ],
)
def test_a_length_distribution_needs_its_parameters(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Lengths(**spec)


# ---- whole workloads ----------------------------------------------------------------------------------------


def test_a_workload_refuses_more_requests_than_can_be_held_and_negative_seeds() -> None:
    with pytest.raises(ValidationError, match="the limit is 20,000,000"):
        _workload(duration_s=1e9, arrivals=Arrivals(rate_per_s=1e3))
    with pytest.raises(ValidationError, match="seed"):
        _workload(seed=-1)


def test_the_request_limit_counts_the_peak_hour_and_every_conversation_turn() -> None:
    # 100/s for 100,000 s is 10 M requests: allowed; at a 3x peak hour, or with 3 turns each, it is not
    assert _workload(duration_s=1e5, arrivals=Arrivals(rate_per_s=100.0)).duration_s == 1e5
    with pytest.raises(ValidationError, match="3e\\+07 requests"):
        _workload(duration_s=1e5, arrivals=Arrivals(rate_per_s=100.0, hourly_profile=[1.0] * 23 + [3.0]))
    sessions = Sessions(turns=Lengths(mean=3), think_time_s=10.0, user_tokens=Lengths(mean=10))
    with pytest.raises(ValidationError, match="3e\\+07 requests"):
        _workload(duration_s=1e5, arrivals=Arrivals(rate_per_s=100.0), sessions=sessions)


def test_shared_prefixes_must_be_shorter_than_the_longest_prompt() -> None:
    with pytest.raises(ValidationError, match="shared prefixes must be shorter than the longest prompt"):
        _workload(prompt_tokens=Lengths(mean=100, maximum=64), shared_prefixes=SharedPrefixes(count=1, tokens=64))


def test_replace_gives_a_validated_copy() -> None:
    workload = _workload()
    longer = workload.replace(duration_s=4000.0, seed=9)
    assert (longer.duration_s, longer.seed, longer.arrivals) == (4000.0, 9, workload.arrivals)
    assert workload.duration_s == 2000.0
    with pytest.raises(ValidationError, match="duration_s"):
        workload.replace(duration_s=-1.0)


def test_unknown_fields_are_refused_as_likely_typos() -> None:
    with pytest.raises(ValidationError, match="rate_per_second"):
        Arrivals.model_validate({"rate_per_second": 1.0})


# ---- files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["w.yaml", "w.json"])
def test_workload_round_trips_through_yaml_and_json(tmp_path: Path, name: str) -> None:
    workload = _workload(name="mine", shared_prefixes=SharedPrefixes(count=2, tokens=16),
                         sessions=Sessions(turns=Lengths(distribution="empirical", values=[1, 2, 4]), think_time_s=5.0,
                                           user_tokens=Lengths(distribution="lognormal", mean=40, std=20)))
    save_workload(workload, tmp_path / name)
    assert load_workload(tmp_path / name) == workload


def test_a_json_workload_file_is_written_as_json(tmp_path: Path) -> None:
    save_workload(_workload(), tmp_path / "w.json")
    assert (tmp_path / "w.json").read_text().startswith("{")


def test_bad_workload_file_names_the_file_the_workload_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: busy\nduration_s: 60\narrivals: {rate_per_s: -1}\nprompt_tokens: {mean: 10}\n"
                    "output_tokens: {mean: 10}\n")
    with pytest.raises(DataFileError) as excinfo:
        load_workload(path)
    assert (excinfo.value.path, excinfo.value.entry, excinfo.value.field) == (str(path), "busy",
                                                                             "arrivals.rate_per_s")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("w.yaml", "duration_s: [60\n", "not valid YAML"),
        ("w.json", '{"duration_s": 60,', "not valid JSON"),
        ("w.yaml", "- 60\n", "expected a mapping"),
    ],
)
def test_unreadable_workload_files_are_clear_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError, match=message):
        load_workload(path)
