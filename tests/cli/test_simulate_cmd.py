"""`fleetwise simulate`: the report is simulate()'s, deterministic per seed, and every bad option is one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.sim import FleetSpec, Slo
from fleetwise.sim.fleet import DEFAULT_ROUTER
from fleetwise.sim.simulation import parse_pool, simulate
from fleetwise.workload.source import RequestSource

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
FLAT = ("--rate", "2", "-i", "256", "-o", "32", "--duration", "60")


def test_json_is_simulates_report(run: Run, catalog: Catalog, calibration: CalibrationTable,
                                  as_printed: Callable[[Any], Any]) -> None:
    payload = run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *FLAT, "--seed", "4", "--slo-ttft-ms", "500",
                  "--json").json()
    arch = load_model(LLAMA)
    fleet = FleetSpec(pools=(parse_pool("p5.48xlarge", arch, "auto", "us-east-1"),), router=DEFAULT_ROUTER,
                      slo_ttft_ms=500.0, seed=4)
    requests = RequestSource(rate_per_s=2, input_tokens=256, output_tokens=32, duration_s=60, seed=4).requests()
    expected = simulate(fleet, requests, catalog, calibration, Slo(ttft_ms=500.0))
    assert payload == as_printed(expected.to_json())


def test_json_reports_the_documented_figures(run: Run) -> None:
    report = run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *FLAT, "--seed", "4", "--slo-ttft-ms", "500",
                 "--json").json()
    for key in ("requests", "completed", "dropped", "requeued", "goodput", "preemptions", "kv_utilization",
                "kv_active_utilization", "prefix_cache_hit_rate", "instance_hours", "cost_usd",
                "usd_per_million_output_tokens", "pools", "timeseries"):
        assert key in report, key
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_s", "queueing_delay_ms"):
        assert set(report[key]) == {"p50", "p90", "p95", "p99"}, key
    assert report["requests"] > 0 and report["completed"] + report["dropped"] == report["requests"]
    assert report["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in report["pools"]), abs=1e-3)
    assert 0.0 <= report["goodput"] <= 1.0


def test_same_seed_gives_the_same_report_and_another_seed_another(run: Run) -> None:
    args = ("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *FLAT, "--json")
    first = run(*args, "--seed", "4").json()
    assert run(*args, "--seed", "4").json() == first
    assert run(*args, "--seed", "5").json() != first


def test_hardware_option_is_the_one_pool_spelt_with_pool(run: Run) -> None:
    by_hardware = run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", "--tp", "2", *FLAT, "--json").json()
    by_pool = run("simulate", "-m", LLAMA, "--pool", "p5.48xlarge:tp=2", *FLAT, "--json").json()
    assert by_pool["pools"][0]["tp"] == by_hardware["pools"][0]["tp"] == 2
    assert {k: v for k, v in by_pool.items() if k != "pools"} == {k: v for k, v in by_hardware.items()
                                                                  if k != "pools"}


def test_several_pools_share_the_requests_under_the_chosen_router(run: Run) -> None:
    report = run("simulate", "-m", LLAMA, "--pool", "inf2.48xlarge:tp=24:replicas=2", "--pool",
                 "p5.48xlarge:purchase=spot", "--router", "round-robin", "--rate", "4", "-i", "256", "-o", "32",
                 "--duration", "60", "--json").json()
    assert report["router"] == "round-robin"
    neuron, gpu = report["pools"]
    assert (neuron["hardware"], neuron["tp"], neuron["replicas_launched"]) == ("inf2.48xlarge", 24, 2)
    assert (gpu["hardware"], gpu["purchase"]) == ("p5.48xlarge", "spot")
    assert neuron["requests_finished"] > 0 and gpu["requests_finished"] > 0
    assert neuron["requests_finished"] + gpu["requests_finished"] == report["completed"]


def test_a_trace_is_replayed_request_by_request(run: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n" + "".join(f"{i * 0.5},{100 + i},{10 + i}\n"
                                                                         for i in range(7)))
    report = run("simulate", "-m", LLAMA, "-H", "g6e.xlarge", "--trace", trace, "--json").json()
    assert report["requests"] == 7 == report["completed"]


def test_a_bundled_workload_is_cut_to_the_duration(run: Run) -> None:
    report = run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", "--workload", "chat-diurnal", "--duration", "30",
                 "--json").json()
    assert report["requests"] == len(RequestSource(workload="chat-diurnal", duration_s=30).requests())


def test_text_output_summarises_requests_pools_latency_and_cost(run: Run) -> None:
    args = ("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *FLAT, "--seed", "4")
    report = run(*args, "--json").json()
    out = run(*args).ok().out
    assert f"{report['completed']:,} of {report['requests']:,} requests completed" in out
    assert f"pool {report['pools'][0]['name']}:" in out
    assert f"TTFT ms p50 {report['ttft_ms']['p50']:,.1f}" in out
    assert f"cost ${report['cost_usd']:,.2f}" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [((), "exactly one of"), (("--rate", "1"), "needs --input-tokens"),
     (("--rate", "1", "-i", "10", "-o", "10", "--router", "random"), "unknown router 'random'"),
     (("--rate", "-1", "-i", "10", "-o", "10"), "rate_per_s"),
     (("--rate", "1", "-i", "10", "-o", "10", "--router", "cost-aware"), "needs a TTFT SLO"),
     (("--rate", "1", "-i", "10", "-o", "10", "--pool", "p5.48xlarge"), "not both"),
     (("--rate", "1", "-i", "10", "-o", "10", "--interval", "nan"), "--interval"),
     (("--rate", "1", "-i", "10", "-o", "10", "--seed", "-1"), "--seed"),
     (("--rate", "1", "-i", "10", "-o", "10", "--duration", "0"), "--duration"),
     (("--rate", "1", "-i", "10", "-o", "10", "--slo-ttft-ms", "nan"), "TTFT SLO"),
     (("--rate", "1", "-i", "10", "-o", "10", "--slo-tpot-ms", "-1"), "--slo-tpot-ms"),
     (("--rate", "1", "-i", "10", "-o", "10", "--startup-s", "nan"), "startup time"),
     (("--rate", "1", "-i", "10", "-o", "10", "--compile-s", "-1"), "compile time"),
     (("--rate", "1", "-i", "10", "-o", "10", "--replicas", "10000000"), "replicas must be between"),
     (("--rate", "1", "-i", "10", "-o", "10", "--tp", "0"), "tensor-parallel degree"),
     (("--rate", "1", "-i", "10", "-o", "10", "--max-seqs", "0"), "--max-seqs"),
     (("--rate", "1", "-i", "10", "-o", "10", "--purchase", "reserved"), "purchase must be on-demand or spot"),
     (("--rate", "1", "-i", "10", "-o", "10", "--autoscale", "--target-inflight", "0"), "target in-flight"),
     (("--rate", "1", "-i", "10", "-o", "10", "--autoscale", "--min-replicas", "9", "--max-replicas", "8"),
      "autoscale min"),
     (("--rate", "1", "-i", "10", "-o", "10", "--purchase", "spot", "--spot-interruptions-per-hour", "-1"),
      "non-negative"),
     (("--rate", "1", "-i", "10", "-o", "10", "--dtype", "fp4"), "unknown dtype 'fp4'"),
     (("--rate", "1", "-i", "10", "-o", "10", "--kv-dtype", "int3"), "int3"),
     (("--rate", "1e9", "-i", "10", "-o", "10", "--duration", "1e9"), "the limit is")],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_argument_mistakes_exit_2_with_one_line(run: Run, extra: tuple[str, ...], message: str) -> None:
    run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *extra).user_error(message)


def test_no_pool_at_all_is_one_line(run: Run) -> None:
    run("simulate", "-m", LLAMA, "--rate", "1", "-i", "10", "-o", "10").user_error("give --hardware")


@pytest.mark.parametrize(
    ("pool", "message"),
    [("p5.48xlarge:colour=red", "not key=value"), ("p5.48xlarge:tp=1.7", "tp must be a whole number"),
     ("p5.48xlarge:replicas=nan", "replicas must be a whole number"), ("p5.48xlarge:startup_s=inf", "finite"),
     ("p5.48xlarge:purchase=spot:spot_rate=-2", "spot interruptions per hour"),
     ("p5.48xlarge:autoscale_min=0:target_inflight=0", "target in-flight"),
     ("p5.99xlarge", "closest: p5.48xlarge")],
)
def test_pool_mistakes_name_the_pool_and_key(run: Run, pool: str, message: str) -> None:
    line = run("simulate", "-m", LLAMA, "--pool", pool, "--rate", "1", "-i", "10", "-o", "10").user_error(message)
    assert pool.split(":")[0] in line


@pytest.mark.parametrize("what", ["trace", "workload", "calibration", "catalog"])
def test_unreadable_input_files_are_named(run: Run, tmp_path: Path, what: str) -> None:
    missing = tmp_path / f"no-{what}.yaml"
    source = () if what in ("trace", "workload") else ("--rate", "1", "-i", "10", "-o", "10")
    run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", *source, f"--{what}", missing).user_error(str(missing))
