"""Sizing and buying pools: replicas per hour, whole instances, launch lead, reserved base, spot share and spares."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.plan.costing import DAYS_PER_MONTH, HOURS_PER_MONTH, Deployment, buy_pool, plan_pool, replicas_by_hour
from fleetwise.plan.spec import PlanSpec
from tests.plan.synthetic import option

HALF_AND_HALF = np.array([[1.0]] * 12 + [[3.0]] * 12)  # 1 replica's load half the day, 3 the other half


def test_replicas_cover_each_hours_load_rounded_up_and_never_drop_to_zero() -> None:
    two_buckets = option("a.x", [2.0, 0.5], price=1.0)
    rates = np.zeros((24, 2))
    rates[5] = [3.0, 0.25]  # 1.5 + 0.5 = 2 replicas' load, exactly
    rates[6] = [3.0, 0.3]  # a little more: a third replica
    replicas = replicas_by_hour(two_buckets, rates)
    assert replicas[5] == 2 and replicas[6] == 3
    assert replicas[0] == 1  # an idle hour keeps one replica up
    assert replicas.dtype.kind == "i"


def test_load_on_a_bucket_the_option_cannot_serve_is_an_error() -> None:
    with pytest.raises(ValueError, match="no capacity"):
        replicas_by_hour(option("short.x", [4.0, 0.0], price=1.0), np.array([[1.0, 0.1]] * 24))


def test_only_the_share_given_to_a_pool_is_sized() -> None:
    spec = PlanSpec(purchase=["on-demand"], startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0, 1.0], price=1.0), np.array([[4.0, 4.0]] * 24), np.array([0.5, 0.0]))
    assert (pool.replicas == 2).all()  # half of the first bucket's 4 requests/s; none of the second


def test_reserved_covers_instances_busy_beyond_the_break_even_share() -> None:
    spec = PlanSpec(purchase=["on-demand", "reserved-1y"], startup_s=0)
    cheap = plan_pool(spec, option("a.x", [1.0], price=1.0, reserved_1y=0.45), HALF_AND_HALF, np.ones(1))
    assert cheap.break_even["reserved-1y"] == 0.45 and cheap.reserved == 3  # busy 50% of hours: beats 45%
    dearer = plan_pool(spec, option("a.x", [1.0], price=1.0, reserved_1y=0.6), HALF_AND_HALF, np.ones(1))
    assert dearer.reserved == 1  # only the always-on instance is busy 60% of hours
    daily = 1 * 0.6 * 24 + 2 * 1.0 * 12
    assert dearer.monthly_usd == pytest.approx(daily * DAYS_PER_MONTH)
    missing = plan_pool(spec, option("a.x", [1.0], price=1.0), HALF_AND_HALF, np.ones(1))
    assert missing.reserved == 0 and missing.break_even["reserved-1y"] is None
    assert any("no reserved price" in note for note in missing.notes)


def test_the_cheaper_commitment_term_is_the_one_bought() -> None:
    spec = PlanSpec(purchase=["on-demand", "reserved-1y", "reserved-3y"], startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=1.0, reserved_1y=0.6, reserved_3y=0.4), HALF_AND_HALF,
                     np.ones(1))
    assert pool.reserved_term == "reserved-3y" and pool.reserved == 3
    assert pool.break_even == {"reserved-1y": 0.6, "reserved-3y": 0.4}  # both listed for the report
    assert pool.cost_by_purchase["reserved-3y"] == pytest.approx(3 * 0.4 * HOURS_PER_MONTH)
    assert pool.purchases() == ["reserved-3y"]


def test_savings_plans_are_priced_like_reserved_instances() -> None:
    spec = PlanSpec(purchase=["on-demand", "savings-plan-1y"], startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=1.0, savings_plan_1y=0.3), HALF_AND_HALF, np.ones(1))
    assert pool.reserved_term == "savings-plan-1y" and pool.reserved == 3 and pool.on_demand.max() == 0
    assert pool.hourly_usd == pytest.approx(np.full(24, 0.9))


def test_reserved_is_not_bought_where_spot_is_cheaper() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot", "reserved-1y"], spot_max_share=0.5,
                    spot_interruptions_per_hour=0.0, startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=10.0, spot=1.0, reserved_1y=6.0), np.array([[4.0]] * 24),
                     np.ones(1))
    assert pool.reserved == 0 and pool.spot.max() == 2 and pool.on_demand.max() == 2  # 22 $/h beats 24 (reserved)
    assert pool.hourly_usd[0] == pytest.approx(22.0)


def test_spot_dearer_than_on_demand_is_never_bought() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot"], spot_interruptions_per_hour=0.0, startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=1.0, spot=1.5), np.array([[4.0]] * 24), np.ones(1))
    assert pool.spot.max() == 0 and pool.on_demand.max() == 4 and pool.purchases() == ["on-demand"]


def test_spot_spares_cover_instances_being_replaced() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot"], spot_max_share=1.0, spot_interruptions_per_hour=0.5,
                    startup_s=1800)
    pool = plan_pool(spec, option("a.x", [1.0], price=10.0, spot=1.0), np.array([[8.0]] * 24), np.ones(1))
    # 8 spot instances x 0.5 interruptions/h x 0.5 h to replace = 2 expected down at once
    assert pool.spot_spares.max() == 2 and pool.spot.max() == 10 and pool.on_demand.max() == 0


def test_spot_keeps_an_on_demand_floor_of_the_allowed_share() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot"], spot_max_share=0.5, spot_interruptions_per_hour=0.0,
                    startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=10.0, spot=1.0), np.array([[5.0]] * 24), np.ones(1))
    assert pool.spot.max() == 2 and pool.on_demand.max() == 3  # at most half of the 5 on spot, rounded down


def test_an_option_priced_only_on_spot_runs_all_on_spot_and_says_so() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot"], spot_interruptions_per_hour=0.0, startup_s=0)
    pool = plan_pool(spec, option("a.x", [1.0], price=None, spot=2.0), np.array([[3.0]] * 24), np.ones(1))
    assert pool.on_demand.max() == 0 and pool.spot.max() == 3
    assert any("spot only" in note for note in pool.notes)


def test_cold_start_capacity_is_launched_and_paid_before_the_rise() -> None:
    rates = np.array([[1.0]] * 12 + [[2.0]] * 12)
    on_time = plan_pool(PlanSpec(purchase=["on-demand"], startup_s=0), option("a.x", [1.0], 1.0), rates, np.ones(1))
    early = plan_pool(PlanSpec(purchase=["on-demand"], startup_s=1800), option("a.x", [1.0], 1.0), rates, np.ones(1))
    assert early.hourly_usd[11] - on_time.hourly_usd[11] == pytest.approx(0.5)  # one instance, half an hour early
    assert early.hourly_usd.sum() - on_time.hourly_usd.sum() == pytest.approx(0.5)


def test_neuron_compile_time_lengthens_the_launch_lead_of_compiled_options_only() -> None:
    rates = np.array([[1.0]] * 12 + [[2.0]] * 12)
    spec = PlanSpec(purchase=["on-demand"], startup_s=0, compile_s=1800)
    compiled = plan_pool(spec, option("inf.x", [1.0], 1.0, compiled=True, kind="neuron"), rates, np.ones(1))
    gpu = plan_pool(spec, option("gpu.x", [1.0], 1.0), rates, np.ones(1))
    assert compiled.hourly_usd.sum() - gpu.hourly_usd.sum() == pytest.approx(0.5)


def test_reserved_instances_pay_no_launch_lead() -> None:
    spec = PlanSpec(purchase=["on-demand", "reserved-1y"], startup_s=1800)
    pool = plan_pool(spec, option("a.x", [1.0], price=1.0, reserved_1y=0.3), np.array([[1.0]] * 12 + [[2.0]] * 12),
                     np.ones(1))
    assert pool.reserved == 2 and pool.on_demand.max() == 0  # both busy >= 50% of hours > 30% break-even
    assert pool.cost_by_purchase["on-demand"] == 0.0
    assert pool.hourly_usd == pytest.approx(np.full(24, 0.6))


def test_instances_are_whole_even_when_replicas_share_them() -> None:
    rates = np.array([[3.0]] * 24)
    pool = plan_pool(PlanSpec(purchase=["on-demand"]), option("p.x", [1.0], 8.0, per_instance=8), rates, np.ones(1))
    assert pool.replicas.max() == 3 and pool.instances.max() == 1 and pool.hourly_usd[0] == pytest.approx(8.0)
    nine = buy_pool(PlanSpec(purchase=["on-demand"]), pool.option, np.ones(1), np.full(24, 9))
    assert nine.instances.max() == 2  # a ninth replica needs a second instance


def test_buying_keeps_its_own_copy_of_the_replica_counts() -> None:
    given = np.ones(24, dtype=np.int64)
    pool = buy_pool(PlanSpec(purchase=["on-demand"]), option("a.x", [1.0], 1.0), np.ones(1), given)
    given[3] = 7
    assert pool.replicas[3] == 1


def test_costs_by_purchase_add_up_to_the_monthly_cost() -> None:
    spec = PlanSpec(purchase=["on-demand", "spot", "reserved-1y"], startup_s=600)
    pool = plan_pool(spec, option("a.x", [1.0], price=10.0, spot=3.0, reserved_1y=5.0),
                     np.array([[2.0]] * 8 + [[9.0]] * 16), np.ones(1))
    assert sum(pool.cost_by_purchase.values()) == pytest.approx(pool.monthly_usd)
    assert set(pool.purchases()) <= {"on-demand", "spot", "reserved-1y"} and pool.purchases()


def test_a_deployment_adds_up_its_pools() -> None:
    spec = PlanSpec(purchase=["on-demand"], startup_s=0)
    a = plan_pool(spec, option("a.x", [1.0, 1.0], 1.0), np.array([[2.0, 2.0]] * 24), np.array([1.0, 0.0]))
    b = plan_pool(spec, option("b.x", [1.0, 1.0], 3.0), np.array([[2.0, 2.0]] * 24), np.array([0.0, 1.0]))
    both = Deployment([a, b], "mix")
    assert both.monthly_usd == pytest.approx(a.monthly_usd + b.monthly_usd)
    assert both.hourly_usd() == pytest.approx(a.hourly_usd + b.hourly_usd)
    assert both.name == f"{a.option.name} + {b.option.name}"
