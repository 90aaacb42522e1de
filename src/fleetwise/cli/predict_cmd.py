"""`fleetwise predict`: TTFT, TPOT, throughput and cost of one replica under a batch, a user count or a rate."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog
from fleetwise.cli.output import console, emit_json, fmt
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf.efficiency import load_calibration
from fleetwise.predict import Prediction, PredictRequest, predict
from fleetwise.predict.predict import Mode


def predict_command(
    model: str = typer.Option(..., "--model", "-m", help="Bundled HF id, a config.json, or a model directory."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Instance type (inf2.48xlarge, p5.48xlarge) or chip "
                                                               "(h100-sxm, a100-80gb, l40s, inferentia2 …)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree (GPUs, or NeuronCores on Neuron)."),
    dtype: str = typer.Option("bf16", "--dtype", "-d", help="Weight dtype: bf16, fp16, fp8, int8, int4."),
    engine: str = typer.Option(None, "--engine", "-e", help="vllm, trtllm, tgi (GPU); nxdi, tnx (Neuron). "
                                                           "Default: vllm on GPU, nxdi on Neuron."),
    batch: int = typer.Option(None, "--batch", help="A static batch of B requests started together."),
    concurrency: int = typer.Option(None, "--concurrency", help="A closed loop of C users, each sending its next "
                                                               "request when the last one finishes."),
    rate: float = typer.Option(None, "--rate", help="Poisson arrivals, requests per second."),
    max_batch: int = typer.Option(None, "--max-batch", help="The engine's batch limit (vLLM max_num_seqs; the "
                                                             "compiled batch on Neuron). Default: the engine's "
                                                             "(engines.yaml) within what the KV cache holds; on "
                                                             "Neuron the user count, or under --rate the smallest "
                                                             "power of two that keeps up."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV-cache format: auto (16-bit) or fp8 (where the "
                                                            "engine offers it)."),
    input_tokens: int = typer.Option(..., "--input-tokens", "-i", help="Prompt tokens per request."),
    output_tokens: int = typer.Option(..., "--output-tokens", "-o", help="Generated tokens per request."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file from `fleetwise calibrate` "
                                                                 "(default: the bundled one)."),
    region: str = typer.Option(DEFAULT_REGION, "--region", help="Region for the on-demand price."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict TTFT, TPOT, E2E, throughput and $/million tokens of one replica, and what bounds each phase."""
    loads = [(name, value) for name, value in (("batch", batch), ("concurrency", concurrency), ("rate", rate))
             if value is not None]
    if len(loads) != 1:
        raise FleetwiseError("give exactly one of --batch B, --concurrency C or --rate R")
    mode: Mode = loads[0][0]  # type: ignore[assignment]
    load = loads[0][1]
    request = PredictRequest(model=load_model(model), hardware=hardware, tp=tp, dtype=dtype, engine=engine,
                             mode=mode, load=float(load), input_tokens=input_tokens, output_tokens=output_tokens,
                             region=region, max_seqs=max_batch, kv_cache_dtype=kv_dtype)
    result = predict(request, load_catalog(catalog_files), load_calibration(calibration))
    if as_json:
        emit_json(result.to_json())
        return
    _print(result)


def _print(r: Prediction) -> None:
    console.print(f"[bold]{r.model}[/] on {r.hardware} ({r.accelerator}), {r.engine}, TP={r.tp}, {r.dtype}; "
                  f"{r.mode} {r.load:g}, {r.input_tokens} in / {r.output_tokens} out")
    console.print(f"TTFT p50 {fmt(r.ttft_ms.p50, 1)} ms · TPOT p50 {fmt(r.tpot_ms.p50, 2)} ms · E2E p50 "
                  f"{fmt(r.e2e_s.p50, 2)} s")
    console.print(f"throughput {fmt(r.output_tokens_per_s, 1)} output tokens/s, {fmt(r.requests_per_s, 3)} "
                  f"requests/s; ${fmt(r.usd_per_million_output_tokens, 3)} per million output tokens "
                  f"(${fmt(r.usd_per_hour, 3)}/h: {r.price_note})")
    for name, p in (("prefill", r.breakdown.prefill), ("decode", r.breakdown.decode)):
        console.print(f"  {name}: {p.step_ms:.3f} ms/step, {p.bound}-bound (compute {p.compute_ms:.3f}, "
                      f"memory {p.memory_ms:.3f}, communication {p.communication_ms:.3f}, overhead "
                      f"{p.overhead_ms:.3f} ms)")
    for note in r.notes:
        console.print(f"[dim]note: {note}[/]")
