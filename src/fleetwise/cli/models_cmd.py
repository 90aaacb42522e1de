"""`fleetwise models`: the bundled model library, and one model's parameters, weights, KV cache and FLOPs."""

from __future__ import annotations

import typer

from fleetwise.cli.output import console, emit_json, fmt, fmt_params, table
from fleetwise.dtypes import DTYPES
from fleetwise.models import bundled_models, load_model
from fleetwise.models.summary import describe_model, library_rows
from fleetwise.units import GIB

app = typer.Typer(help="Model library: bundled Hugging Face configs, or your own config.json.",
                  invoke_without_command=True)
JsonFlag = typer.Option(False, "--json", help="Print JSON instead of a table.")


@app.callback()
def models(ctx: typer.Context, as_json: bool = JsonFlag) -> None:
    """List the bundled models (usable offline by Hugging Face id in every command)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"json": as_json}
        return
    entries = bundled_models().values()
    if as_json:
        emit_json({"models": library_rows()})
        return
    t = table(f"{len(entries)} bundled models (config facts only; weights are never downloaded)", [
        ("model", "left"), ("architecture", "left"), ("params", "right"), ("active", "right"),
        ("bf16 GiB", "right"), ("KV KiB/token", "right"), ("max context", "right")])
    for e in entries:
        m = e.architecture
        p = m.parameters()
        t.add_row(e.hf_id, m.architecture, fmt_params(p.total), fmt_params(p.active),
                  fmt(m.weight_bytes(DTYPES["bf16"]) / GIB, 1), fmt(m.kv_cache_bytes_per_token() / 1024, 1),
                  fmt(m.max_position_embeddings))
    console.print(t)
    console.print("[dim]`fleetwise models show MODEL` for details; MODEL may also be a config.json or a model "
                  "directory.[/]")


@app.command("show")
def show(ctx: typer.Context,
         model: str = typer.Argument(..., help="Bundled HF id, a config.json path, or a model directory."),
         context: int = typer.Option(8192, "--context", help="Sequence length for the KV-cache and FLOPs figures."),
         as_json: bool = JsonFlag) -> None:
    """Show a model's parameters, weight size per dtype, KV cache per token and sequence, and FLOPs."""
    as_json = as_json or bool((ctx.obj or {}).get("json"))
    summary = describe_model(model, context)
    arch = load_model(model)
    if as_json:
        emit_json(summary)
        return
    p = summary["parameters"]
    console.print(f"[bold]{arch.name}[/] — {arch.architecture} ({arch.model_type}), native {arch.native_dtype}")
    console.print(f"parameters: {fmt_params(p['total'])} total, {fmt_params(p['active'])} active per token")
    a = summary["attention"]
    console.print(f"attention: {a['kind'].upper()}, {a['heads']} heads, {a['kv_heads']} KV heads, head dim "
                  f"{a['head_dim']}, {arch.num_layers} layers ({a['sliding_window_layers']} windowed)")
    if summary["moe"]:
        moe = summary["moe"]
        console.print(f"MoE: {moe['experts']} experts, {moe['experts_per_token']} per token, "
                      f"{moe['shared_experts']} shared, in {moe['moe_layers']} layers")
    console.print("weights: " + ", ".join(f"{k} {v:,.1f} GiB" for k, v in summary["weights_gib"].items()))
    console.print(f"KV cache: {summary['kv_cache_bytes_per_token'] / 1024:,.1f} KiB/token (16-bit), "
                  f"{summary['kv_cache_gib_per_sequence']:,.3f} GiB per {summary['context_tokens']}-token sequence")
    console.print(f"forward: {summary['forward_gflops_per_token']:,.1f} GFLOP per token at that context")
    if arch.note:
        console.print(f"[dim]{arch.note}[/]")
    if arch.source:
        console.print(f"[dim]source: {arch.source}[/]")
