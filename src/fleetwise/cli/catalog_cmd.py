"""`fleetwise catalog`: list instances and prices, show one instance or the chips, import AWS prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fleetwise.catalog import DEFAULT_REGION, load_catalog, user_prices_path
from fleetwise.catalog.aws_price_list import ImportOptions
from fleetwise.catalog.catalog import instance_summary
from fleetwise.catalog.price_import import import_offer_file
from fleetwise.cli.output import console, emit_json, fmt, table

app = typer.Typer(help="Hardware catalog: instances, chips and prices, each figure with its source.",
                  invoke_without_command=True, no_args_is_help=False)

CatalogFiles = typer.Option(
    [], "--catalog", help="Extra catalog file (YAML with chips/instances/prices, or a price CSV) that extends or "
                          "overrides the bundled one; repeatable, later files win.")
JsonFlag = typer.Option(False, "--json", help="Print JSON instead of a table.")
Region = typer.Option(DEFAULT_REGION, "--region", help="AWS region for prices.")


@app.callback()
def catalog(
    ctx: typer.Context,
    family: list[str] = typer.Option([], "--family", "-f", help="Only these families (inf2, trn1, g6e, p5 …)."),
    instance: list[str] = typer.Option([], "--instance", "-i", help="Only these instance types."),
    region: str = Region,
    catalog_files: list[Path] = CatalogFiles,
    as_json: bool = JsonFlag,
) -> None:
    """List instances with accelerators, memory and price per instance-hour and per accelerator-hour."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"catalog_files": catalog_files, "region": region, "json": as_json}
        return
    cat = load_catalog(catalog_files)
    cat.check_region(region)
    rows = [instance_summary(cat, i, region) for i in cat.select(family, instance)]
    if as_json:
        emit_json({"region": region, "files": list(cat.files), "instances": rows})
        return
    t = table(f"EC2 instances — prices in {region}, USD/hour (n/a = not found)", [
        ("instance", "left"), ("accelerator", "left"), ("acc. GiB", "right"), ("vCPU", "right"),
        ("host GiB", "right"), ("on-demand", "right"), ("spot", "right"), ("RI 1y", "right"), ("RI 3y", "right"),
        ("per acc.-hour", "right")])
    for r in rows:
        p = r["usd_per_hour"]
        t.add_row(r["instance"], f"{r['accelerator_count']}× {r['accelerator_name']}",
                  fmt(r["accelerator_memory_gib"], 0), fmt(r["vcpus"]), fmt(r["host_memory_gib"], 0),
                  fmt(p["on-demand"], 3), fmt(p["spot"], 3), fmt(p["reserved-1y"], 3), fmt(p["reserved-3y"], 3),
                  fmt(r["usd_per_accelerator_hour"], 3))
    console.print(t)
    console.print(f"[dim]Sources: {', '.join(cat.files)}. `fleetwise catalog show INSTANCE` lists each "
                  f"figure's source.[/]")


def _options(ctx: typer.Context) -> dict[str, Any]:
    return ctx.obj or {"catalog_files": [], "region": DEFAULT_REGION, "json": False}


@app.command("show")
def show(ctx: typer.Context, instance: str = typer.Argument(..., help="Instance type, e.g. inf2.48xlarge."),
         as_json: bool = JsonFlag) -> None:
    """Show one instance and its chip: every figure with its source and the date it was read."""
    opts = _options(ctx)
    cat = load_catalog(opts["catalog_files"])
    inst = cat.instance(instance)
    chip = cat.chip_of(inst)
    prices = [p for p in cat.prices.values() if p.instance_type == inst.instance_type]
    if as_json or opts["json"]:
        emit_json({"instance": inst.model_dump(), "chip": chip.model_dump(),
                   "prices": [p.model_dump() for p in sorted(prices, key=lambda p: p.key)]})
        return
    t = table(f"{inst.instance_type} — {inst.count}× {chip.name}", [
        ("field", "left"), ("value", "right"), ("source", "left"), ("as of", "left"), ("note", "left")])
    for owner in (inst, chip):
        for name, value in owner:
            if hasattr(value, "source") and hasattr(value, "value"):
                t.add_row(name, str(value.value) if value.value is not None else "not found",
                          value.source or "", value.as_of or "", value.note or "")
    for p in sorted(prices, key=lambda p: p.key):
        t.add_row(f"{p.purchase} ({p.region})", fmt(p.usd_per_hour, 4, "not found"), p.source or "",
                  p.as_of or "", p.note or "")
    console.print(t)


@app.command("chips")
def chips(ctx: typer.Context, as_json: bool = JsonFlag) -> None:
    """List accelerator chips: dense TFLOPS, memory, bandwidth, NeuronCores, links."""
    cat = load_catalog(_options(ctx)["catalog_files"])
    if as_json or _options(ctx)["json"]:
        emit_json({"chips": [c.model_dump() for c in cat.chips.values()]})
        return
    t = table("Accelerator chips (dense, per chip; n/a = not found)", [
        ("chip", "left"), ("kind", "left"), ("bf16 TFLOPS", "right"), ("fp8 TFLOPS", "right"),
        ("int8 TOPS", "right"), ("HBM GiB", "right"), ("HBM GB/s", "right"), ("NeuronCores", "right"),
        ("link GB/s", "right")])
    for c in cat.chips.values():
        t.add_row(c.id, f"{c.kind} ({c.generation})", fmt(c.bf16_tflops.value, 1), fmt(c.fp8_tflops.value, 1),
                  fmt(c.int8_tops.value, 1), fmt(c.hbm_gib.value, 0), fmt(c.hbm_gb_per_s.value, 0),
                  fmt(c.neuron_cores.value if c.neuron_cores else None, 0, ""),
                  fmt(c.chip_interconnect_gb_per_s.value if c.chip_interconnect_gb_per_s else None, 0))
    console.print(t)


@app.command("import-prices")
def import_prices(
    ctx: typer.Context,
    offer_file: Path = typer.Argument(..., help="AWS Price List bulk offer file for AmazonEC2 (index.json), "
                                                "e.g. the region file offers/v1.0/aws/AmazonEC2/current/"
                                                "us-east-1/index.json, downloaded beforehand."),
    region: list[str] = typer.Option([], "--region", help="Only these regions (default: all in the file)."),
    reserved_class: str = typer.Option("standard", help="Reserved offering class: standard or convertible."),
    reserved_payment: str = typer.Option("no-upfront", help="Reserved payment: no-upfront, partial-upfront or "
                                                            "all-upfront (upfront fee is spread over the term)."),
    output: Path = typer.Option(None, "--output", "-o", help="Price CSV to write (default: ~/.fleetwise/"
                                                            "prices.csv, which every command then reads)."),
    as_json: bool = JsonFlag,
) -> None:
    """Import on-demand and reserved (1y/3y effective hourly) Linux prices from an AWS Price List file, offline."""
    opts = _options(ctx)
    summary = import_offer_file(offer_file, load_catalog(opts["catalog_files"]), output or user_prices_path(),
                                ImportOptions(regions=tuple(region), reserved_class=reserved_class,
                                              reserved_payment=reserved_payment))
    changes = summary["changed"]
    target = summary["file"]
    if as_json or opts["json"]:
        emit_json(summary)
        return
    console.print(f"Imported {summary['imported']} prices (publication date {summary['publication_date']}) into "
                  f"{target}; {len(changes)} differ from the catalog.")
    if changes:
        t = table(None, [("instance", "left"), ("region", "left"), ("purchase", "left"), ("was", "right"),
                         ("now", "right")])
        for c in changes[:40]:
            t.add_row(c["instance"], c["region"], c["purchase"], fmt(c["old_usd_per_hour"], 4),
                      fmt(c["new_usd_per_hour"], 4))
        console.print(t)
        if len(changes) > 40:
            console.print(f"[dim]… and {len(changes) - 40} more (use --json for all).[/]")
