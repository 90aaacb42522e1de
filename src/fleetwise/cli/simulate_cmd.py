"""`fleetwise simulate`: replay a workload through a pool of replicas and report what users would see."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog
from fleetwise.cli.output import console, emit_json, fmt
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf.efficiency import load_calibration
from fleetwise.sim import PoolSpec, Slo, run_pool, summarize
from fleetwise.workload import Arrivals, Lengths, Workload, generate, read_trace, resolve_workload


def simulate_command(
    model: str = typer.Option(..., "--model", "-m", help="Bundled HF id, a config.json, or a model directory."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Instance type or chip, as for `predict`."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."),
    dtype: str = typer.Option("bf16", "--dtype", "-d", help="Weight dtype."),
    engine: str = typer.Option(None, "--engine", "-e", help="Serving engine (default: vllm on GPU, nxdi on Neuron)."),
    replicas: int = typer.Option(1, "--replicas", "-n", help="Replicas in the pool."),
    router: str = typer.Option("least-outstanding", "--router", help="round-robin or least-outstanding."),
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
    if router not in ("round-robin", "least-outstanding"):
        raise FleetwiseError(f"--router must be round-robin or least-outstanding, got {router!r}")
    if interval <= 0:
        raise FleetwiseError(f"--interval must be positive, got {interval}")
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
        requests = generate(spec.model_copy(update=updates) if updates else spec)
    pool = PoolSpec(model=load_model(model), hardware=hardware, tp=tp, dtype=dtype, engine=engine,
                    replicas=replicas, router=router, max_seqs=max_seqs, kv_cache_dtype=kv_dtype,  # type: ignore[arg-type]
                    region=region)
    run = run_pool(pool, requests, load_catalog(catalog_files), load_calibration(calibration))
    report = summarize(run, requests, Slo(ttft_ms=slo_ttft_ms, tpot_ms=slo_tpot_ms), interval)
    report = {"model": pool.model.name, "hardware": run.hardware.name, "engine": run.hardware.engine.id, "tp": tp,
              "dtype": dtype, "router": router, "max_seqs": run.settings.max_seqs,
              "kv_blocks_per_replica": run.settings.kv_blocks, **report}
    if as_json:
        emit_json(report)
        return
    ttft, tpot, e2e = report["ttft_ms"], report["tpot_ms"], report["e2e_s"]
    console.print(f"[bold]{report['model']}[/] on {replicas}× {report['hardware']} ({report['engine']}, TP={tp}, "
                  f"{dtype}), {router}: {report['completed']:,} of {report['requests']:,} requests completed, "
                  f"{report['dropped']} dropped")
    console.print(f"TTFT ms p50 {fmt(ttft['p50'], 1)} p90 {fmt(ttft['p90'], 1)} p99 {fmt(ttft['p99'], 1)} · "
                  f"TPOT ms p50 {fmt(tpot['p50'], 2)} p99 {fmt(tpot['p99'], 2)} · E2E s p50 {fmt(e2e['p50'], 2)} "
                  f"p99 {fmt(e2e['p99'], 2)}")
    console.print(f"goodput {report['goodput']:.3f} · {fmt(report['output_tokens_per_s'], 1)} output tokens/s · "
                  f"KV utilisation {report['kv_utilization']:.1%} · preemptions {report['preemptions']} · "
                  f"prefix-cache hits {report['prefix_cache_hit_rate']:.1%}")
    console.print(f"cost ${fmt(report['cost_usd'], 2)} over {fmt(report['makespan_s'], 0)} s · "
                  f"${fmt(report['usd_per_million_output_tokens'], 3)} per million output tokens")
    for reason, count in report["dropped_reasons"].items():
        console.print(f"[dim]dropped {count}: {reason}[/]")

