"""Tests for fleetwise.workload.source: where a run's requests come from (workload, trace or flat rate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetwise.errors import FleetwiseError
from fleetwise.workload import generate, resolve_workload
from fleetwise.workload.source import FLAT_DURATION_S, RequestSource


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one of --workload, --trace or --rate"),
        ({"workload": "chat-diurnal", "rate_per_s": 1.0, "input_tokens": 1, "output_tokens": 1}, "exactly one"),
        ({"rate_per_s": 1.0, "input_tokens": 100}, "--rate needs --input-tokens and --output-tokens"),
        ({"workload": "chat-diurnal", "duration_s": 0.0}, "--duration must be a positive number"),
        ({"workload": "chat-diurnal", "duration_s": float("inf")}, "--duration must be a positive number"),
        ({"workload": "chat-diurnal", "seed": -1}, "--seed must not be negative"),
    ],
)
def test_a_source_needs_exactly_one_origin_and_sane_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetwiseError, match=message):
        RequestSource(**kwargs)


def test_a_flat_rate_is_poisson_with_fixed_lengths_for_the_default_duration() -> None:
    requests = RequestSource(rate_per_s=2.0, input_tokens=300, output_tokens=40).requests()
    assert set(requests.prompt_tokens.tolist()) == {300} and set(requests.output_tokens.tolist()) == {40}
    assert requests.arrival_s[-1] < FLAT_DURATION_S
    assert len(requests) / FLAT_DURATION_S == pytest.approx(2.0, rel=0.15)


def test_duration_and_seed_override_a_named_workload() -> None:
    requests = RequestSource(workload="chat-diurnal", duration_s=120.0, seed=3).requests()
    expected = generate(resolve_workload("chat-diurnal").replace(duration_s=120.0, seed=3))
    assert np.array_equal(requests.arrival_s, expected.arrival_s)
    assert np.array_equal(requests.prompt_tokens, expected.prompt_tokens)


def test_a_trace_is_replayed_whole_or_cut_to_the_duration(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens\n10,100,5\n11,200,5\n14,300,5\n")
    assert RequestSource(trace=path).requests().prompt_tokens.tolist() == [100, 200, 300]
    assert RequestSource(trace=path, duration_s=2.0).requests().prompt_tokens.tolist() == [100, 200]
