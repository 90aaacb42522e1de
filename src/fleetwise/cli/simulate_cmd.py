"""`fleetwise simulate`: replay a workload through a pool of replicas and report what users would see."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog
from fleetwise.cli.output import console, emit_json, fmt
from fleetwise.errors import FleetwiseError
from fleetwise.models import ModelArchitecture, load_model
from fleetwise.perf.efficiency import load_calibration
from fleetwise.sim import ROUTERS, Autoscale, FleetSpec, PoolSpec, Slo, Spot, run_fleet, summarize
from fleetwise.workload import Arrivals, Lengths, Workload, generate, read_trace, resolve_workload


def simulate_command(
    model: str = typer.Option(..., "--model", "-m", help="Bundled HF id, a config.json, or a model directory."),
    hardware: str = typer.Option(None, "--hardware", "-H", help="Instance type or chip, as for `predict` (one "
                                                                 "pool; use --pool for several)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."),
    dtype: str = typer.Option("bf16", "--dtype", "-d", help="Weight dtype."),
    engine: str = typer.Option(None, "--engine", "-e", help="Serving engine (default: vllm on GPU, nxdi on Neuron)."),
    replicas: int = typer.Option(1, "--replicas", "-n", help="Replicas in the pool."),
    router: str = typer.Option("least-outstanding", "--router", help="round-robin, least-outstanding, "
                                                                   "prefix-affinity, or cost-aware (needs "
                                                                   "--slo-ttft-ms; fills the cheapest pool first)."),
    pool: list[str] = typer.Option([], "--pool", help="A pool as HARDWARE[:key=value...], keys: tp, dtype, engine, "
                                                      "replicas, purchase (on-demand|spot), spot_rate "
                                                      "(interruptions per hour), startup_s, compile_s, "
                                                      "compiled_cache (0|1), max_seqs, "
                                                      "autoscale_min, autoscale_max, target_inflight; repeatable. "
                                                      "Example: --pool inf2.48xlarge:tp=24:replicas=2 --pool "
                                                      "p5.48xlarge:purchase=spot:spot_rate=0.1"),
    purchase: str = typer.Option("on-demand", "--purchase", help="on-demand or spot (single pool)."),
    spot_rate: float = typer.Option(0.0, "--spot-interruptions-per-hour", help="Spot interruptions per "
                                                                            "replica-hour (single pool)."),
    startup_s: float = typer.Option(0.0, "--startup-s", help="Launch to serving: boot + image pull + weight load "
                                                            "(+ Neuron compile unless cached), seconds."),
    compile_s: float = typer.Option(0.0, "--compile-s", help="Ahead-of-time compile per launch (Neuron), seconds."),
    compiled_cache: bool = typer.Option(False, "--compiled-cache", help="A compiled artifact is cached: launches "
                                                                       "skip --compile-s."),
    autoscale: bool = typer.Option(False, "--autoscale", help="Scale the pool to --target-inflight requests per "
                                                             "replica between --min-replicas and --max-replicas."),
    min_replicas: int = typer.Option(1, "--min-replicas", help="Autoscaler floor."),
    max_replicas: int = typer.Option(8, "--max-replicas", help="Autoscaler ceiling."),
    target_inflight: float = typer.Option(32.0, "--target-inflight", help="Requests in flight per replica the "
                                                                         "autoscaler aims for."),
    max_seqs: int = typer.Option(None, "--max-seqs", help="Sequence slots per replica (vLLM max_num_seqs; the "
                                                         "compiled batch on Neuron)."),
    workload: str = typer.Option(None, "--workload", "-w", help="Bundled workload (chat-diurnal) or a YAML/JSON "
                                                               "workload file."),
    trace: Path = typer.Option(None, "--trace", help="A request trace CSV (fleetwise, Azure, BurstGPT, Vidur)."),
    rate: float = typer.Option(None, "--rate", help="Poisson arrivals per second (with -i and -o)."),
    input_tokens: int = typer.Option(None, "--input-tokens", "-i", help="Prompt tokens (with --rate)."),
    output_tokens: int = typer.Option(None, "--output-tokens", "-o", help="Output tokens (with --rate)."),
    duration: float = typer.Option(None, "--duration", help="Seconds of workload to replay (default: the "
                                                           "workload's own, 600 with --rate)."),
    seed: int = typer.Option(None, "--seed", help="Seed for synthetic workloads (same seed, same result)."),
    slo_ttft_ms: float = typer.Option(None, "--slo-ttft-ms", help="TTFT target for goodput."),
    slo_tpot_ms: float = typer.Option(None, "--slo-tpot-ms", help="TPOT target for goodput."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV-cache format: auto (16-bit) or fp8."),
    interval: float = typer.Option(60.0, "--interval", help="Seconds per time-series row."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file (default: bundled)."),
    region: str = typer.Option(DEFAULT_REGION, "--region", help="Region for prices."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (time series included)."),
) -> None:
    """Simulate continuous batching, paged KV, preemption and prefix caching for a pool serving a workload."""
    sources = [x for x in (workload, trace, rate) if x is not None]
    if len(sources) != 1:
        raise FleetwiseError("give exactly one of --workload, --trace or --rate (with -i and -o)")
    if router not in ROUTERS:
        raise FleetwiseError(f"--router must be one of {', '.join(ROUTERS)}, got {router!r}")
    if not (math.isfinite(interval) and interval > 0):
        raise FleetwiseError(f"--interval must be a positive number of seconds, got {interval}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise FleetwiseError(f"--duration must be a positive number of seconds, got {duration}")
    if pool and hardware is not None:
        raise FleetwiseError("give --hardware (one pool) or --pool (one or more), not both")
    for flag, value in (("--slo-ttft-ms", slo_ttft_ms), ("--slo-tpot-ms", slo_tpot_ms)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise FleetwiseError(f"{flag} must be a positive number of milliseconds, got {value}")
    if seed is not None and seed < 0:
        raise FleetwiseError(f"--seed must not be negative, got {seed}")
    if trace is not None:
        loaded = read_trace(trace)
        requests = loaded.requests
        if duration is not None:
            requests = requests.head(duration)
    else:
        if rate is not None:
            if input_tokens is None or output_tokens is None:
                raise FleetwiseError("--rate needs --input-tokens and --output-tokens")
            spec = Workload(name="poisson", duration_s=duration or 600.0, arrivals=Arrivals(rate_per_s=rate),
                            prompt_tokens=Lengths(mean=input_tokens), output_tokens=Lengths(mean=output_tokens))
        else:
            spec = resolve_workload(str(workload))
        updates: dict[str, float | int] = {}
        if duration is not None:
            updates["duration_s"] = duration
        if seed is not None:
            updates["seed"] = seed
        requests = generate(spec.replace(**updates) if updates else spec)
    arch = load_model(model)
    if pool:
        pools = tuple(_parse_pool(text, arch, kv_dtype, region) for text in pool)
    elif hardware is not None:
        scale = Autoscale(min_replicas=min_replicas, max_replicas=max(max_replicas, replicas),
                          target_inflight=target_inflight) if autoscale else None
        if purchase not in ("on-demand", "spot"):
            raise FleetwiseError(f"--purchase must be on-demand or spot, got {purchase!r}")
        if not (math.isfinite(spot_rate) and spot_rate >= 0):
            raise FleetwiseError(f"--spot-interruptions-per-hour must be a non-negative number, got {spot_rate}")
        pools = (PoolSpec(model=arch, hardware=hardware, tp=tp, dtype=dtype, engine=engine, replicas=replicas,
                          max_seqs=max_seqs, kv_cache_dtype=kv_dtype, region=region, purchase=purchase,  # type: ignore[arg-type]
                          startup_s=startup_s, compile_s=compile_s, compiled_cache=compiled_cache,
                          autoscale=scale,
                          spot=Spot(spot_rate) if purchase == "spot" and spot_rate > 0 else None),)
    else:
        raise FleetwiseError("give --hardware (one pool) or --pool (one or more)")
    fleet = FleetSpec(pools=pools, router=router, slo_ttft_ms=slo_ttft_ms, seed=seed or 0)
    run = run_fleet(fleet, requests, load_catalog(catalog_files), load_calibration(calibration))
    report = summarize(run, requests, Slo(ttft_ms=slo_ttft_ms, tpot_ms=slo_tpot_ms), interval)
    report = {"model": arch.name, "router": router, **report}
    if as_json:
        emit_json(report)
        return
    ttft, tpot, e2e = report["ttft_ms"], report["tpot_ms"], report["e2e_s"]
    console.print(f"[bold]{report['model']}[/], {router}: {report['completed']:,} of {report['requests']:,} "
                  f"requests completed, {report['dropped']} dropped, {report['requeued']} re-queued")
    for p in report["pools"]:
        console.print(f"  pool {p['name']}: {p['engine']} TP={p['tp']} {p['dtype']} {p['purchase']}, "
                      f"{p['replicas_launched']} replicas launched, {p['replica_hours']:.2f} replica-hours, "
                      f"${fmt(p['cost_usd'], 2)}, {p['requests_finished']:,} requests, "
                      f"{p['spot_interruptions']} spot interruptions")
    console.print(f"TTFT ms p50 {fmt(ttft['p50'], 1)} p90 {fmt(ttft['p90'], 1)} p99 {fmt(ttft['p99'], 1)} · "
                  f"TPOT ms p50 {fmt(tpot['p50'], 2)} p99 {fmt(tpot['p99'], 2)} · E2E s p50 {fmt(e2e['p50'], 2)} "
                  f"p99 {fmt(e2e['p99'], 2)}")
    console.print(f"goodput {report['goodput']:.3f} · {fmt(report['output_tokens_per_s'], 1)} output tokens/s · "
                  f"KV occupied {report['kv_utilization']:.1%} ({report['kv_active_utilization']:.1%} by running "
                  f"sequences, the rest cached) · preemptions {report['preemptions']} · "
                  f"prefix-cache hits {report['prefix_cache_hit_rate']:.1%}")
    console.print(f"cost ${fmt(report['cost_usd'], 2)} over {fmt(report['makespan_s'], 0)} s · "
                  f"${fmt(report['usd_per_million_output_tokens'], 3)} per million output tokens")
    for reason, count in report["dropped_reasons"].items():
        console.print(f"[dim]dropped {count}: {reason}[/]")



_INTEGER_KEYS = {"tp", "replicas", "compiled_cache", "max_seqs", "autoscale_min", "autoscale_max"}
_POOL_KEYS = {"tp", "dtype", "engine", "replicas", "purchase", "spot_rate", "startup_s", "compile_s",
              "compiled_cache", "max_seqs", "autoscale_min", "autoscale_max", "target_inflight"}


def _parse_pool(text: str, model: ModelArchitecture, kv_dtype: str, region: str) -> PoolSpec:
    """`HARDWARE[:key=value...]` into a PoolSpec; unknown keys and bad numbers are errors naming them."""
    hardware, *pairs = text.split(":")
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in _POOL_KEYS:
            raise FleetwiseError(f"--pool {text!r}: {pair!r} is not key=value with a key from {sorted(_POOL_KEYS)}")
        values[key] = value
    number: dict[str, float] = {}
    for key, value in values.items():
        if key in ("dtype", "engine", "purchase"):
            continue
        try:
            number[key] = float(int(value)) if key in _INTEGER_KEYS else float(value)
        except ValueError:
            kind = "a whole number" if key in _INTEGER_KEYS else "a number"
            raise FleetwiseError(f"--pool {text!r}: {key} must be {kind}, got {value!r}") from None
        if not math.isfinite(number[key]):
            raise FleetwiseError(f"--pool {text!r}: {key} must be finite, got {value!r}")
    replicas = int(number.get("replicas", 1))
    scale = None
    if "autoscale_min" in number or "autoscale_max" in number or "target_inflight" in number:
        scale = Autoscale(min_replicas=int(number.get("autoscale_min", 1)),
                          max_replicas=max(int(number.get("autoscale_max", 8)), replicas),
                          target_inflight=number.get("target_inflight", 32.0))
    purchase = values.get("purchase", "on-demand")
    if purchase not in ("on-demand", "spot"):
        raise FleetwiseError(f"--pool {text!r}: purchase must be on-demand or spot")
    rate = number.get("spot_rate", 0.0)
    if rate < 0:
        raise FleetwiseError(f"--pool {text!r}: spot_rate must not be negative")
    return PoolSpec(model=model, hardware=hardware, tp=int(number.get("tp", 1)), dtype=values.get("dtype", "bf16"),
                    engine=values.get("engine"), replicas=replicas,
                    max_seqs=int(number["max_seqs"]) if "max_seqs" in number else None, kv_cache_dtype=kv_dtype,
                    region=region, name=text, purchase=purchase,  # type: ignore[arg-type]
                    startup_s=number.get("startup_s", 0.0), compile_s=number.get("compile_s", 0.0),
                    compiled_cache=bool(number.get("compiled_cache", 0.0)), autoscale=scale,
                    spot=Spot(rate) if purchase == "spot" and rate > 0 else None)
