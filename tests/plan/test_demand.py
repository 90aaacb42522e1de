"""The load a plan carries: hourly rates from the day profile, the peak window, size buckets, what-if scaling."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.plan.demand import (
    HOURS,
    PEAK_REQUESTS,
    PEAK_WINDOW_S,
    Demand,
    build_demand,
    draw_window,
    plan_workload,
)
from fleetwise.plan.spec import PlanSpec
from fleetwise.workload.library import resolve_workload

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def model() -> ModelArchitecture:
    return load_model(LLAMA_8B)


@pytest.fixture(scope="module")
def default(model: ModelArchitecture) -> Demand:
    return build_demand(PlanSpec(), model)


def _workload_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return str(path)


def test_hourly_rates_follow_the_day_profile_with_the_peak_measured(default: Demand) -> None:
    profile = np.array(resolve_workload("chat-diurnal").arrivals.hourly_profile)
    assert default.hourly_rate.shape == (HOURS,)
    assert default.hourly_rate / default.peak_rate == pytest.approx(profile / profile.max())
    assert default.peak_rate == pytest.approx(len(default.peak_requests) / default.peak_window_s)
    assert default.arrivals_per_s(int(np.argmax(profile))) == pytest.approx(5.0 * profile.max())


def test_the_peak_window_holds_about_the_target_number_of_requests(default: Demand) -> None:
    low, high = PEAK_WINDOW_S
    assert low <= default.peak_window_s <= high
    assert len(default.peak_requests) == pytest.approx(PEAK_REQUESTS, rel=0.1)


def test_buckets_partition_the_peak_requests(default: Demand) -> None:
    buckets = default.buckets
    assert 1 < len(buckets) <= 9 and buckets.share.sum() == pytest.approx(1.0)
    assert len(buckets.labels) == len(buckets)
    of = buckets.of_request
    assert (np.bincount(of, minlength=len(buckets)) / len(of)) == pytest.approx(buckets.share)
    for b in range(len(buckets)):
        assert buckets.prompt_tokens[b] == pytest.approx(default.peak_requests.prompt_tokens[of == b].mean())
    assert (buckets.classify(default.peak_requests) == of).all()  # the same edges sort new requests
    assert default.bucket_rates.sum(axis=1) == pytest.approx(default.hourly_rate)


def test_longer_prompts_never_land_in_a_shorter_prompt_class(default: Demand) -> None:
    requests, buckets = default.peak_requests, default.buckets
    prompt_class = buckets.codes[buckets.of_request] // (len(buckets.output_edges) + 1)
    by_prompt = np.argsort(requests.prompt_tokens, kind="stable")
    assert (np.diff(prompt_class[by_prompt]) >= 0).all()
    assert prompt_class.max() == len(buckets.prompt_edges)  # split at the 50th and 90th percentiles: 3 classes


def test_the_context_is_the_longest_request_served(default: Demand) -> None:
    served = default.peak_requests.prompt_tokens + default.peak_requests.output_tokens
    assert default.context_tokens == served.max()
    assert default.too_long_share == 0.0


def test_traffic_scale_raises_every_hour_and_prompt_scale_the_prompt_lengths(default: Demand,
                                                                             model: ModelArchitecture) -> None:
    doubled = build_demand(PlanSpec(traffic_scale=2.0), model)
    assert doubled.hourly_rate == pytest.approx(2 * default.hourly_rate, rel=0.05)
    longer = build_demand(PlanSpec(prompt_scale=2.0), model)
    assert longer.peak_requests.prompt_tokens.mean() == pytest.approx(
        2 * default.peak_requests.prompt_tokens.mean(), rel=0.1)
    assert longer.peak_rate == pytest.approx(default.peak_rate, rel=0.05)
    scaled = plan_workload(PlanSpec(prompt_scale=2.0))
    assert scaled.shared_prefixes is not None and scaled.shared_prefixes.tokens == 1024  # prefixes scale too


def test_a_flat_rate_with_fixed_lengths_is_one_bucket_all_day(model: ModelArchitecture) -> None:
    demand = build_demand(PlanSpec(rate_per_s=10.0, input_tokens=500, output_tokens=100), model)
    assert demand.hourly_rate == pytest.approx(np.full(HOURS, demand.peak_rate))
    assert demand.peak_rate == pytest.approx(10.0, rel=0.1)
    assert len(demand.buckets) == 1 and demand.context_tokens == 600


def test_multi_turn_traffic_is_measured_after_conversations_are_under_way(model: ModelArchitecture,
                                                                          tmp_path: Path) -> None:
    workload = _workload_file(tmp_path, "duration_s: 3600\narrivals: {rate_per_s: 1}\nprompt_tokens: {mean: 300}\n"
                                        "output_tokens: {mean: 100}\nsessions: {turns: {mean: 5}, think_time_s: 30, "
                                        "user_tokens: {mean: 50}}\n")
    demand = build_demand(PlanSpec(workload=workload), model)
    # one conversation a second, five turns each: five requests a second once conversations overlap
    assert demand.peak_rate == pytest.approx(5.0, rel=0.15)


def test_requests_beyond_the_context_are_left_out_of_sizing(model: ModelArchitecture, tmp_path: Path) -> None:
    workload = _workload_file(tmp_path, "duration_s: 3600\narrivals: {rate_per_s: 2}\n"
                                        "prompt_tokens: {distribution: lognormal, mean: 40000, std: 40000, "
                                        "maximum: 400000}\noutput_tokens: {mean: 100}\n")
    demand = build_demand(PlanSpec(workload=workload), model)
    assert 0 < demand.too_long_share < 0.5
    context = demand.peak_requests.prompt_tokens + demand.peak_requests.output_tokens
    assert context.max() <= model.max_position_embeddings
    assert (demand.buckets.prompt_tokens + demand.buckets.output_tokens).max() <= model.max_position_embeddings


def test_a_workload_mostly_beyond_the_context_is_refused(model: ModelArchitecture) -> None:
    with pytest.raises(FleetwiseError, match="context"):
        build_demand(PlanSpec(rate_per_s=1.0, input_tokens=200_000, output_tokens=10), model)


def test_a_peak_too_thin_to_size_is_refused(model: ModelArchitecture) -> None:
    with pytest.raises(FleetwiseError, match="too few"):
        build_demand(PlanSpec(rate_per_s=0.0001, input_tokens=100, output_tokens=10), model)


def test_a_window_is_drawn_at_the_rate_asked_for() -> None:
    workload = plan_workload(PlanSpec())
    window = draw_window(workload, rate_per_s=4.0, seconds=500.0, seed=3)
    assert len(window) == pytest.approx(2000, rel=0.1)
    assert window.arrival_s.min() >= 0 and window.arrival_s.max() <= 500.0
    again = draw_window(workload, rate_per_s=4.0, seconds=500.0, seed=3)
    assert (again.prompt_tokens == window.prompt_tokens).all()  # the same seed, the same traffic


def test_a_size_class_unseen_in_the_sample_is_sorted_into_the_nearest_bucket(default: Demand) -> None:
    requests, buckets = default.peak_requests, default.buckets
    assert len(buckets) == 9  # every prompt x output class was seen at the peak
    corner = buckets.of_request == 8  # the longest prompts with the longest outputs
    unseen = replace(buckets, codes=buckets.codes[:-1])  # as if that class had not been drawn
    classes = unseen.classify(requests)
    assert (classes[corner] == 7).all()  # the longest prompts with the next-longest outputs
    assert (classes[~corner] == buckets.of_request[~corner]).all()
