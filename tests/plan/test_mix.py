"""The Mélange mix: the shortlist offered to the solver, the solver's choices and its limits, hour levels."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fleetwise.plan.mix import (
    HOUR_LEVELS,
    MAX_POOLS,
    MIP_GAP,
    SHORTLIST_PER_BUCKET,
    SHORTLIST_PER_FAMILY,
    TIME_LIMIT_S,
    hour_levels,
    instance_price,
    shortlist,
    solve_milp,
    solve_mix,
)
from tests.plan.synthetic import option


def test_mix_sends_each_bucket_to_the_cheapest_capable_pool() -> None:
    cheap_short_only = option("small.x", [4.0, 0.0], price=1.0)  # cannot serve long prompts within the SLO
    big = option("big.x", [4.0, 4.0], price=5.0)
    rates = np.array([8.0, 1.0])  # mostly short requests
    chosen = solve_mix([cheap_short_only, big], rates)
    assert chosen is not None
    by_name = {o.instance: (share, n) for o, share, n in chosen}
    assert by_name["small.x"][1] == 2 and by_name["small.x"][0][1] == 0.0  # two small ones for the short bucket
    assert by_name["big.x"][1] == 1 and by_name["big.x"][0][1] == pytest.approx(1.0)
    # cost 2 x 1 + 1 x 5 = 7, less than big alone (3 instances = 15)
    assert sum(o.prices["on-demand"] * n for o, _, n in chosen) == pytest.approx(7.0)  # type: ignore[operator]


def test_every_bucket_is_served_in_full() -> None:
    options = [option("a.x", [3.0, 1.0, 0.0], 1.0), option("b.x", [1.0, 2.0, 2.0], 1.5),
               option("c.x", [0.0, 0.0, 5.0], 2.0)]
    chosen = solve_mix(options, np.array([[6.0, 2.0, 4.0]] * 24))
    assert chosen is not None
    served = np.sum([share for _, share, _ in chosen], axis=0)
    assert served == pytest.approx(np.ones(3), abs=1e-6)
    for chosen_option, share, _ in chosen:
        assert (share[chosen_option.capacity <= 0] == 0).all()  # nothing sent where it misses the SLO


def test_a_pool_cheaper_for_everything_is_chosen_alone() -> None:
    cheap = option("cheap.x", [4.0, 4.0], price=1.0)
    dear = option("dear.x", [4.0, 4.0], price=3.0)
    chosen = solve_mix([dear, cheap], np.array([[4.0, 4.0]] * 24))
    assert chosen is not None and [o.instance for o, _, _ in chosen] == ["cheap.x"]


def test_mix_is_infeasible_when_no_option_serves_a_bucket() -> None:
    assert solve_mix([option("small.x", [4.0, 0.0], price=1.0)], np.array([1.0, 1.0])) is None


def test_an_option_without_any_price_is_not_solved() -> None:
    assert solve_mix([option("free.x", [1.0], price=None)], np.array([1.0])) is None


def test_at_most_max_pools_are_combined() -> None:
    buckets = MAX_POOLS + 1
    specialists = [option(f"s{b}.x", [1.0 if c == b else 0.0 for c in range(buckets)], 1.0) for b in range(buckets)]
    assert solve_mix(specialists, np.ones(buckets)) is None  # it would take one pool per bucket
    allrounder = option("all.x", [0.5] * buckets, 4.0)
    chosen = solve_mix([*specialists, allrounder], np.ones(buckets))
    assert chosen is not None and len(chosen) <= MAX_POOLS


def test_one_batch_setting_per_shape() -> None:
    # the same shape at two batch sizes, each the best at one bucket: only one of them may run
    low = option("g.x", [4.0, 0.5], 1.0, max_seqs=8)
    high = option("g.x", [0.5, 4.0], 1.0, max_seqs=64)
    other = option("h.x", [1.0, 1.0], 1.2)
    chosen = solve_mix([low, high, other], np.array([[4.0, 4.0]] * 24))
    assert chosen is not None
    assert sum(o.shape == "g.x vllm TP=1 bf16" for o, _, _ in chosen) <= 1


def test_spot_prices_blend_in_with_the_allowed_share() -> None:
    assert instance_price(option("a.x", [1.0], 10.0)) == 10.0
    assert instance_price(option("a.x", [1.0], 10.0, spot=2.0), spot_share=0.5) == pytest.approx(6.0)
    assert instance_price(option("a.x", [1.0], 10.0, spot=12.0), spot_share=0.5) == 10.0  # dearer spot is ignored
    assert instance_price(option("a.x", [1.0], None, spot=2.0)) == 2.0  # spot only
    assert math.isinf(instance_price(option("a.x", [1.0], None)))


def test_shortlist_keeps_the_cheapest_per_family_by_load_not_by_instance_price() -> None:
    rates = np.array([1.0])
    # per unit of load: big 8 $/h / 8 replicas = 1, small 2, mid 3 (cheaper per instance than big, dearer per load)
    big = option("f.big", [1.0], 8.0, per_instance=8)
    small = option("f.small", [1.0], 2.0)
    mid = option("f.mid", [1.0], 3.0)
    kept = shortlist([mid, small, big], rates)
    assert SHORTLIST_PER_FAMILY == 2
    assert [o.instance for o in kept] == ["f.small", "f.big"]  # the input order is kept


def test_shortlist_drops_a_pricier_option_of_the_same_family() -> None:
    rates = np.array([2.0, 1.0])
    family = [option(f"a.{i}", [2.0, 2.0], 1.0 + i) for i in range(SHORTLIST_PER_FAMILY + 1)]
    others = [option(f"o{i}.x", [2.0, 2.0], 0.5 + 0.1 * i) for i in range(SHORTLIST_PER_BUCKET)]  # cheaper still
    kept = {o.instance for o in shortlist([*family, *others], rates)}
    assert {f"a.{i}" for i in range(SHORTLIST_PER_FAMILY)} <= kept  # the cheapest of each family survive
    assert f"a.{SHORTLIST_PER_FAMILY}" not in kept


def test_shortlist_keeps_a_bucket_specialist_from_an_otherwise_expensive_family() -> None:
    rates = np.array([4.0, 0.5])
    cheap = [option(f"cheap.{i}", [4.0, 1.0], 1.0 + 0.1 * i) for i in range(3)]
    # family "pricey": its all-rounders cost ten times as much; its specialist is the best at the long bucket
    pricey = [option(f"pricey.{i}", [4.0, 1.0], 10.0 + i) for i in range(SHORTLIST_PER_FAMILY)]
    specialist = option("pricey.long", [0.0, 20.0], 10.0)
    kept = shortlist([*cheap, *pricey, specialist], rates)
    names = {o.instance for o in kept}
    assert "pricey.long" in names  # not among its family's cheapest for the whole load, but the best at one bucket
    assert {o.instance for o in pricey} <= names  # the family's cheapest still get their places
    assert "cheap.2" not in names


def test_hours_are_grouped_into_load_levels_each_at_its_busiest() -> None:
    hourly = np.arange(1.0, 25.0)[:, None] * np.array([[1.0, 0.5]])  # 24 rising hours, two buckets
    levels, hours = hour_levels(hourly)
    assert len(levels) == HOUR_LEVELS and hours.sum() == 24
    assert levels[-1] == pytest.approx(hourly.max(axis=0))  # the busiest level carries the peak
    assert (np.diff(levels[:, 0]) > 0).all()  # levels rise with load
    per_level = 24 // HOUR_LEVELS
    assert levels[0] == pytest.approx(hourly[per_level - 1])  # the quietest level at its own busiest hour


@pytest.mark.parametrize("seed", range(8))
def test_the_solver_answers_as_scipy_milp_does(seed: int) -> None:
    from scipy.optimize import Bounds, LinearConstraint, milp

    rng = np.random.default_rng(seed)
    n_vars, n_rows = int(rng.integers(4, 14)), int(rng.integers(2, 9))
    cost = rng.uniform(0.5, 3.0, n_vars)
    matrix = np.where(rng.random((n_rows, n_vars)) < 0.6, rng.uniform(-1.0, 3.0, (n_rows, n_vars)), 0.0)
    low, high = rng.uniform(0.0, 4.0, n_rows), np.full(n_rows, np.inf)
    high[::3] = low[::3] + 5.0
    upper = np.where(rng.random(n_vars) < 0.3, 1.0, np.inf)
    integrality = (rng.random(n_vars) < 0.5).astype(np.int64)
    ours = solve_milp(cost, matrix, low, high, upper, integrality)
    theirs = milp(cost, constraints=[LinearConstraint(matrix, low, high)], integrality=integrality,
                  bounds=Bounds(0.0, upper), options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": MIP_GAP})
    assert (ours is None) == (theirs.x is None)
    if ours is not None:
        assert cost @ ours == pytest.approx(cost @ theirs.x, rel=MIP_GAP)
        assert np.all(matrix @ ours >= low - 1e-6) and np.all(matrix @ ours <= high + 1e-6)


def test_solving_a_mix_leaves_scipy_optimize_unloaded() -> None:
    code = ("import sys, numpy as np; from fleetwise.plan.mix import solve_mix; from tests.plan.synthetic import "
            "option; assert solve_mix([option('a.x', [2.0], 1.0), option('b.x', [3.0], 1.2)], np.array([5.0])); "
            "print('scipy.optimize' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"  # half a second of imports that every plan used to pay
