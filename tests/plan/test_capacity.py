"""Options and their capacity: which shapes are offered or rejected (with a reason), and what a replica carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.plan.capacity import GRID_POINTS, MAX_COMPILED_BATCH, Option, build_options
from fleetwise.plan.demand import Demand, build_demand
from fleetwise.plan.result import Rejected
from fleetwise.plan.spec import PlanSpec, Slos
from tests.sim.builders import pool_spec, replica_capacity

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


@dataclass(frozen=True)
class Screened:
    spec: PlanSpec
    demand: Demand
    options: list[Option]
    rejected: list[Rejected]


def _screen(spec: PlanSpec, catalog: Catalog, calibration: CalibrationTable) -> Screened:
    model = load_model(spec.model)
    demand = build_demand(spec, model)
    return Screened(spec, demand, *build_options(spec, model, demand, catalog, calibration))


@pytest.fixture(scope="module")
def default(catalog: Catalog, calibration: CalibrationTable) -> Screened:
    """Every shape in the catalog for the default question (~0.2 s)."""
    return _screen(PlanSpec(), catalog, calibration)


@pytest.fixture(scope="module")
def tight(catalog: Catalog, calibration: CalibrationTable) -> Screened:
    """The same question with a 150 ms p95 TTFT target."""
    return _screen(PlanSpec(slo={"ttft_p95_ms": 150, "tpot_p95_ms": 100}), catalog, calibration)


def test_every_shape_is_either_an_option_or_rejected_with_a_category_and_a_reason(default: Screened) -> None:
    assert default.options
    categories = {r.category for r in default.rejected}
    assert categories <= {"doesn't fit", "engine can't run it", "no price", "not predictable"}
    assert {"doesn't fit", "engine can't run it"} <= categories
    assert all(r.reason for r in default.rejected)
    assert not {o.shape for o in default.options} & {r.option for r in default.rejected}


def test_fp8_on_inferentia2_is_refused_by_the_engine(default: Screened) -> None:
    refused = [r for r in default.rejected if r.option.startswith("inf2.") and r.option.endswith(" fp8")]
    assert refused and all(r.category == "engine can't run it" for r in refused)
    assert not [o for o in default.options if o.family == "inf2" and o.dtype == "fp8"]


def test_model_too_large_for_any_single_accelerator_is_only_placed_with_tp(catalog: Catalog,
                                                                          calibration: CalibrationTable) -> None:
    # 141 GB of bf16 weights: more than any single GPU (80 GB H100) or NeuronCore holds
    screened = _screen(PlanSpec(model=LLAMA_70B, instances=["inf2", "g6e", "p4d", "p5"], dtypes=["bf16"]), catalog,
                       calibration)
    assert screened.options
    assert all(o.tp > 1 for o in screened.options)
    tp1 = [r for r in screened.rejected if " TP=1 bf16" in r.option]
    assert tp1 and all(r.category == "doesn't fit" for r in tp1)


def test_only_the_requested_families_and_types_are_screened(catalog: Catalog, calibration: CalibrationTable) -> None:
    screened = _screen(PlanSpec(instances=["inf2", "g6e.xlarge"]), catalog, calibration)
    assert {o.instance for o in screened.options if o.family == "g6e"} == {"g6e.xlarge"}
    assert {o.family for o in screened.options} == {"inf2", "g6e"}
    assert all(r.option.split(" ")[0] == "g6e.xlarge" or r.option.startswith("inf2.") for r in screened.rejected)


def test_neuron_options_come_in_power_of_two_compiled_batches(default: Screened) -> None:
    compiled = [o for o in default.options if o.compiled]
    assert compiled and all(o.kind == "neuron" for o in compiled)
    for o in compiled:
        assert o.max_seqs & (o.max_seqs - 1) == 0 and o.max_seqs <= MAX_COMPILED_BATCH
        assert o.name.endswith(f"batch={o.max_seqs}")
    shapes = {o.shape for o in compiled}
    assert len(compiled) > len(shapes)  # several batch settings per shape
    gpu = [o for o in default.options if not o.compiled]
    assert gpu and all(o.name.endswith(f"max_seqs={o.max_seqs}") for o in gpu)


def _targets(spec: PlanSpec) -> tuple[float, float]:
    return (spec.slo.ttft_p95_ms / 1e3 * spec.latency_headroom, spec.slo.tpot_p95_ms / 1e3 * spec.latency_headroom)


def test_capacity_is_the_highest_load_before_latency_first_crosses_the_screening_target(default: Screened) -> None:
    ttft_target, tpot_target = _targets(default.spec)
    for o in default.options:
        assert o.curve_rate.shape == (len(default.demand.buckets), GRID_POINTS)
        for b, capacity in enumerate(o.capacity):
            if capacity <= 0:
                continue
            within = o.curve_rate[b] <= capacity + 1e-12
            assert capacity in o.curve_rate[b]  # a point of the priced grid
            assert (o.curve_ttft_s[b][within] <= ttft_target + 1e-12).all()
            assert (np.nan_to_num(o.curve_tpot_s[b][within]) <= tpot_target + 1e-12).all()


def test_options_missing_a_bucket_say_why(default: Screened, tight: Screened) -> None:
    for screened in (default, tight):
        for o in screened.options:
            assert bool(o.slo_miss) == bool((o.capacity <= 0).any())
    missed = [o.slo_miss for o in tight.options if o.slo_miss]
    assert missed and any("misses the 150 ms SLO by x" in m for m in missed)
    assert all(m.startswith(("TTFT ", "TPOT ")) and "with one request in flight" in m for m in missed)


def test_a_tighter_slo_never_raises_capacity(default: Screened, tight: Screened) -> None:
    loose = {o.name: o.capacity for o in default.options}
    assert {o.name for o in tight.options} == set(loose)  # screening keeps the shapes; the planner drops misses
    assert all((o.capacity <= loose[o.name] + 1e-12).all() for o in tight.options)
    assert any((o.capacity < loose[o.name]).any() for o in tight.options)


def test_less_latency_headroom_never_raises_capacity(default: Screened, catalog: Catalog,
                                                     calibration: CalibrationTable) -> None:
    careful = _screen(PlanSpec(latency_headroom=0.5), catalog, calibration)
    loose = {o.name: o.capacity for o in default.options}
    assert all((o.capacity <= loose[o.name] + 1e-12).all() for o in careful.options)
    assert sum(float(o.capacity.sum()) for o in careful.options) < sum(float(c.sum()) for c in loose.values())


def test_the_spot_price_what_if_scales_spot_prices_only(default: Screened, catalog: Catalog,
                                                        calibration: CalibrationTable) -> None:
    dearer = {o.name: o.prices for o in _screen(PlanSpec(spot_price_scale=1.3), catalog, calibration).options}
    for o in default.options:
        assert dearer[o.name]["on-demand"] == o.prices["on-demand"]
        if o.prices["spot"] is not None:
            assert dearer[o.name]["spot"] == pytest.approx(o.prices["spot"] * 1.3)


def test_screened_latency_rises_with_load_and_falls_with_replicas(default: Screened) -> None:
    rates = default.demand.bucket_rates[int(np.argmax(default.demand.hourly_rate))]
    o = next(o for o in default.options if o.name == "g6e.xlarge vllm TP=1 fp8 max_seqs=128")
    one = o.latency_at(rates, 1)
    two = o.latency_at(rates, 2)
    light = o.latency_at(rates * 0.25, 1)
    assert two[0] <= one[0] and two[1] <= one[1]
    assert light[0] <= one[0] and light[1] <= one[1]
    assert two[0] < one[0] or two[1] < one[1]


@pytest.mark.parametrize(("model", "hardware", "tp", "prompt", "output"), [
    (LLAMA_70B, "p4de.24xlarge", 2, 1024, 256),  # issue 18's case: A100-80GB, TP=2
    ("meta-llama/Llama-3.1-8B-Instruct", "g6e.xlarge", 1, 2000, 300),
])
def test_screening_capacity_agrees_with_the_simulated_replica_within_ten_percent(
        catalog: Catalog, calibration: CalibrationTable, model: str, hardware: str, tp: int, prompt: int,
        output: int) -> None:
    # with SLOs out of reach the screening capacity is the throughput limit, which the simulator finds by overload
    slo = Slos(ttft_p95_ms=1e9, tpot_p95_ms=1e9)
    screened = _screen(PlanSpec(model=model, rate_per_s=1.0, input_tokens=prompt, output_tokens=output,
                                instances=[hardware], dtypes=["bf16"], slo=slo), catalog, calibration)
    option, = [o for o in screened.options if o.tp == tp and o.engine == "vllm"]
    simulated = replica_capacity(pool_spec(model=load_model(model), hardware=hardware, tp=tp), catalog, calibration,
                                 prompt, output)
    assert float(option.capacity[0]) == pytest.approx(simulated, rel=0.10)
