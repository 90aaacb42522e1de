"""Tests for fleetwise.workload.requests: generated request streams behave as their workload specifies."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from fleetwise.workload import Arrivals, Lengths, Requests, Sessions, SharedPrefixes, generate
from tests.workload.builders import small_workload as _workload


def _requests(arrival_s: list[float], prompt: list[int], prefix_id: list[int] | None = None,
              prefix_tokens: list[int] | None = None, session_id: list[int] | None = None) -> Requests:
    n = len(arrival_s)
    return Requests(np.asarray(arrival_s, dtype=np.float64), np.asarray(prompt, dtype=np.int64),
                    np.full(n, 10, dtype=np.int64), np.asarray(prefix_id or [-1] * n, dtype=np.int64),
                    np.asarray(prefix_tokens or [0] * n, dtype=np.int64),
                    None if session_id is None else np.asarray(session_id, dtype=np.int64))


# ---- generation ---------------------------------------------------------------------------------------------


def test_same_seed_same_requests_and_a_new_seed_differs() -> None:
    a, b = generate(_workload()), generate(_workload())
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert not np.array_equal(a.arrival_s, generate(_workload(seed=2)).arrival_s)


def test_poisson_rate_and_exponential_gaps() -> None:
    requests = generate(_workload(duration_s=20000.0))
    assert len(requests) / 20000.0 == pytest.approx(5.0, rel=0.03)
    gaps = np.diff(requests.arrival_s)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, rel=0.05)  # exponential: CV 1
    assert requests.arrival_s[0] >= 0 and requests.arrival_s[-1] < 20000.0


def test_gamma_burstiness_and_constant_spacing() -> None:
    bursty = generate(_workload(duration_s=20000.0, arrivals=Arrivals(process="gamma", rate_per_s=5.0,
                                                                      burstiness_cv=3.0)))
    gaps = np.diff(bursty.arrival_s)
    assert len(bursty) / 20000.0 == pytest.approx(5.0, rel=0.1)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(3.0, rel=0.15)
    steady = generate(_workload(arrivals=Arrivals(process="constant", rate_per_s=4.0)))
    assert len(steady) == 8000
    assert np.allclose(np.diff(steady.arrival_s), 0.25)


def test_hourly_profile_shapes_the_rate() -> None:
    profile = [0.0] * 12 + [2.0] * 12
    requests = generate(_workload(duration_s=86400.0, arrivals=Arrivals(rate_per_s=1.0, hourly_profile=profile)))
    hours = (requests.arrival_s // 3600).astype(int)
    assert not np.any(hours < 12)
    assert np.sum(hours >= 12) / (12 * 3600) == pytest.approx(2.0, rel=0.05)


def test_fixed_lengths_are_exact() -> None:
    requests = generate(_workload())
    assert set(requests.prompt_tokens.tolist()) == {100} and set(requests.output_tokens.tolist()) == {20}


def test_lognormal_lengths_keep_their_mean_and_respect_bounds() -> None:
    spec = Lengths(distribution="lognormal", mean=1000, std=800, minimum=10, maximum=100000)
    requests = generate(_workload(duration_s=20000.0, prompt_tokens=spec))
    assert float(np.mean(requests.prompt_tokens)) == pytest.approx(1000, rel=0.05)
    assert float(np.std(requests.prompt_tokens)) == pytest.approx(800, rel=0.1)
    assert requests.prompt_tokens.min() >= 10


def test_normal_lengths_are_clipped_to_their_bounds() -> None:
    clipped = generate(_workload(prompt_tokens=Lengths(distribution="normal", mean=100, std=100, maximum=150)))
    assert clipped.prompt_tokens.min() == 1 and clipped.prompt_tokens.max() == 150


def test_empirical_lengths_draw_only_the_given_values() -> None:
    requests = generate(_workload(output_tokens=Lengths(distribution="empirical", values=[7, 300])))
    assert set(requests.output_tokens.tolist()) == {7, 300}


def test_shared_prefixes_follow_share_and_popularity() -> None:
    prefixes = SharedPrefixes(count=4, tokens=64, share_of_requests=0.5, popularity="zipf")
    requests = generate(_workload(duration_s=20000.0, shared_prefixes=prefixes))
    shared = requests.prefix_id >= 0
    assert float(np.mean(shared)) == pytest.approx(0.5, abs=0.02)
    counts = np.bincount(requests.prefix_id[shared], minlength=4)
    assert counts[0] > counts[1] > counts[3]  # Zipf: the first prefix is the most popular
    assert np.all(requests.prefix_tokens[shared] == 64) and np.all(requests.prefix_tokens[~shared] == 0)


def test_every_prompt_keeps_a_token_of_its_own_after_its_shared_prefix() -> None:
    requests = generate(_workload(prompt_tokens=Lengths(mean=10), shared_prefixes=SharedPrefixes(count=1, tokens=64)))
    assert set(requests.prompt_tokens.tolist()) == {65}


def test_conversations_resend_the_context_and_point_at_it() -> None:
    workload = _workload(duration_s=3600.0, arrivals=Arrivals(rate_per_s=0.2),
                         sessions=Sessions(turns=Lengths(mean=3), think_time_s=20.0, user_tokens=Lengths(mean=50)))
    requests = generate(workload)
    assert np.all(np.diff(requests.arrival_s) >= 0)
    assert np.all(requests.sessions >= 0)
    for session in np.unique(requests.sessions)[:20]:
        turns = np.flatnonzero(requests.sessions == session)
        assert 1 <= len(turns) <= 3
        assert requests.prefix_id[turns[0]] == -1  # the first turn has nothing cached yet
        for earlier, later in itertools.pairwise(turns):
            context = requests.prompt_tokens[earlier] + requests.output_tokens[earlier]
            assert requests.prefix_id[later] == session and requests.prefix_tokens[later] == context
            assert requests.prompt_tokens[later] == context + 50


def test_conversation_ids_stay_apart_from_system_prompt_ids() -> None:
    workload = _workload(duration_s=600.0, arrivals=Arrivals(rate_per_s=0.5),
                         shared_prefixes=SharedPrefixes(count=3, tokens=16),
                         sessions=Sessions(turns=Lengths(mean=2), think_time_s=5.0, user_tokens=Lengths(mean=5)))
    requests = generate(workload)
    assert requests.sessions.min() == 3  # ids 0-2 are the system prompts
    first_turns = np.unique(requests.sessions, return_index=True)[1]
    assert set(requests.prefix_id[first_turns].tolist()) == {0, 1, 2}  # every first turn has a system prompt


# ---- the Requests value -------------------------------------------------------------------------------------


def test_head_keeps_the_arrivals_within_the_first_seconds_counted_from_the_first() -> None:
    requests = _requests([5.0, 6.0, 7.5, 9.0], [10, 20, 30, 40])
    assert requests.head(3.0).prompt_tokens.tolist() == [10, 20, 30]
    assert requests.head(2.5).prompt_tokens.tolist() == [10, 20]  # the window ends before 5.0 + 2.5


def test_select_keeps_chosen_requests_and_shifts_their_arrivals() -> None:
    requests = _requests([5.0, 6.0, 7.5], [10, 20, 30], session_id=[4, 5, 4])
    picked = requests.select(np.array([True, False, True]), shift_s=5.0)
    assert picked.arrival_s.tolist() == [0.0, 2.5]
    assert picked.sessions.tolist() == [4, 4]


def test_summary_reports_count_rate_and_length_percentiles() -> None:
    requests = _requests([0.0, 1.0, 2.0, 4.0], [10, 20, 30, 40], prefix_id=[0, -1, -1, -1],
                         prefix_tokens=[5, 0, 0, 0])
    summary = requests.summary()
    assert summary["requests"] == 4 and summary["duration_s"] == 4.0
    assert summary["mean_rate_per_s"] == 1.0
    assert summary["prompt_tokens_p50"] == 25 and summary["shared_prefix_share"] == 0.25
    assert _requests([], []).summary() == {"requests": 0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix_id": [0, -1], "prefix_tokens": [10, 0]}, "shorter than its prompt"),
        ({"prefix_id": [0, -1], "prefix_tokens": [0, 0]}, "given together"),
        ({"prefix_id": [7, -1], "prefix_tokens": [5, 0], "session_id": [-1, 7]}, "may not also be a session_id"),
    ],
)
def test_inconsistent_prefixes_and_sessions_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _requests([0.0, 1.0], [10, 20], **kwargs)


def test_request_arrays_must_have_one_entry_per_request() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Requests(np.zeros(2), np.ones(3, dtype=np.int64), np.ones(2, dtype=np.int64), np.full(2, -1),
                 np.zeros(2, dtype=np.int64))
