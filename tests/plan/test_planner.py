"""plan() end to end: the recommendation and its standing, rejections, schedule, purchases, what-ifs and inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.plan import PlanSpec, plan
from fleetwise.plan.result import PlanResult, PoolRow, WhatIf, WhatIfError
from fleetwise.plan.search import EXTRA_FINALISTS, KIND_CHECKS

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
WHAT_IFS = ["traffic=2x", "spot_price=+30%", "prompt=2x"]


@pytest.fixture(scope="module")
def screened(catalog: Catalog) -> PlanResult:
    """The default question without verification, with three what-ifs (~1 s)."""
    return plan(PlanSpec(verify=False, what_if=WHAT_IFS), catalog=catalog)


@pytest.fixture(scope="module")
def inferentia(catalog: Catalog) -> PlanResult:
    """Inferentia only, one finalist: options fail at the peak, others pass the peak but miss an hour of the day,
    and the search reaches its cap before every cheaper option was simulated (~7 s, the slowest plan here)."""
    return plan(PlanSpec(instances=["inf2"], finalists=1), catalog=catalog)


def _pools(result: PlanResult) -> list[PoolRow]:
    return [p for option in result.options for p in option.pools] + result.recommendation.pools


def _dollars(reason: str) -> float:
    """The amount a rejection reason starts with: '$6,552/month more ...' -> 6552.0."""
    return float(reason.split("/month")[0].lstrip("$").replace(",", ""))


def _standing(result: PlanResult) -> list[float]:
    return [o.monthly_usd for o in result.options if o.verified is None or o.verified.passed]


# --- the default plan ------------------------------------------------------------------------------------------


def test_default_plan_answers_with_a_verified_recommendation(default_plan: PlanResult) -> None:
    rec = default_plan.recommendation
    assert rec.pools and rec.monthly_usd > 0 and rec.usd_per_million_output_tokens
    assert rec.ttft_ms_p95 is not None and rec.tpot_ms_p95 is not None
    assert rec.ttft_ms_p95 <= 1000 and rec.tpot_ms_p95 <= 100  # the default SLOs, simulated
    assert rec.latency_source == "simulated peak hour" and rec.day_passed is True
    assert len(default_plan.schedule) == 24
    # the recommendation is the cheapest option that passed verification, and comes first
    assert rec.monthly_usd == min(_standing(default_plan)) and default_plan.options[0].name == rec.name


def test_options_are_ranked_by_cost_with_failures_last(default_plan: PlanResult) -> None:
    options = default_plan.options
    assert [o.rank for o in options] == list(range(1, len(options) + 1))
    standing = _standing(default_plan)
    assert [o.monthly_usd for o in options[:len(standing)]] == sorted(standing)
    assert all(o.verified is not None and not o.verified.passed for o in options[len(standing):])


def test_the_finalists_are_simulated_and_no_more_than_the_caps_allow(default_plan: PlanResult,
                                                                     screened: PlanResult) -> None:
    simulated = [o for o in default_plan.options if o.verified is not None]
    spec = PlanSpec()
    assert spec.finalists <= len(simulated) <= spec.finalists + EXTRA_FINALISTS + 2 * KIND_CHECKS
    cheapest_screened = [o.name for o in screened.options if o.kind == "single"][:spec.finalists]
    assert set(cheapest_screened) <= {o.name for o in simulated}  # the finalists, whatever simulation made of them
    for option in simulated:
        assert option.verified is not None and option.verified.requests > 1000


def test_every_rejection_has_a_category_and_a_reason(default_plan: PlanResult) -> None:
    categories = {r.category for r in default_plan.rejected}
    assert {"doesn't fit", "engine can't run it", "costs more"} <= categories
    assert all(r.reason for r in default_plan.rejected)
    assert sum(default_plan.rejected_counts.values()) == len(default_plan.rejected)
    assert list(default_plan.rejected_counts) == list(dict.fromkeys(r.category for r in default_plan.rejected))


def test_every_dearer_option_is_rejected_as_costing_more(default_plan: PlanResult) -> None:
    rec = default_plan.recommendation
    costs_more = {r.option: r.reason for r in default_plan.rejected if r.category == "costs more"}
    dearer = [o for o in default_plan.options if o.name != rec.name and (o.verified is None or o.verified.passed)]
    assert dearer and {o.name for o in dearer} == set(costs_more)
    for option in dearer:
        more = _dollars(costs_more[option.name])
        assert more == pytest.approx(option.monthly_usd - rec.monthly_usd, abs=1.0)  # rounded to the dollar


def test_schedule_follows_the_diurnal_load(catalog: Catalog) -> None:
    busy = plan(PlanSpec(traffic_scale=6.0, verify=False), catalog=catalog)  # a peak that needs several replicas
    schedule = busy.schedule
    replicas = [sum(p.replicas for p in row.pools) for row in schedule]
    rates = [row.rate_per_s for row in schedule]
    assert replicas[int(np.argmax(rates))] == max(replicas)
    assert replicas[int(np.argmin(rates))] == min(replicas)
    assert max(replicas) > min(replicas)
    per_instance = busy.recommendation.pools[0].replicas_per_instance
    for row in schedule:
        for pool in row.pools:
            assert pool.instances == -(-pool.replicas // per_instance)  # whole instances
            assert pool.on_demand + pool.spot + pool.reserved >= pool.instances  # bought (spot spares on top)


def test_spot_is_used_when_cheaper_but_keeps_an_on_demand_floor(default_plan: PlanResult) -> None:
    pools = [p for p in _pools(default_plan) if "spot" in p.purchase]
    assert pools  # spot is far below on-demand for g6/g6e in us-east-1, so some option uses it
    for pool in pools:
        assert pool.on_demand_instances_peak >= 1


def test_comparisons_quote_simulated_options(default_plan: PlanResult) -> None:
    by_name = {o.name: o for o in default_plan.options}
    for compared in (default_plan.comparison.best_gpu_only, default_plan.comparison.best_neuron_only):
        assert compared is not None
        option = by_name[compared.name]
        assert option.verified is not None and option.verified.passed
        assert option.monthly_usd == compared.monthly_usd


# --- without verification --------------------------------------------------------------------------------------


def test_without_verification_the_cheapest_screened_option_is_recommended(screened: PlanResult) -> None:
    rec = screened.recommendation
    assert rec.latency_source == "screened" and rec.day_passed is None and rec.goodput_peak is None
    assert screened.verification.peak is None and screened.verification.day == []
    assert all(o.verified is None for o in screened.options)
    assert rec.name == screened.options[0].name and rec.monthly_usd == min(o.monthly_usd for o in screened.options)
    assert rec.ttft_ms_p95 == screened.options[0].predicted.ttft_ms_p95
    assert screened.comparison.basis.startswith("screened")


def test_verification_only_ever_adds_to_the_screened_cost(default_plan: PlanResult, screened: PlanResult) -> None:
    assert {o.name for o in default_plan.options} <= {o.name for o in screened.options}  # the same shapes
    screened_cost = {o.name: o.monthly_usd for o in screened.options}
    for option in default_plan.options:
        assert option.monthly_usd >= screened_cost[option.name] - 0.01  # simulation adds replicas, never removes
    assert default_plan.recommendation.monthly_usd >= screened.recommendation.monthly_usd


def test_what_ifs_never_lower_cost_when_they_add_load_or_price(screened: PlanResult) -> None:
    base = screened.recommendation.monthly_usd
    assert [w.change for w in screened.what_if] == WHAT_IFS
    for change in screened.what_if:
        assert isinstance(change, WhatIf)
        assert change.monthly_usd >= base
        assert change.delta_monthly_usd == pytest.approx(change.monthly_usd - base, abs=0.01)
        assert change.same_deployment == (change.recommendation == screened.recommendation.name)


@pytest.mark.parametrize("spec", [None, PlanSpec(model=LLAMA_70B, instances=["p4d", "p5", "inf2"], verify=False)],
                         ids=["8b-screened", "70b"])
def test_doubling_traffic_never_lowers_cost(spec: PlanSpec | None, screened: PlanResult, catalog: Catalog) -> None:
    result = screened if spec is None else plan(spec.replace(what_if=["traffic=2x"]), catalog=catalog)
    base = PlanSpec(verify=False) if spec is None else spec
    change = result.what_if[0]
    assert isinstance(change, WhatIf) and change.monthly_usd >= result.recommendation.monthly_usd
    doubled = plan(base.replace(traffic_scale=2.0), catalog=catalog)
    assert doubled.recommendation.monthly_usd == pytest.approx(change.monthly_usd)  # the what-if is that plan
    by_name = {o.name: o.monthly_usd for o in result.options if o.kind == "single"}
    compared = [o for o in doubled.options if o.name in by_name]
    assert compared
    for option in compared:
        assert option.monthly_usd >= by_name[option.name]


def test_a_what_if_that_cannot_be_planned_is_reported_not_raised(catalog: Catalog) -> None:
    result = plan(PlanSpec(verify=False, instances=["g6e"], what_if=["prompt=1000x"]), catalog=catalog)
    (change,) = result.what_if
    assert isinstance(change, WhatIfError) and "context" in change.error


# --- other questions -------------------------------------------------------------------------------------------


def test_tight_ttft_slo_rules_out_slow_options(catalog: Catalog) -> None:
    loose = plan(PlanSpec(instances=["inf2", "g6", "g6e"], verify=False), catalog=catalog)
    tight = plan(PlanSpec(instances=["inf2", "g6", "g6e"], slo={"ttft_p95_ms": 150, "tpot_p95_ms": 100},
                          verify=False), catalog=catalog)
    loose_names = {o.name for o in loose.options if o.kind == "single"}
    tight_names = {o.name for o in tight.options if o.kind == "single"}
    assert tight_names < loose_names  # strictly fewer options survive
    ruled_out = {r.option for r in tight.rejected if r.category == "misses SLO"}
    assert any(name.startswith("inf2") for name in ruled_out)
    for option in tight.options:
        assert option.predicted.ttft_ms_p95 is not None and option.predicted.ttft_ms_p95 <= 150


def test_no_spot_appears_when_spot_is_disabled(catalog: Catalog) -> None:
    result = plan(PlanSpec(purchase=["on-demand", "reserved-1y"], verify=False), catalog=catalog)
    for pool in _pools(result):
        assert "spot" not in pool.purchase and pool.spot_instances_peak == 0
    assert all(p.spot == 0 for row in result.schedule for p in row.pools)


def test_an_excluded_family_never_appears(catalog: Catalog) -> None:
    result = plan(PlanSpec(instances=["inf2", "g6", "p4d"], verify=False), catalog=catalog)
    families = {p.instance.split(".")[0] for p in _pools(result)}
    assert families <= {"inf2", "g6", "p4d"}
    assert all(r.option.split(".")[0] in {"inf2", "g6", "p4d"} for r in result.rejected)


def test_impossible_slo_says_what_came_closest(catalog: Catalog) -> None:
    with pytest.raises(FleetwiseError, match=r"no option serves .* closest"):
        plan(PlanSpec(slo={"ttft_p95_ms": 1, "tpot_p95_ms": 1}, verify=False), catalog=catalog)


def test_an_unknown_region_is_refused(catalog: Catalog) -> None:
    with pytest.raises(FleetwiseError):
        plan(PlanSpec(region="mars-north-1", verify=False), catalog=catalog)


def test_a_plan_file_is_planned_with_its_workload(tmp_path: Path, catalog: Catalog) -> None:
    from fleetwise.plan import load_plan_file

    (tmp_path / "w.yaml").write_text("duration_s: 3600\narrivals: {rate_per_s: 2}\nprompt_tokens: {mean: 500}\n"
                                     "output_tokens: {mean: 100}\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("model: Llama-3.1-8B-Instruct\nworkload: w.yaml\nslo: {ttft_p95_ms: 500}\n"
                         "purchase: [on-demand]\ninstances: [g6e]\n")
    result = plan(load_plan_file(plan_file).replace(verify=False), catalog=catalog)
    assert result.question.peak_rate_per_s == pytest.approx(2.0, rel=0.2)
    assert result.question.slo["ttft_p95_ms"] == 500 and result.question.purchase == ["on-demand"]
    assert all(p.purchase == ["on-demand"] for p in result.recommendation.pools)


def test_imported_commitment_prices_buy_the_always_on_base(tmp_path: Path, catalog: Catalog) -> None:
    # made-up test prices (not real AWS figures): a 3-year term at 30% of on-demand for g6e.xlarge
    on_demand = catalog.usd_per_hour("g6e.xlarge")
    assert on_demand is not None
    prices = tmp_path / "prices.csv"
    prices.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                      f"g6e.xlarge,us-east-1,reserved-3y,{on_demand * 0.3:.6f},test fixture (made-up),2026-11-25,\n")
    spec = PlanSpec(instances=["g6e.xlarge"], dtypes=["fp8"], catalog=[str(prices)], verify=False)
    committed = plan(spec).recommendation
    pool = committed.pools[0]
    assert pool.break_even_utilization["reserved-3y"] == pytest.approx(0.3, abs=1e-4)
    # at 30% of on-demand every instance busy more than 30% of the hours is reserved: the base, and more
    assert pool.reserved_term == "reserved-3y"
    assert pool.instances_min <= pool.reserved_instances <= pool.instances_peak
    assert "reserved-3y" in pool.purchase
    without = plan(spec.replace(purchase=["on-demand", "spot"])).recommendation
    assert without.pools[0].reserved_instances == 0
    assert committed.monthly_usd < without.monthly_usd


def test_progress_is_reported_in_stages_up_to_done(catalog: Catalog) -> None:
    seen: list[tuple[str, float]] = []
    plan(PlanSpec(verify=False, instances=["g6e"]), progress=lambda stage, done: seen.append((stage, done)),
         catalog=catalog)
    stages = [stage for stage, _ in seen]
    assert stages[0] == "demand" and stages[-1] == "done" and seen[-1][1] == 1.0
    assert stages.index("options") < stages.index("mix") < stages.index("verify")
    fractions = [done for _, done in seen]
    assert fractions == sorted(fractions)


def test_without_comparison_the_kinds_are_not_quoted(catalog: Catalog) -> None:
    result = plan(PlanSpec(verify=False, instances=["g6e", "inf2"]), catalog=catalog, compare=False)
    assert result.comparison.best_gpu_only is None and result.comparison.best_neuron_only is None
    assert result.comparison.savings_vs_gpu_only_pct is None


# --- Inferentia only: failures in simulation -------------------------------------------------------------------


def test_recommendation_is_the_cheapest_option_that_passed_every_check(inferentia: PlanResult) -> None:
    # several options pass at the peak but fail an hour of the day, so the choice must come after the day check,
    # and comparisons must use simulated (grown) costs
    rec = inferentia.recommendation
    failed = {r.option for r in inferentia.rejected if r.category == "misses SLO in simulation"}
    assert failed and rec.name not in failed
    for option in inferentia.options:
        if option.verified is not None and option.verified.passed and option.name not in failed:
            assert rec.monthly_usd <= option.monthly_usd
    comparison = inferentia.comparison
    for saving in (comparison.savings_vs_gpu_only_pct, comparison.savings_vs_neuron_only_pct):
        assert saving is None or saving >= 0
    assert rec.day_passed is True and comparison.best_gpu_only is None
    assert "No GPU-only option meets the SLOs." in rec.summary


def test_an_option_that_misses_an_hour_is_ranked_as_failed(inferentia: PlanResult) -> None:
    by_name = {o.name: o for o in inferentia.options}
    day_misses = [r for r in inferentia.rejected
                  if r.category == "misses SLO in simulation" and r.reason.startswith("hour ")]
    assert day_misses  # passed the peak, missed some hour
    standing = _standing(inferentia)
    for rejected in day_misses:
        row = by_name[rejected.option]
        assert row.verified is not None and not row.verified.passed
        assert row.rank > len(standing)  # after every option still standing


def test_cheaper_options_never_simulated_are_listed_as_not_verified(inferentia: PlanResult) -> None:
    rec = inferentia.recommendation
    unchecked = [r for r in inferentia.rejected if r.category == "not verified"]
    assert unchecked  # one finalist and a cap of 1 + EXTRA_FINALISTS peak checks: the search stopped short
    ranked = {o.name for o in inferentia.options}
    simulated = sum(o.verified is not None for o in inferentia.options)
    for rejected in unchecked:
        assert rejected.option not in ranked  # not a standing alternative
        screened = _dollars(rejected.reason)
        assert screened < rec.monthly_usd
        assert f"beyond the {simulated} options simulated" in rejected.reason


def test_an_option_whose_checks_stopped_costs_at_least_the_recommendation(inferentia: PlanResult) -> None:
    rec = inferentia.recommendation
    by_name = {o.name: o for o in inferentia.options}
    stopped = [r for r in inferentia.rejected if "stopped being added" in r.reason]
    assert stopped  # the second inf2.48xlarge shape needed more replicas than could still beat the first
    for rejected in stopped:
        row = by_name[rejected.option]
        assert rejected.category == "costs more" and row.monthly_usd >= rec.monthly_usd
        assert row.verified is not None and row.verified.stopped  # the JSON says its cost is a lower bound
    assert not any(o.verified.stopped for o in inferentia.options if o.verified is not None
                   and o.name not in {r.option for r in stopped})


def test_every_plan_counts_its_simulations_and_a_price_what_if_reuses_them(catalog: Catalog) -> None:
    spec = PlanSpec(rate_per_s=2, input_tokens=300, output_tokens=50, instances=["g6e"], dtypes=["bf16"])
    base = plan(spec, catalog=catalog)
    assert base.simulations >= 2  # the peak, and the day (one flat load: one hour simulated)
    assert plan(spec.replace(verify=False), catalog=catalog).simulations == 0
    priced = plan(spec.replace(what_if=["spot_price=+30%"]), catalog=catalog)
    assert priced.simulations == base.simulations  # the same traffic: the what-if's runs were all made already
    busier = plan(spec.replace(what_if=["traffic=2x"]), catalog=catalog)
    assert busier.simulations > base.simulations  # new traffic: simulated afresh


# --- a mix that wins -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> PlanResult:
    """Mostly short prompts with a tail of long ones: Inferentia for the short, a GPU for the long (screened)."""
    workload = tmp_path_factory.mktemp("mix") / "bimodal.yaml"
    workload.write_text("name: bimodal\nduration_s: 3600\narrivals: {rate_per_s: 20}\n"
                        "prompt_tokens: {distribution: empirical, values: [200, 200, 200, 200, 6000]}\n"
                        "output_tokens: {distribution: empirical, values: [50, 100, 300]}\n")
    return plan(PlanSpec(workload=str(workload), instances=["inf2", "g6"], slo={"ttft_p95_ms": 600},
                         verify=False), catalog=catalog)


def test_a_mix_is_recommended_when_it_beats_every_single_pool(mixed: PlanResult) -> None:
    rec, comparison = mixed.recommendation, mixed.comparison
    assert rec.kind == "mix" and 1 < len(rec.pools) <= 3
    assert comparison.best_mix is not None and comparison.best_mix.name == rec.name
    assert comparison.best_single_pool is not None and comparison.best_single_pool.monthly_usd > rec.monthly_usd
    assert comparison.mix_vs_single_pct == pytest.approx(
        (1 - rec.monthly_usd / comparison.best_single_pool.monthly_usd) * 100, abs=0.01)
    assert f"The mix saves {comparison.mix_vs_single_pct:.0f}% over the best single pool." in rec.summary
    assert {p.kind for p in rec.pools} == {"gpu", "neuron"}


def test_a_mix_serves_every_bucket_in_full_and_only_where_it_can(mixed: PlanResult) -> None:
    pools = mixed.recommendation.pools
    assert np.sum([p.bucket_share for p in pools], axis=0) == pytest.approx(np.ones(len(mixed.buckets)), abs=1e-3)
    for pool in pools:
        for share, capacity in zip(pool.bucket_share, pool.capacity_rps_per_replica, strict=True):
            assert share == 0 or capacity > 0
