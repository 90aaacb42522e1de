"""Workloads: synthetic arrivals and lengths behave as specified, traces from public formats read back."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from fleetwise.errors import DataFileError
from fleetwise.workload import (
    Arrivals,
    Lengths,
    SharedPrefixes,
    Workload,
    bundled_workloads,
    generate,
    load_workload,
    read_trace,
    resolve_workload,
    save_workload,
    write_trace,
)


def _workload(**overrides: object) -> Workload:
    values: dict[str, object] = {
        "duration_s": 2000.0, "arrivals": Arrivals(rate_per_s=5.0),
        "prompt_tokens": Lengths(distribution="fixed", mean=100), "output_tokens": Lengths(mean=20), "seed": 1}
    values.update(overrides)
    return Workload(**values)  # type: ignore[arg-type]


def test_same_seed_same_requests_and_a_new_seed_differs() -> None:
    a, b = generate(_workload()), generate(_workload())
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert not np.array_equal(a.arrival_s, generate(_workload(seed=2)).arrival_s)


def test_poisson_rate_and_exponential_gaps() -> None:
    requests = generate(_workload(duration_s=20000.0))
    assert len(requests) / 20000.0 == pytest.approx(5.0, rel=0.03)
    gaps = np.diff(requests.arrival_s)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, rel=0.05)  # exponential: CV 1


def test_gamma_burstiness_and_constant_spacing() -> None:
    bursty = generate(_workload(duration_s=20000.0, arrivals=Arrivals(process="gamma", rate_per_s=5.0,
                                                                      burstiness_cv=3.0)))
    gaps = np.diff(bursty.arrival_s)
    assert len(bursty) / 20000.0 == pytest.approx(5.0, rel=0.1)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(3.0, rel=0.15)
    steady = generate(_workload(arrivals=Arrivals(process="constant", rate_per_s=4.0)))
    assert np.allclose(np.diff(steady.arrival_s), 0.25)


def test_hourly_profile_shapes_the_rate() -> None:
    profile = [0.0] * 12 + [2.0] * 12
    requests = generate(_workload(duration_s=86400.0, arrivals=Arrivals(rate_per_s=1.0, hourly_profile=profile)))
    hours = (requests.arrival_s // 3600).astype(int)
    assert not np.any(hours < 12)
    assert np.sum(hours >= 12) / (12 * 3600) == pytest.approx(2.0, rel=0.05)


def test_lognormal_lengths_keep_their_mean_and_respect_bounds() -> None:
    spec = Lengths(distribution="lognormal", mean=1000, std=800, minimum=10, maximum=100000)
    requests = generate(_workload(duration_s=20000.0, prompt_tokens=spec))
    assert float(np.mean(requests.prompt_tokens)) == pytest.approx(1000, rel=0.05)
    assert requests.prompt_tokens.min() >= 10
    clipped = generate(_workload(prompt_tokens=Lengths(distribution="normal", mean=100, std=100, maximum=150)))
    assert clipped.prompt_tokens.min() >= 1 and clipped.prompt_tokens.max() <= 150


def test_shared_prefixes_follow_share_and_popularity() -> None:
    prefixes = SharedPrefixes(count=4, tokens=64, share_of_requests=0.5, popularity="zipf")
    requests = generate(_workload(duration_s=20000.0, shared_prefixes=prefixes))
    shared = requests.prefix_id >= 0
    assert float(np.mean(shared)) == pytest.approx(0.5, abs=0.02)
    counts = np.bincount(requests.prefix_id[shared], minlength=4)
    assert counts[0] > counts[1] > counts[3]  # Zipf: the first prefix is the most popular
    assert np.all(requests.prompt_tokens[shared] > 64)


def test_workload_round_trips_through_yaml_and_json(tmp_path: Path) -> None:
    workload = _workload(shared_prefixes=SharedPrefixes(count=2, tokens=16))
    for name in ("w.yaml", "w.json"):
        save_workload(workload, tmp_path / name)
        assert load_workload(tmp_path / name) == workload


def test_bad_workload_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("duration_s: 60\narrivals: {rate_per_s: -1}\nprompt_tokens: {mean: 10}\n"
                    "output_tokens: {mean: 10}\n")
    with pytest.raises(DataFileError, match="rate_per_s"):
        load_workload(path)


def test_bundled_chat_workload_is_diurnal() -> None:
    assert "chat-diurnal" in bundled_workloads()
    workload = resolve_workload("chat-diurnal")
    assert workload.arrivals.hourly_profile is not None
    requests = generate(workload.model_copy(update={"duration_s": 86400.0}))
    hours = np.bincount((requests.arrival_s // 3600).astype(int), minlength=24)
    assert hours[15] > 4 * hours[3]


def test_trace_round_trip(tmp_path: Path) -> None:
    requests = generate(_workload(shared_prefixes=SharedPrefixes(count=2, tokens=16)))
    write_trace(requests, tmp_path / "t.csv")
    trace = read_trace(tmp_path / "t.csv")
    assert trace.format == "fleetwise"
    assert np.allclose(trace.requests.arrival_s, requests.arrival_s - requests.arrival_s[0], atol=1e-6)
    assert np.array_equal(trace.requests.prefix_id, requests.prefix_id)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,4808,10\n"
         "2023-11-16 18:15:50.1000000,3180,8\n2023-11-16 18:15:47.0000000,100,0\n", "azure"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,Conversation log\n"
         "8.5,GPT-4,1087,0,1087,Conversation log\n9,ChatGPT,30,12,42,API log\n", "burstgpt"),
        ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,20\n0.5,200,30\n", "vidur"),
    ],
)
def test_public_trace_formats_are_detected(tmp_path: Path, text: str, fmt: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    trace = read_trace(path)
    assert trace.format == fmt
    assert trace.requests.arrival_s[0] == 0.0 and np.all(np.diff(trace.requests.arrival_s) >= 0)
    assert sum(trace.dropped.values()) + len(trace.requests) == text.count("\n") - 1  # nothing lost silently
    if fmt == "azure":
        assert trace.requests.arrival_s[-1] == pytest.approx(50.1 - 46.6805900, abs=1e-6)
        assert trace.dropped == {"no output tokens": 1}


def test_unrecognised_or_broken_traces_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("when,in,out\n1,2,3\n")
    with pytest.raises(DataFileError, match="cannot tell the trace format"):
        read_trace(path)
    path.write_text("arrival_s,prompt_tokens,output_tokens\n0,abc,3\n")
    with pytest.raises(DataFileError, match="line 2"):
        read_trace(path)
    path.write_text("arrival_s,prompt_tokens,output_tokens\n0,1e30,3\n")
    with pytest.raises(DataFileError, match="beyond any model"):
        read_trace(path)
    for column, value in (("prefix_id", "abc"), ("session_id", "2.5")):
        path.write_text(f"arrival_s,prompt_tokens,output_tokens,prefix_tokens,{column}\n0,100,3,5,{value}\n")
        with pytest.raises(DataFileError, match=f"field '{column}'.*whole number"):
            read_trace(path)


def test_a_workload_refuses_more_requests_than_can_be_held_and_negative_seeds() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="the limit is"):
        _workload(duration_s=1e9, arrivals=Arrivals(rate_per_s=1e3))
    with pytest.raises(ValidationError, match="seed"):
        _workload(seed=-1)


def test_conversations_resend_the_context_and_point_at_it() -> None:
    from fleetwise.workload import Sessions

    workload = _workload(duration_s=3600.0, arrivals=Arrivals(rate_per_s=0.2),
                         sessions=Sessions(turns=Lengths(mean=3), think_time_s=20.0, user_tokens=Lengths(mean=50)))
    requests = generate(workload)
    assert np.all(np.diff(requests.arrival_s) >= 0)
    for session in np.unique(requests.sessions)[:20]:
        turns = np.flatnonzero(requests.sessions == session)
        assert 1 <= len(turns) <= 3
        for earlier, later in itertools.pairwise(turns):
            context = requests.prompt_tokens[earlier] + requests.output_tokens[earlier]
            assert requests.prefix_id[later] == session and requests.prefix_tokens[later] == context
            assert requests.prompt_tokens[later] == context + 50
    assert np.all(requests.sessions >= 0)
