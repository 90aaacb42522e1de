"""`fleetwise models`: the bundled model library, and one model's parameters, weights, KV cache and FLOPs."""

from __future__ import annotations

from typing import Any

import typer

from fleetwise.cli.output import console, emit_json, fmt, fmt_params, table
from fleetwise.dtypes import DTYPES
from fleetwise.errors import FleetwiseError
from fleetwise.models import ModelArchitecture, bundled_models, find_bundled, load_model
from fleetwise.units import GIB

app = typer.Typer(help="Model library: bundled Hugging Face configs, or your own config.json.",
                  invoke_without_command=True)
JsonFlag = typer.Option(False, "--json", help="Print JSON instead of a table.")


def model_summary(model: ModelArchitecture, context_tokens: int = 8192) -> dict[str, Any]:
    """What a model costs: parameters, weight GiB per dtype, KV cache and FLOPs per token."""
    p = model.parameters()
    a = model.attention
    context = min(context_tokens, model.max_position_embeddings)
    return {
        "model": model.name,
        "architecture": model.architecture,
        "model_type": model.model_type,
        "native_dtype": model.native_dtype,
        "parameters": {"total": p.total, "active": p.active, "active_excluding_embedding": p.active_excluding_embedding,
                       "embedding": p.embedding, "lm_head": p.lm_head, "attention": p.attention,
                       "dense_mlp": p.dense_mlp, "routed_experts": p.routed_experts,
                       "shared_experts": p.shared_experts, "routers": p.routers, "norms": p.norms},
        "layers": model.num_layers,
        "hidden_size": model.hidden_size,
        "attention": {"kind": a.kind, "heads": a.num_heads, "kv_heads": a.num_kv_heads, "head_dim": a.head_dim,
                      "kv_lora_rank": a.kv_lora_rank or None,
                      "sliding_window_layers": model.sliding_window_layers},
        "moe": None if model.moe is None else {
            "experts": model.moe.num_experts, "experts_per_token": model.moe.experts_per_token,
            "shared_experts": model.moe.num_shared_experts, "moe_layers": sum(model.moe_layers)},
        "max_position_embeddings": model.max_position_embeddings,
        "weights_gib": {d.id: round(model.weight_bytes(d) / GIB, 3) for d in DTYPES.values()},
        "kv_cache_bytes_per_token": model.kv_cache_bytes_per_token(),
        "context_tokens": context,
        "kv_cache_gib_per_sequence": round(model.kv_cache_bytes_per_sequence(context) / GIB, 4),
        "forward_gflops_per_token": round(model.forward_flops_per_token(context) / 1e9, 3),
        "source": model.source,
        "note": model.note,
    }


@app.callback()
def models(ctx: typer.Context, as_json: bool = JsonFlag) -> None:
    """List the bundled models (usable offline by Hugging Face id in every command)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"json": as_json}
        return
    entries = bundled_models().values()
    if as_json:
        emit_json({"models": [
            {"hf_id": e.hf_id, "architecture": e.architecture.architecture,
             "total_params": e.architecture.parameters().total, "active_params": e.architecture.parameters().active,
             "published_total": e.published.total, "published_active": e.published.active,
             "kv_cache_bytes_per_token": e.architecture.kv_cache_bytes_per_token(),
             "max_position_embeddings": e.architecture.max_position_embeddings,
             "source": e.source, "as_of": e.as_of} for e in entries]})
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
    if context < 1:
        raise FleetwiseError(f"--context must be at least 1 token, got {context}")
    as_json = as_json or bool((ctx.obj or {}).get("json"))
    arch = load_model(model)
    summary = model_summary(arch, context)
    entry = find_bundled(model)
    if entry is not None:
        summary["published"] = {"total": entry.published.total, "active": entry.published.active,
                                "non_embedding": entry.published.non_embedding, "source": entry.published.source}
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
