"""The plan in words and tables: summary, comparisons, cost per token, schedule, capacity curves, evidence."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fleetwise.plan import PlanSpec
from fleetwise.plan.costing import DAYS_PER_MONTH, Deployment, plan_pool
from fleetwise.plan.explain import option_row
from fleetwise.plan.result import PlanResult
from fleetwise.plan.verify import DAY_REQUESTS, Check
from tests.plan.synthetic import option


def test_the_summary_says_what_to_run_and_what_it_costs(default_plan: PlanResult) -> None:
    rec, q = default_plan.recommendation, default_plan.question
    pool = rec.pools[0]
    assert rec.summary.startswith(f"Serve {q.model} on ")
    assert f"{pool.engine} TP={pool.tp} {pool.dtype} on {pool.instance}" in rec.summary
    assert f"Expected p95 TTFT {rec.ttft_ms_p95} ms and TPOT {rec.tpot_ms_p95} ms" in rec.summary
    assert "(simulated peak hour; SLO 1000 / 100 ms)" in rec.summary
    assert f"about ${rec.monthly_usd:,.0f} a month" in rec.summary
    neuron = default_plan.comparison.best_neuron_only
    assert neuron is not None and neuron.name in rec.summary
    assert f"{default_plan.comparison.savings_vs_neuron_only_pct:.0f}% less than the best Inferentia" in rec.summary


def test_savings_are_quoted_against_each_kinds_best(default_plan: PlanResult) -> None:
    rec, comparison = default_plan.recommendation, default_plan.comparison
    for brief, saving in ((comparison.best_gpu_only, comparison.savings_vs_gpu_only_pct),
                          (comparison.best_neuron_only, comparison.savings_vs_neuron_only_pct)):
        assert brief is not None and saving is not None
        assert saving == pytest.approx((1 - rec.monthly_usd / brief.monthly_usd) * 100, abs=0.01)
    assert comparison.best_single_pool is not None and comparison.best_single_pool.name == rec.name


def test_cost_per_million_output_tokens_is_the_monthly_cost_over_monthly_tokens(default_plan: PlanResult) -> None:
    rec, q = default_plan.recommendation, default_plan.question
    tokens = sum(q.hourly_rate_per_s) * 3600 * q.mean_output_tokens * DAYS_PER_MONTH
    assert rec.usd_per_million_output_tokens == pytest.approx(rec.monthly_usd / tokens * 1e6, rel=1e-3)


def test_the_schedule_costs_add_up_to_the_monthly_cost(default_plan: PlanResult) -> None:
    daily = sum(row.usd for row in default_plan.schedule)
    assert daily * DAYS_PER_MONTH == pytest.approx(default_plan.recommendation.monthly_usd, rel=1e-3)
    assert [row.hour for row in default_plan.schedule] == list(range(24))
    assert [row.rate_per_s for row in default_plan.schedule] == default_plan.question.hourly_rate_per_s


def test_capacity_curves_show_both_kinds_and_rise_with_load(default_plan: PlanResult) -> None:
    rows = default_plan.capacity_curve
    assert {r.kind for r in rows} == {"gpu", "neuron"}
    assert len({r.name for r in rows}) == len(rows)
    by_name = {o.name: o for o in default_plan.options}
    for row in rows:
        pool = by_name[row.name].pools[0]
        assert row.max_rate_per_instance == pytest.approx(row.max_rate_per_replica * pool.replicas_per_instance,
                                                          rel=1e-3)
        rates = [p.rate_per_instance for p in row.curve]
        assert rates == sorted(rates) and row.curve
        ttfts = [p.ttft_ms for p in row.curve]
        assert ttfts == sorted(ttfts)  # latency never falls as load grows


def test_buckets_and_verification_evidence(default_plan: PlanResult) -> None:
    assert sum(b.share for b in default_plan.buckets) == pytest.approx(1.0, abs=1e-3)
    verification = default_plan.verification
    assert verification.peak is not None and verification.peak.passed
    assert verification.peak.requests > 1000 and verification.peak.window_s >= 120
    assert [h.hour for h in verification.day] == list(range(24))
    assert verification.day_requests_per_hour == DAY_REQUESTS
    rec = default_plan.recommendation
    assert rec.day_worst_ttft_ms_p95 == max(h.ttft_ms_p95 or 0.0 for h in verification.day)
    assert rec.goodput_peak == verification.peak.goodput


def test_assumptions_and_sources_name_the_choices_and_the_data(default_plan: PlanResult) -> None:
    text = " ".join(default_plan.assumptions)
    assert "p95 TTFT ≤ 1000 ms" in text and "launch to serving 600 s" in text and "730 hours" in text
    sources = {s.what: s.source for s in default_plan.sources}
    assert sources["calibration"] and sources["model config"]
    pool = default_plan.recommendation.pools[0]
    assert f"{pool.instance} on-demand price" in sources


def test_an_option_failed_in_the_day_is_shown_as_failed_even_though_its_peak_passed() -> None:
    spec = PlanSpec(purchase=["on-demand"], startup_s=0)
    rates = np.full((24, 1), 2.0)
    deployment = Deployment([plan_pool(spec, option("a.x", [1.0], 1.0), rates, np.ones(1))], "single")
    demand = SimpleNamespace(bucket_rates=rates, hourly_rate=rates[:, 0], mean_output_tokens=100.0)
    peak = Check(500.0, 50.0, 0.99, 1000, True)
    passed = option_row(deployment, peak, 1, demand)  # type: ignore[arg-type]
    failed = option_row(deployment, peak, 1, demand, failed=True)  # type: ignore[arg-type]
    assert passed.verified is not None and passed.verified.passed and passed.verified.replicas_added == 1
    assert failed.verified is not None and not failed.verified.passed
    tokens = 2.0 * 24 * 3600 * 100.0 * DAYS_PER_MONTH
    assert passed.usd_per_million_output_tokens == pytest.approx(deployment.monthly_usd / tokens * 1e6, rel=1e-3)
    assert option_row(deployment, None, 0, demand).verified is None  # type: ignore[arg-type]
