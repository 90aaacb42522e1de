"""`fleetwise simulate`: replay a workload through pools of replicas and report what users would see."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog
from fleetwise.cli.output import console, emit_json, fmt
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf.efficiency import load_calibration
from fleetwise.sim import ROUTERS, Autoscale, FleetSpec, Slo
from fleetwise.sim.fleet import DEFAULT_ROUTER
from fleetwise.sim.result import SimulationResult
from fleetwise.sim.simulation import DEFAULT_INTERVAL_S, POOL_KEYS, parse_pool, pool_from_options, simulate
from fleetwise.workload.source import FLAT_DURATION_S, RequestSource

_SCALE = Autoscale()
POOL_HELP = (f"A pool as HARDWARE[:key=value...], keys: {', '.join(POOL_KEYS)}; repeatable. Example: --pool "
             "inf2.48xlarge:tp=24:replicas=2 --pool p5.48xlarge:purchase=spot:spot_rate=0.1")
ROUTER_HELP = (f"{', '.join(ROUTERS)} (cost-aware needs --slo-ttft-ms and fills the cheapest pool first; default "
               f"{DEFAULT_ROUTER}).")


def simulate_command(
    model: str = typer.Option(..., "--model", "-m", help="Bundled HF id, a config.json, or a model directory."),
    hardware: str = typer.Option(None, "--hardware", "-H", help="Instance type or chip (one pool; --pool for more)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."),
    dtype: str = typer.Option("bf16", "--dtype", "-d", help="Weight dtype."),
    engine: str = typer.Option(None, "--engine", "-e", help="Serving engine (default: vllm on GPU, nxdi on Neuron)."),
    replicas: int = typer.Option(1, "--replicas", "-n", help="Replicas in the pool."),
    router: str = typer.Option(DEFAULT_ROUTER, "--router", help=ROUTER_HELP),
    pool: list[str] = typer.Option([], "--pool", help=POOL_HELP),
    purchase: str = typer.Option("on-demand", "--purchase", help="on-demand or spot (single pool)."),
    spot_rate: float = typer.Option(0.0, "--spot-interruptions-per-hour", help="Per replica-hour (single pool)."),
    startup_s: float = typer.Option(0.0, "--startup-s", help="Launch to serving: boot, image pull, weight load (s)."),
    compile_s: float = typer.Option(0.0, "--compile-s", help="Ahead-of-time compile per launch (Neuron), seconds."),
    compiled_cache: bool = typer.Option(False, "--compiled-cache", help="Launches load a cached compiled artifact."),
    autoscale: bool = typer.Option(False, "--autoscale", help="Scale to --target-inflight requests per replica."),
    min_replicas: int = typer.Option(None, "--min-replicas", help=f"Autoscaler floor ({_SCALE.min_replicas})."),
    max_replicas: int = typer.Option(None, "--max-replicas", help=f"Autoscaler ceiling ({_SCALE.max_replicas}, or "
                                                                 "the starting replicas if more)."),
    target_inflight: float = typer.Option(None, "--target-inflight", help=f"Autoscaler target "
                                                                         f"({_SCALE.target_inflight:g})."),
    max_seqs: int = typer.Option(None, "--max-seqs", help="Sequence slots (vLLM max_num_seqs; compiled batch)."),
    workload: str = typer.Option(None, "--workload", "-w", help="Bundled workload or a YAML/JSON workload file."),
    trace: Path = typer.Option(None, "--trace", help="A request trace CSV (fleetwise, Azure, BurstGPT, Vidur)."),
    rate: float = typer.Option(None, "--rate", help="Poisson arrivals per second (with -i and -o)."),
    input_tokens: int = typer.Option(None, "--input-tokens", "-i", help="Prompt tokens (with --rate)."),
    output_tokens: int = typer.Option(None, "--output-tokens", "-o", help="Output tokens (with --rate)."),
    duration: float = typer.Option(None, "--duration", help=f"Seconds to replay (default: the workload's own, "
                                                            f"{FLAT_DURATION_S:g} with --rate)."),
    seed: int = typer.Option(None, "--seed", help="Seed for synthetic workloads and spot (same seed, same result)."),
    slo_ttft_ms: float = typer.Option(None, "--slo-ttft-ms", help="TTFT target for goodput."),
    slo_tpot_ms: float = typer.Option(None, "--slo-tpot-ms", help="TPOT target for goodput."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV-cache format: auto (16-bit) or fp8."),
    interval: float = typer.Option(DEFAULT_INTERVAL_S, "--interval", help="Seconds per time-series row."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file (default: bundled)."),
    region: str = typer.Option(DEFAULT_REGION, "--region", help="Region for prices."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (time series included)."),
) -> None:
    """Simulate continuous batching, paged KV, preemption and prefix caching for pools serving a workload."""
    source = RequestSource(workload, trace, rate, input_tokens, output_tokens, duration, seed)
    arch = load_model(model)
    if pool and hardware is not None:
        raise FleetwiseError("give --hardware (one pool) or --pool (one or more), not both")
    if not pool and hardware is None:
        raise FleetwiseError("give --hardware (one pool) or --pool (one or more)")
    pools = tuple(parse_pool(text, arch, kv_dtype, region) for text in pool) or (pool_from_options(
        arch, hardware, tp=tp, dtype=dtype, engine=engine, replicas=replicas, max_seqs=max_seqs,
        kv_cache_dtype=kv_dtype, region=region, purchase=purchase, spot_rate=spot_rate, startup_s=startup_s,
        compile_s=compile_s, compiled_cache=compiled_cache, autoscale=autoscale, autoscale_min=min_replicas,
        autoscale_max=max_replicas, target_inflight=target_inflight),)
    fleet = FleetSpec(pools=pools, router=router, slo_ttft_ms=slo_ttft_ms, seed=seed or 0)
    result = simulate(fleet, source.requests(), load_catalog(catalog_files), load_calibration(calibration),
                      Slo(ttft_ms=slo_ttft_ms, tpot_ms=slo_tpot_ms), interval)
    if as_json:
        emit_json(result.to_json())
    else:
        _print(result)


def _print(r: SimulationResult) -> None:
    console.print(f"[bold]{r.model}[/], {r.router}: {r.completed:,} of {r.requests:,} requests completed, "
                  f"{r.dropped} dropped, {r.requeued} re-queued", highlight=False)
    for p in r.pools:
        console.print(f"  pool {p.name}: {p.engine} TP={p.tp} {p.dtype} {p.purchase}, {p.replicas_launched} replicas "
                      f"launched, {p.replica_hours:.2f} replica-hours, ${fmt(p.cost_usd, 2)}, "
                      f"{p.requests_finished:,} requests, {p.spot_interruptions} spot interruptions", highlight=False)
    ttft, tpot, e2e = r.ttft_ms, r.tpot_ms, r.e2e_s
    console.print(f"TTFT ms p50 {fmt(ttft.p50, 1)} p90 {fmt(ttft.p90, 1)} p99 {fmt(ttft.p99, 1)} · TPOT ms p50 "
                  f"{fmt(tpot.p50, 2)} p99 {fmt(tpot.p99, 2)} · E2E s p50 {fmt(e2e.p50, 2)} p99 {fmt(e2e.p99, 2)}")
    console.print(f"goodput {r.goodput:.3f} · {fmt(r.output_tokens_per_s, 1)} output tokens/s · KV occupied "
                  f"{r.kv_utilization:.1%} ({r.kv_active_utilization:.1%} by running sequences, the rest cached) · "
                  f"preemptions {r.preemptions} · prefix-cache hits {r.prefix_cache_hit_rate:.1%}")
    console.print(f"cost ${fmt(r.cost_usd, 2)} over {fmt(r.makespan_s, 0)} s · "
                  f"${fmt(r.usd_per_million_output_tokens, 3)} per million output tokens")
    for reason, count in r.dropped_reasons.items():
        console.print(f"[dim]dropped {count}: {reason}[/]", highlight=False)
