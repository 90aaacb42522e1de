"""`simulate()` from a fleet to the report, with its inputs checked first, and the `--pool` mini-language."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models import ModelArchitecture, load_model
from fleetwise.perf import CalibrationTable
from fleetwise.sim import Autoscale, FleetSpec, Slo, Spot, run_fleet, summarize
from fleetwise.sim.simulation import parse_pool, pool_from_options, simulate
from fleetwise.workload import Arrivals, Lengths, Requests, Workload, generate


@pytest.fixture(scope="module")
def model() -> ModelArchitecture:
    return load_model("meta-llama/Llama-3.1-8B-Instruct")


def _requests() -> Requests:
    return generate(Workload(duration_s=60.0, arrivals=Arrivals(rate_per_s=2.0), prompt_tokens=Lengths(mean=512),
                             output_tokens=Lengths(mean=32), seed=1))


NO_REQUESTS = Requests(np.zeros(0), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))


@pytest.mark.parametrize("interval", [0.0, -60.0, float("nan"), float("inf")])
def test_a_bad_interval_is_refused_before_simulating(catalog: Catalog, calibration: CalibrationTable,
                                                     model: ModelArchitecture, interval: float) -> None:
    fleet = FleetSpec(pools=(parse_pool("p5.48xlarge", model),))
    # an empty workload would be refused too: the interval is checked first
    with pytest.raises(FleetwiseError, match="--interval must be a positive number of seconds"):
        simulate(fleet, NO_REQUESTS, catalog, calibration, interval_s=interval)


@pytest.mark.parametrize(("slo", "flag"), [(Slo(ttft_ms=0.0), "--slo-ttft-ms"), (Slo(ttft_ms=-5.0), "--slo-ttft-ms"),
                                           (Slo(tpot_ms=float("nan")), "--slo-tpot-ms")])
def test_a_bad_slo_is_refused_before_simulating(catalog: Catalog, calibration: CalibrationTable,
                                                model: ModelArchitecture, slo: Slo, flag: str) -> None:
    fleet = FleetSpec(pools=(parse_pool("p5.48xlarge", model),))
    with pytest.raises(FleetwiseError, match=f"{flag} must be a positive number of milliseconds"):
        simulate(fleet, NO_REQUESTS, catalog, calibration, slo)


@pytest.mark.parametrize("e2e_s", [float("nan"), -1.0])
def test_a_bad_e2e_slo_is_refused_before_simulating(catalog: Catalog, calibration: CalibrationTable,
                                                    model: ModelArchitecture, e2e_s: float) -> None:
    fleet = FleetSpec(pools=(parse_pool("p5.48xlarge", model),))
    with pytest.raises(FleetwiseError, match="positive"):
        simulate(fleet, _requests(), catalog, calibration, Slo(e2e_s=e2e_s))


def test_simulate_reports_the_run_with_its_slo_and_interval(catalog: Catalog, calibration: CalibrationTable,
                                                            model: ModelArchitecture) -> None:
    fleet = FleetSpec(pools=(parse_pool("p5.48xlarge:replicas=2", model),), router="round-robin")
    requests, slo = _requests(), Slo(ttft_ms=50.0)
    result = simulate(fleet, requests, catalog, calibration, slo, interval_s=15.0)
    assert result == summarize(run_fleet(fleet, requests, catalog, calibration), requests, slo, 15.0)
    assert [row.start_s for row in result.timeseries][:3] == [0.0, 15.0, 30.0]
    assert result.completed == len(requests) and result.router == "round-robin"


def test_a_pool_string_sets_every_key(model: ModelArchitecture) -> None:
    text = ("p5.48xlarge:tp=2:dtype=fp8:engine=vllm:replicas=3:purchase=spot:spot_rate=0.5:startup_s=90"
            ":compile_s=30.5:compiled_cache=1:max_seqs=64:autoscale_min=2:autoscale_max=6:target_inflight=12")
    spec = parse_pool(text, model, kv_cache_dtype="fp8", region="us-west-2")
    assert (spec.hardware, spec.tp, spec.dtype, spec.engine, spec.replicas) == ("p5.48xlarge", 2, "fp8", "vllm", 3)
    assert (spec.purchase, spec.spot) == ("spot", Spot(0.5))
    assert (spec.startup_s, spec.compile_s, spec.compiled_cache, spec.max_seqs) == (90.0, 30.5, True, 64)
    assert spec.autoscale == Autoscale(min_replicas=2, max_replicas=6, target_inflight=12.0)
    assert (spec.kv_cache_dtype, spec.region, spec.name, spec.model) == ("fp8", "us-west-2", text, model)


def test_a_bare_hardware_name_takes_the_defaults(model: ModelArchitecture) -> None:
    spec = parse_pool("g6e.xlarge", model)
    assert (spec.hardware, spec.tp, spec.dtype, spec.engine, spec.replicas) == ("g6e.xlarge", 1, "bf16", None, 1)
    assert (spec.purchase, spec.spot, spec.autoscale, spec.max_seqs) == ("on-demand", None, None, None)
    assert (spec.startup_s, spec.compile_s, spec.compiled_cache) == (0.0, 0.0, False)


def test_an_autoscaled_pool_may_start_above_the_default_maximum(model: ModelArchitecture) -> None:
    spec = parse_pool("p5.48xlarge:replicas=12:target_inflight=4", model)
    assert spec.autoscale == Autoscale(min_replicas=1, max_replicas=12, target_inflight=4.0)


def test_an_explicit_autoscale_max_below_the_starting_replicas_is_refused(model: ModelArchitecture) -> None:
    with pytest.raises(FleetwiseError, match="starting replicas"):
        parse_pool("p5.48xlarge:replicas=5:autoscale_max=3", model)


@pytest.mark.parametrize(
    ("text", "message"),
    [("p5.48xlarge:colour=red", r"'colour=red' is not key=value with a key from \["),
     ("p5.48xlarge:tp", r"'tp' is not key=value"),
     ("p5.48xlarge:tp=2.5", "tp must be a whole number, got '2.5'"),
     ("p5.48xlarge:replicas=two", "replicas must be a whole number, got 'two'"),
     ("p5.48xlarge:startup_s=soon", "startup_s must be a number, got 'soon'"),
     ("p5.48xlarge:spot_rate=inf", "spot_rate must be finite, got 'inf'"),
     ("p5.48xlarge:target_inflight=nan", "target_inflight must be finite, got 'nan'")],
    ids=["unknown-key", "no-value", "fractional-tp", "word-for-number", "word-for-seconds", "infinite", "nan"],
)
def test_a_bad_pool_string_names_its_fault(model: ModelArchitecture, text: str, message: str) -> None:
    with pytest.raises(FleetwiseError, match=message) as refused:
        parse_pool(text, model)
    assert str(refused.value).startswith(f"--pool {text!r}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [("p5.48xlarge:spot_rate=2", "spot interruptions apply to spot capacity only"),
     ("p5.48xlarge:replicas=0", "replicas must be between"),
     ("p5.48xlarge:startup_s=-1", "startup time must be a non-negative number"),
     ("p5.48xlarge:autoscale_min=5:autoscale_max=3", "autoscale min")],
    ids=["spot-rate-on-demand", "no-replicas", "negative-startup", "min-above-max"],
)
def test_a_pool_string_out_of_range_is_refused_by_the_pool_spec(model: ModelArchitecture, text: str,
                                                                 message: str) -> None:
    with pytest.raises(FleetwiseError, match=message):
        parse_pool(text, model)


def test_flags_and_pool_strings_build_the_same_pool(model: ModelArchitecture) -> None:
    text = "g6e.xlarge:tp=1:replicas=3:purchase=spot:spot_rate=0.5:startup_s=60:autoscale_max=6"
    flags = pool_from_options(model, "g6e.xlarge", replicas=3, purchase="spot", spot_rate=0.5, startup_s=60.0,
                              autoscale_max=6, name=text)
    assert parse_pool(text, model) == flags
    assert flags.autoscale == Autoscale(min_replicas=1, max_replicas=6) and flags.spot == Spot(0.5)


def test_autoscaling_starts_when_any_bound_is_given_and_the_default_ceiling_rises(model: ModelArchitecture) -> None:
    assert pool_from_options(model, "g6e.xlarge", replicas=2).autoscale is None
    lifted = pool_from_options(model, "g6e.xlarge", replicas=12, autoscale=True)
    assert lifted.autoscale is not None and lifted.autoscale.max_replicas == 12
    assert pool_from_options(model, "g6e.xlarge", target_inflight=4.0).autoscale == Autoscale(target_inflight=4.0)
    with pytest.raises(FleetwiseError, match="starting replicas"):
        pool_from_options(model, "g6e.xlarge", replicas=4, autoscale=True, autoscale_max=2)
