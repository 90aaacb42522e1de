"""The planner: known-answer cases, purchase logic, the Mélange mix, verification, what-ifs and inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.plan import PlanSpec, load_plan_file, parse_slo, parse_what_if, plan
from fleetwise.plan.capacity import Option
from fleetwise.plan.costing import DAYS_PER_MONTH, buy_pool, plan_pool
from fleetwise.plan.mix import solve_mix

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


@pytest.fixture(scope="module")
def default_plan() -> dict[str, Any]:
    return plan(PlanSpec())


def _pools(result: dict[str, Any]) -> list[dict[str, Any]]:
    pools = [p for option in result["options"] for p in option["pools"]]
    return pools + result["recommendation"]["pools"]


def test_default_plan_answers_with_a_verified_recommendation(default_plan: dict[str, Any]) -> None:
    rec = default_plan["recommendation"]
    for key in ("pools", "monthly_usd", "usd_per_million_output_tokens", "ttft_ms_p95", "tpot_ms_p95"):
        assert rec[key] is not None
    for key in ("instance", "tp", "dtype", "engine", "replicas_peak", "replicas_min", "purchase"):
        assert key in rec["pools"][0]
    assert rec["ttft_ms_p95"] <= 1000 and rec["tpot_ms_p95"] <= 100  # the default SLOs, simulated
    assert rec["latency_source"] == "simulated peak hour"
    assert rec["day_passed"] is True
    assert len(default_plan["schedule"]) == 24
    # the recommendation is the cheapest option that passed verification
    passed = [o for o in default_plan["options"] if o["verified"] is None or o["verified"]["passed"]]
    assert rec["monthly_usd"] == min(o["monthly_usd"] for o in passed)
    standing = [o for o in default_plan["options"] if o["verified"] is None or o["verified"]["passed"]]
    assert [o["monthly_usd"] for o in standing] == sorted(o["monthly_usd"] for o in standing)
    assert default_plan["options"][-len(default_plan["options"]) + len(standing):] == [
        o for o in default_plan["options"] if o not in standing]  # failures ranked last


def test_every_rejection_has_a_category_and_a_reason(default_plan: dict[str, Any]) -> None:
    categories = {r["category"] for r in default_plan["rejected"]}
    assert {"doesn't fit", "engine can't run it", "costs more"} <= categories
    assert all(r["reason"] for r in default_plan["rejected"])
    assert sum(default_plan["rejected_counts"].values()) == len(default_plan["rejected"])


def test_schedule_follows_the_diurnal_load(default_plan: dict[str, Any]) -> None:
    schedule = default_plan["schedule"]
    replicas = [sum(p["replicas"] for p in row["pools"]) for row in schedule]
    rates = [row["rate_per_s"] for row in schedule]
    assert replicas[int(np.argmax(rates))] == max(replicas)
    assert replicas[int(np.argmin(rates))] == min(replicas)
    assert max(replicas) > min(replicas)


def test_model_too_large_for_any_single_accelerator_is_only_placed_with_tp() -> None:
    # 141 GB of bf16 weights: more than any single GPU (80 GB H100) or NeuronCore holds
    result = plan(PlanSpec(model=LLAMA_70B, instances=["inf2", "g6e", "p4d", "p5"], dtypes=["bf16"], verify=False))
    assert result["options"]
    assert all(p["tp"] > 1 for p in _pools(result))
    tp1 = [r for r in result["rejected"] if " TP=1 bf16" in r["option"]]
    assert tp1 and all(r["category"] == "doesn't fit" for r in tp1)


def test_tight_ttft_slo_rules_out_slow_options() -> None:
    loose = plan(PlanSpec(instances=["inf2", "g6", "g6e"], verify=False))
    tight = plan(PlanSpec(instances=["inf2", "g6", "g6e"], slo={"ttft_p95_ms": 150, "tpot_p95_ms": 100},
                          verify=False))
    loose_names = {o["name"] for o in loose["options"] if o["kind"] == "single"}
    tight_names = {o["name"] for o in tight["options"] if o["kind"] == "single"}
    assert tight_names < loose_names  # strictly fewer options survive
    ruled_out = {r["option"] for r in tight["rejected"] if r["category"] == "misses SLO"}
    assert any(name.startswith("inf2") for name in ruled_out)
    for option in tight["options"]:
        assert option["predicted"]["ttft_ms_p95"] <= 150


def test_no_spot_appears_when_spot_is_disabled() -> None:
    result = plan(PlanSpec(purchase=["on-demand", "reserved-1y"], verify=False))
    for pool in _pools(result):
        assert "spot" not in pool["purchase"] and pool["spot_instances_peak"] == 0
    assert all(p["spot"] == 0 for row in result["schedule"] for p in row["pools"])


def test_spot_is_used_when_cheaper_but_keeps_an_on_demand_floor(default_plan: dict[str, Any]) -> None:
    pools = [p for p in _pools(default_plan) if "spot" in p["purchase"]]
    assert pools  # spot is far below on-demand for g6/g6e in us-east-1, so some option uses it
    for pool in pools:
        assert pool["on_demand_instances_peak"] >= 1


@pytest.mark.parametrize("spec", [PlanSpec(verify=False), PlanSpec(model=LLAMA_70B, instances=["p4d", "p5", "inf2"],
                                                                   verify=False)])
def test_doubling_traffic_never_lowers_cost(spec: PlanSpec) -> None:
    result = plan(spec.replace(what_if=["traffic=2x"]))
    change = result["what_if"][0]
    assert change["monthly_usd"] >= result["recommendation"]["monthly_usd"]
    doubled = plan(spec.replace(traffic_scale=2.0))
    by_name = {o["name"]: o["monthly_usd"] for o in result["options"] if o["kind"] == "single"}
    for option in doubled["options"]:
        if option["name"] in by_name:
            assert option["monthly_usd"] >= by_name[option["name"]]


def test_an_excluded_family_never_appears() -> None:
    result = plan(PlanSpec(instances=["inf2", "g6", "p4d"], verify=False))
    families = {p["instance"].split(".")[0] for p in _pools(result)}
    assert families <= {"inf2", "g6", "p4d"}
    assert all(r["option"].split(".")[0] in {"inf2", "g6", "p4d"} for r in result["rejected"])


def test_what_if_spot_price_rise_never_lowers_cost(default_plan: dict[str, Any]) -> None:
    result = plan(PlanSpec(verify=False, what_if=["spot_price=+30%", "prompt=2x"]))
    spot, prompt = result["what_if"]
    assert spot["monthly_usd"] >= result["recommendation"]["monthly_usd"]
    assert prompt["monthly_usd"] >= result["recommendation"]["monthly_usd"]


def _option(name: str, capacity: list[float], price: float, per_instance: int = 1, **prices: float) -> Option:
    grid = np.tile(np.linspace(0.0, 1.0, 4), (len(capacity), 1))
    return Option(instance=name, family=name.split(".")[0], kind="gpu", accelerator="x", engine="vllm", tp=1,
                  dtype="bf16", max_seqs=8, compiled=False, replicas_per_instance=per_instance,
                  prices={"on-demand": price, **{k.replace("_", "-"): v for k, v in prices.items()}},
                  price_sources={}, kv_cache_gib=1.0, calibrated=True, capacity=np.array(capacity),
                  curve_rate=grid, curve_ttft_s=grid, curve_tpot_s=grid, slo_miss="")


def test_melange_mix_sends_each_bucket_to_the_cheapest_capable_pool() -> None:
    cheap_short_only = _option("small.x", [4.0, 0.0], price=1.0)  # cannot serve long prompts within the SLO
    big = _option("big.x", [4.0, 4.0], price=5.0)
    rates = np.array([8.0, 1.0])  # mostly short requests
    chosen = solve_mix([cheap_short_only, big], rates)
    assert chosen is not None
    by_name = {o.instance: (share, n) for o, share, n in chosen}
    assert by_name["small.x"][1] == 2 and by_name["small.x"][0][1] == 0.0  # two small ones for the short bucket
    assert by_name["big.x"][1] == 1 and by_name["big.x"][0][1] == pytest.approx(1.0)
    # cost 2 x 1 + 1 x 5 = 7, less than big alone (3 instances = 15)
    assert sum(o.prices["on-demand"] * n for o, _, n in chosen) == pytest.approx(7.0)  # type: ignore[operator]


def test_mix_is_infeasible_when_no_option_serves_a_bucket() -> None:
    assert solve_mix([_option("small.x", [4.0, 0.0], price=1.0)], np.array([1.0, 1.0])) is None


def test_reserved_covers_instances_busy_beyond_the_break_even_share() -> None:
    spec = PlanSpec(purchase=["on-demand", "reserved-1y"], startup_s=0)
    rates = np.array([[1.0]] * 12 + [[3.0]] * 12)  # 1 replica half the day, 3 the other half
    cheap = plan_pool(spec, _option("a.x", [1.0], price=1.0, reserved_1y=0.45), rates, np.ones(1))
    assert cheap.break_even["reserved-1y"] == 0.45 and cheap.reserved == 3  # busy 50% of hours: beats 45%
    dearer = plan_pool(spec, _option("a.x", [1.0], price=1.0, reserved_1y=0.6), rates, np.ones(1))
    assert dearer.reserved == 1  # only the always-on instance is busy 60% of hours
    daily = 1 * 0.6 * 24 + 2 * 1.0 * 12
    assert dearer.monthly_usd == pytest.approx(daily * DAYS_PER_MONTH)
    missing = plan_pool(spec, _option("a.x", [1.0], price=1.0), rates, np.ones(1))
    assert missing.reserved == 0 and missing.break_even["reserved-1y"] is None
    assert any("no reserved price" in note for note in missing.notes)


def test_reserved_is_not_bought_where_spot_is_cheaper() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot", "reserved-1y"], spot_max_share=0.5,
                    spot_interruptions_per_hour=0.0, startup_s=0)
    pool = plan_pool(spec, _option("a.x", [1.0], price=10.0, spot=1.0, reserved_1y=6.0), np.array([[4.0]] * 24),
                     np.ones(1))
    assert pool.reserved == 0 and pool.spot.max() == 2 and pool.on_demand.max() == 2  # 22 $/h beats 24 (reserved)
    assert pool.hourly_usd[0] == pytest.approx(22.0)


def test_spot_spares_cover_instances_being_replaced() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot"], spot_max_share=1.0, spot_interruptions_per_hour=0.5,
                    startup_s=1800)
    pool = plan_pool(spec, _option("a.x", [1.0], price=10.0, spot=1.0), np.array([[8.0]] * 24), np.ones(1))
    # 8 spot instances x 0.5 interruptions/h x 0.5 h to replace = 2 expected down at once
    assert pool.spot_spares.max() == 2 and pool.spot.max() == 10 and pool.on_demand.max() == 0


def test_cold_start_capacity_is_launched_and_paid_before_the_rise() -> None:
    rates = np.array([[1.0]] * 12 + [[2.0]] * 12)
    on_time = plan_pool(PlanSpec(purchase=["on-demand"], startup_s=0), _option("a.x", [1.0], 1.0), rates,
                        np.ones(1))
    early = plan_pool(PlanSpec(purchase=["on-demand"], startup_s=1800), _option("a.x", [1.0], 1.0), rates,
                      np.ones(1))
    assert early.hourly_usd[11] - on_time.hourly_usd[11] == pytest.approx(0.5)  # one instance, half an hour early
    assert early.hourly_usd.sum() - on_time.hourly_usd.sum() == pytest.approx(0.5)


def test_instances_are_whole_even_when_replicas_share_them() -> None:
    rates = np.array([[3.0]] * 24)
    pool = plan_pool(PlanSpec(purchase=["on-demand"]), _option("p.x", [1.0], 8.0, per_instance=8), rates,
                     np.ones(1))
    assert pool.replicas.max() == 3 and pool.instances.max() == 1 and pool.hourly_usd[0] == pytest.approx(8.0)


def test_verification_adds_replicas_when_screening_was_optimistic() -> None:
    from fleetwise.catalog import load_catalog
    from fleetwise.models import load_model
    from fleetwise.perf.efficiency import bundled_calibration
    from fleetwise.plan.capacity import build_options
    from fleetwise.plan.costing import Deployment
    from fleetwise.plan.demand import build_demand
    from fleetwise.plan.verify import verify_peak

    spec = PlanSpec(instances=["g6e.xlarge"], dtypes=["bf16"], verify=False)
    model, catalog = load_model(spec.model), load_catalog()
    demand = build_demand(spec, model)
    options, _ = build_options(spec, model, demand, catalog, bundled_calibration())
    starved = buy_pool(spec, options[0], np.ones(len(demand.buckets)), np.ones(24, dtype=np.int64))
    grown, _, added = verify_peak(spec, model, Deployment([starved], "single"), demand, catalog,
                                      bundled_calibration())
    assert added >= 1 and grown.pools[0].replicas.max() == 1 + added
    assert grown.monthly_usd > Deployment([starved], "single").monthly_usd


def test_plan_file_round_trip(tmp_path: Path) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text("duration_s: 3600\narrivals: {rate_per_s: 2}\nprompt_tokens: {mean: 500}\n"
                        "output_tokens: {mean: 100}\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("model: Llama-3.1-8B-Instruct\nworkload: w.yaml\nslo: {ttft_p95_ms: 500}\n"
                         "purchase: [on-demand]\ninstances: [g6e]\n")
    spec = load_plan_file(plan_file)
    assert spec.workload == str(tmp_path / "w.yaml") and spec.slo.ttft_p95_ms == 500
    result = plan(spec.replace(verify=False))
    assert result["question"]["peak_rate_per_s"] == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize("text, message", [
    ("model: [1, 2]\n", "model"),
    ("purchase: [reserved-1y]\n", "reserved capacity covers only"),
    ("rate_per_s: 3\n", "needs input_tokens"),
    ("what_if: [traffic=lots]\n", "not understood"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_plan_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises((DataFileError, FleetwiseError)) as info:
        load_plan_file(path)
    assert message in str(info.value)


def test_parsers() -> None:
    assert parse_slo("ttft_p95=800ms") == ("ttft_p95_ms", 800.0)
    assert parse_slo("tpot_p95=0.06s") == ("tpot_p95_ms", pytest.approx(60.0))
    assert parse_what_if("spot_price=+30%") == ("spot_price_scale", pytest.approx(1.3))
    assert parse_what_if("traffic=2x") == ("traffic_scale", 2.0)
    for bad in ("ttft=1", "ttft_p95=fast", "ttft_p95=0ms"):
        with pytest.raises(FleetwiseError):
            parse_slo(bad)
    with pytest.raises(FleetwiseError):
        parse_what_if("spot_price=-100%")


def test_impossible_slo_says_what_came_closest() -> None:
    with pytest.raises(FleetwiseError, match=r"no option serves .* closest"):
        plan(PlanSpec(slo={"ttft_p95_ms": 1, "tpot_p95_ms": 1}, verify=False))


def test_the_example_plan_file_loads() -> None:
    spec = load_plan_file(Path(__file__).parent.parent / "examples" / "plan-70b.yaml")
    assert spec.model == LLAMA_70B and spec.what_if == ["traffic=2x", "spot_price=+30%"]
    assert set(spec.instances) == {"inf2", "trn1", "g6e", "p4d", "p5"}


def test_recommendation_is_the_cheapest_option_that_passed_every_check() -> None:
    # Inferentia-only: several options pass at the peak but fail an hour of the day, so the choice must come
    # after the day check, and comparisons must use simulated (grown) costs
    result = plan(PlanSpec(instances=["inf2"]))
    rec = result["recommendation"]
    failed = {r["option"] for r in result["rejected"] if r["category"] == "misses SLO in simulation"}
    for option in result["options"]:
        if option["verified"] is not None and option["verified"]["passed"] and option["name"] not in failed:
            assert rec["monthly_usd"] <= option["monthly_usd"]
    comparison = result["comparison"]
    for key in ("savings_vs_gpu_only_pct", "savings_vs_neuron_only_pct"):
        assert comparison[key] is None or comparison[key] >= 0
    assert rec["day_passed"] is True


def test_day_check_leaves_the_deployment_it_was_given_unchanged() -> None:
    from fleetwise.catalog import load_catalog
    from fleetwise.models import load_model
    from fleetwise.perf.efficiency import bundled_calibration
    from fleetwise.plan.capacity import build_options
    from fleetwise.plan.costing import Deployment
    from fleetwise.plan.demand import build_demand
    from fleetwise.plan.verify import verify_day

    spec = PlanSpec(instances=["g6e.xlarge"], dtypes=["bf16"])
    model, catalog = load_model(spec.model), load_catalog()
    demand = build_demand(spec, model)
    options, _ = build_options(spec, model, demand, catalog, bundled_calibration())
    given = np.ones(24, dtype=np.int64)
    starved = buy_pool(spec, options[0], np.ones(len(demand.buckets)), given)
    grown, day = verify_day(spec, model, Deployment([starved], "single"), demand, catalog, bundled_calibration())
    assert (starved.replicas == 1).all() and (given == 1).all()  # neither the pool nor the caller's array changed
    assert grown.pools[0].replicas.max() > 1 and all(c.passed for c in day)
    assert grown.monthly_usd > starved.monthly_usd


def test_imported_commitment_prices_buy_the_always_on_base(tmp_path: Path) -> None:
    # made-up test prices (not real AWS figures): a 3-year term at 30% of on-demand for g6e.xlarge
    from fleetwise.catalog import load_catalog

    on_demand = load_catalog().usd_per_hour("g6e.xlarge")
    assert on_demand is not None
    prices = tmp_path / "prices.csv"
    prices.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                      f"g6e.xlarge,us-east-1,reserved-3y,{on_demand * 0.3:.6f},test fixture (made-up),2026-11-25,\n")
    spec = PlanSpec(instances=["g6e.xlarge"], dtypes=["fp8"], catalog=[str(prices)], verify=False)
    pool = plan(spec)["recommendation"]["pools"][0]
    assert pool["break_even_utilization"]["reserved-3y"] == pytest.approx(0.3, abs=1e-4)
    # at 30% of on-demand every instance busy more than 30% of the hours is reserved: the base, and more
    assert pool["reserved_term"] == "reserved-3y"
    assert pool["instances_min"] <= pool["reserved_instances"] <= pool["instances_peak"]
    assert "reserved-3y" in pool["purchase"]
    without = plan(spec.replace(purchase=["on-demand", "spot"]))["recommendation"]
    assert without["pools"][0]["reserved_instances"] == 0
    assert plan(spec)["recommendation"]["monthly_usd"] < without["monthly_usd"]


def test_comparisons_quote_simulated_options(default_plan: dict[str, Any]) -> None:
    by_name = {o["name"]: o for o in default_plan["options"]}
    for key in ("best_gpu_only", "best_neuron_only"):
        compared = default_plan["comparison"][key]
        assert compared is not None
        option = by_name[compared["name"]]
        assert option["verified"] is not None and option["verified"]["passed"]
        assert option["monthly_usd"] == compared["monthly_usd"]


def test_multi_turn_traffic_is_measured_after_conversations_are_under_way(tmp_path: Path) -> None:
    from fleetwise.models import load_model
    from fleetwise.plan.demand import build_demand

    workload = tmp_path / "chat.yaml"
    workload.write_text("duration_s: 3600\narrivals: {rate_per_s: 1}\nprompt_tokens: {mean: 300}\n"
                        "output_tokens: {mean: 100}\nsessions: {turns: {mean: 5}, think_time_s: 30, "
                        "user_tokens: {mean: 50}}\n")
    demand = build_demand(PlanSpec(workload=str(workload)), load_model("meta-llama/Llama-3.1-8B-Instruct"))
    # one conversation a second, five turns each: five requests a second once conversations overlap
    assert demand.peak_rate == pytest.approx(5.0, rel=0.15)


def test_requests_beyond_the_context_are_left_out_of_sizing(tmp_path: Path) -> None:
    from fleetwise.models import load_model
    from fleetwise.plan.demand import build_demand

    workload = tmp_path / "long.yaml"
    workload.write_text("duration_s: 3600\narrivals: {rate_per_s: 2}\n"
                        "prompt_tokens: {distribution: lognormal, mean: 40000, std: 40000, maximum: 400000}\n"
                        "output_tokens: {mean: 100}\n")
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    demand = build_demand(PlanSpec(workload=str(workload)), model)
    assert 0 < demand.too_long_share < 0.5
    context = demand.peak_requests.prompt_tokens + demand.peak_requests.output_tokens
    assert context.max() <= model.max_position_embeddings
    assert (demand.buckets.prompt_tokens + demand.buckets.output_tokens).max() <= model.max_position_embeddings


def test_reserved_instances_pay_no_launch_lead() -> None:
    spec = PlanSpec(purchase=["on-demand", "reserved-1y"], startup_s=1800)
    pool = plan_pool(spec, _option("a.x", [1.0], price=1.0, reserved_1y=0.3), np.array([[1.0]] * 12 + [[2.0]] * 12),
                     np.ones(1))
    assert pool.reserved == 2 and pool.on_demand.max() == 0  # both busy >= 50% of hours > 30% break-even
    assert pool.cost_by_purchase["on-demand"] == 0.0
    assert pool.hourly_usd == pytest.approx(np.full(24, 0.6))
