"""`fleetwise fit MODEL`: which instances, TP degrees and dtypes hold the model, and with how much KV cache."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog
from fleetwise.cli.output import console, emit_json, fmt, table
from fleetwise.dtypes import DTYPES
from fleetwise.errors import FleetwiseError
from fleetwise.fit import FitResult, fit_model
from fleetwise.models import load_model


def fit(
    model: str = typer.Argument(..., help="Bundled HF id (see `fleetwise models`), a config.json, or a model dir."),
    instance: list[str] = typer.Option([], "--instance", "-i", help="Only these instance types (repeatable)."),
    family: list[str] = typer.Option([], "--family", "-f", help="Only these families, e.g. inf2, g6e, p5."),
    engine: list[str] = typer.Option([], "--engine", "-e", help="Engines to check: vllm, trtllm, tgi (GPU); nxdi, "
                                                               "tnx (Neuron). Default: vllm and nxdi."),
    tp: list[int] = typer.Option([], "--tp", help="Tensor-parallel degrees (default: every degree the engine "
                                                  "accepts that the instance has devices for)."),
    dtype: list[str] = typer.Option([], "--dtype", "-d", help=f"Weight dtypes: {', '.join(DTYPES)} "
                                                               "(default: bf16, fp8, int8, int4)."),
    context: int = typer.Option(None, "--context", "-c", help="Tokens per sequence (prompt + output) for "
                                                             "max_sequences (default: 8192, capped at the model's "
                                                             "maximum)."),
    memory_utilization: float = typer.Option(None, "--memory-utilization", help="Share of device memory the "
                                             "engine may use (default: the engine's, e.g. vLLM 0.92)."),
    kv_dtype: str = typer.Option("auto", "--kv-dtype", help="KV-cache format: auto (16-bit) or fp8 (where the "
                                                            "engine offers it; halves KV memory)."),
    region: str = typer.Option(DEFAULT_REGION, "--region", help="Region for the on-demand price column."),
    show_all: bool = typer.Option(False, "--all", help="Show every shape, not only those that fit plus one "
                                                      "reason per instance where nothing fits."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s) overriding the bundled "
                                                                   "one."),
    as_json: bool = typer.Option(False, "--json", help="Print every shape as JSON."),
) -> None:
    """Check where MODEL fits: weights per device, KV-cache room, max sequences and a reason for every 'no'."""
    arch = load_model(model)
    catalog = load_catalog(catalog_files)
    catalog.check_region(region)
    instances = catalog.select(family, instance) if (family or instance) else None
    results = fit_model(arch, catalog, instances=instances, engines=engine, tps=tp, dtypes=dtype,
                        context_tokens=context, memory_utilization=memory_utilization, region=region,
                        kv_cache_dtype=kv_dtype)
    if not results:
        kinds = sorted({catalog.chip_of(i).kind for i in (instances or catalog.select())})
        raise FleetwiseError(f"nothing to check: engine(s) {', '.join(engine)} do not run on the selected "
                             f"instances' accelerators ({', '.join(kinds)}); GPU engines: vllm, trtllm, tgi; "
                             "Neuron engines: nxdi, tnx")
    if as_json:
        emit_json({"model": arch.name, "context_tokens": results[0].context_tokens, "region": region,
                   "results": [r.to_dict() for r in results]})
        return
    _print_table(arch.name, results, show_all)


def _print_table(model_name: str, results: list[FitResult], show_all: bool) -> None:
    shown: list[FitResult] = []
    by_instance: dict[str, list[FitResult]] = {}
    for r in results:
        by_instance.setdefault(r.instance, []).append(r)
    for rows in by_instance.values():
        fitting = [r for r in rows if r.fits]
        if show_all:
            shown.extend(rows)
        elif fitting:
            shown.extend(_smallest_tp_per_dtype(fitting))
        else:
            shown.append(_most_telling(rows))
    context = results[0].context_tokens
    t = table(f"{model_name} — memory fit at {context:,} tokens per sequence", [
        ("instance", "left"), ("engine", "left"), ("TP", "right"), ("dtype", "left"), ("replicas", "right"),
        ("weights GiB/dev", "right"), ("KV GiB/replica", "right"), ("max seqs", "right"),
        ("$/replica-h", "right"), ("verdict", "left")])
    for r in shown:
        verdict = "[green]fits[/]" if r.fits else f"[red]no[/]: {r.reason}"
        t.add_row(r.instance, r.engine, str(r.tp), r.dtype, str(r.replicas_per_instance) if r.fits else "",
                  fmt(r.weights_gib_per_device, 1), fmt(r.kv_cache_gib, 1) if r.fits else "",
                  fmt(r.max_sequences) if r.fits else "", fmt(r.usd_per_replica_hour, 3) if r.fits else "",
                  verdict)
    console.print(t)
    fit_count = sum(r.fits for r in results)
    console.print(f"[dim]{fit_count} of {len(results)} shapes fit. Shown: per instance, engine and dtype the smallest "
                  f"TP that fits (most replicas), or the closest miss. max seqs = concurrent sequences the KV cache "
                  f"holds per replica. --all shows every shape, --json every field.[/]")


def _smallest_tp_per_dtype(rows: list[FitResult]) -> list[FitResult]:
    best: dict[tuple[str, str], FitResult] = {}
    for r in rows:
        key = (r.engine, r.dtype)
        if key not in best or r.tp < best[key].tp:
            best[key] = r
    return list(best.values())


def _most_telling(rows: list[FitResult]) -> FitResult:
    """For an instance where nothing fits, the shape that came closest: largest TP, smallest weights."""
    memory_rows = [r for r in rows if r.reason.startswith(("needs", "KV-cache"))]
    pool = memory_rows or rows
    return min(pool, key=lambda r: (r.weights_gib_per_device / max(r.device_memory_gib, 1e-9), -r.tp))

