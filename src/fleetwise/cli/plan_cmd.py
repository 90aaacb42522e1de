"""`fleetwise plan`: the cheapest deployment that meets the SLOs, its evidence, and a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fleetwise.cli.output import console, emit_json, err_console, fmt, table
from fleetwise.errors import FleetwiseError
from fleetwise.plan import PlanSpec, load_plan_file, parse_slo, plan
from fleetwise.plan.report import write_report

DEFAULT_REPORT = "fleetwise-plan.html"
PLAN_HELP = (
    "Find the cheapest way to serve a model for a workload within p95 latency SLOs: Inferentia, GPU, or both.\n\n"
    "Searches instance × TP × dtype × engine × batch settings, sizes each option per hour of the day, buys it "
    "on-demand, spot or reserved, solves a Mélange mix of pools over request sizes, verifies the finalists in the "
    "serving simulator, and explains every rejection.\n\n"
    "With no arguments it plans Llama-3.1-8B for the bundled chat-diurnal workload and writes "
    "fleetwise-plan.html. Example: fleetwise plan -m meta-llama/Llama-3.1-70B-Instruct --slo ttft_p95=800ms "
    "--instances inf2,p4d,p5 --what-if traffic=2x"
)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def plan_command(
    plan_file: Path = typer.Argument(None, help="A YAML plan file with the same fields (model, workload, slo, "
                                                "purchase, instances, ...); options given here override it."),
    model: str = typer.Option(None, "--model", "-m", help="Bundled HF id, config.json or model directory "
                                                          "(default: meta-llama/Llama-3.1-8B-Instruct)."),
    workload: str = typer.Option(None, "--workload", "-w", help="Bundled workload (chat-diurnal, the default) or a "
                                                               "YAML/JSON workload file."),
    rate: float = typer.Option(None, "--rate", help="Flat Poisson requests/s instead of a workload (with -i, -o)."),
    input_tokens: int = typer.Option(None, "--input-tokens", "-i", help="Prompt tokens (with --rate)."),
    output_tokens: int = typer.Option(None, "--output-tokens", "-o", help="Output tokens (with --rate)."),
    slo: list[str] = typer.Option([], "--slo", help="A p95 target: ttft_p95=800ms or tpot_p95=60ms (repeatable; "
                                                    "defaults 1000 ms and 100 ms)."),
    region: str = typer.Option(None, "--region", help="Region for prices (default us-east-1)."),
    purchase: list[str] = typer.Option([], "--purchase", help="Purchase options to consider, comma-separated: "
                                                              "on-demand, spot, reserved-1y, reserved-3y, "
                                                              "savings-plan-1y, savings-plan-3y (default: "
                                                              "on-demand, spot and both reserved terms)."),
    instances: list[str] = typer.Option([], "--instances", help="Instance families or types to search, "
                                                                "comma-separated (inf2,g6e,p5.48xlarge; default: "
                                                                "the whole catalog)."),
    engines: list[str] = typer.Option([], "--engines", help="Engines, comma-separated (default: vllm on GPU, nxdi "
                                                            "on Neuron)."),
    dtypes: list[str] = typer.Option([], "--dtypes", help="Weight dtypes, comma-separated (default bf16,fp8; add "
                                                          "int8,int4 to allow quantised weights)."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file (default: bundled)."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s), e.g. reserved prices."),
    what_if: list[str] = typer.Option([], "--what-if", help="Re-plan with a change: traffic=2x, prompt=1.5x, "
                                                            "spot_price=+30% (repeatable)."),
    startup_s: float = typer.Option(None, "--startup-s", help="Launch to serving, seconds (default 600)."),
    compile_s: float = typer.Option(None, "--compile-s", help="Neuron compile per launch when not cached, seconds "
                                                              "(default 0: a cached artifact)."),
    spot_rate: float = typer.Option(None, "--spot-interruptions-per-hour", help="Spot interruptions per instance-"
                                                                               "hour (default 0.05, a stress value)."),
    spot_max_share: float = typer.Option(None, "--spot-max-share", help="Largest share of an hour's non-reserved "
                                                                       "instances on spot (default 0.5)."),
    finalists: int = typer.Option(None, "--finalists", help="Single-pool options verified in the simulator "
                                                            "(default 3; the best mix is always verified)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check finalists in the serving simulator."),
    report: Path = typer.Option(Path(DEFAULT_REPORT), "--report", help="Where to write the HTML report."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    top: int = typer.Option(10, "--top", help="Ranked options to print."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (the stable schema)."),
) -> None:
    """Find the cheapest way to serve a model for a workload within p95 latency SLOs (see PLAN_HELP)."""
    spec = load_plan_file(plan_file) if plan_file is not None else PlanSpec()
    changes: dict[str, Any] = {}
    for key, value in (("model", model), ("region", region), ("startup_s", startup_s), ("compile_s", compile_s),
                       ("spot_interruptions_per_hour", spot_rate), ("spot_max_share", spot_max_share),
                       ("finalists", finalists), ("calibration", str(calibration) if calibration else None)):
        if value is not None:
            changes[key] = value
    if workload is not None:
        changes.update(workload=workload, rate_per_s=None, input_tokens=None, output_tokens=None)
    for key, value in (("rate_per_s", rate), ("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if value is not None:
            changes[key] = value
    if slo:
        changes["slo"] = {**spec.slo.model_dump(), **dict(parse_slo(s) for s in slo)}
    for key, values in (("purchase", purchase), ("instances", instances), ("engines", engines), ("dtypes", dtypes),
                        ("what_if", what_if)):
        parts = _split(values)
        if parts is not None:
            changes[key] = parts
    if catalog_files:
        changes["catalog"] = [*spec.catalog, *(str(p) for p in catalog_files)]
    if not verify:
        changes["verify"] = False
    if top < 1:
        raise FleetwiseError(f"--top must be at least 1, got {top}")
    spec = spec.replace(**changes) if changes else spec
    result = _run(spec, show_progress=not as_json)
    written = None if no_report else write_report(result, report)
    if written is not None:
        result["report"] = str(written)
    if as_json:
        emit_json(result)
        return
    _print(result, top)
    if written is not None:
        console.print(f"\nReport: {written}")


def _run(spec: PlanSpec, show_progress: bool) -> dict[str, Any]:
    if not show_progress or not err_console.is_terminal:
        return plan(spec)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task("planning", total=1.0)
        return plan(spec, progress=lambda stage, done: progress.update(task, completed=done, description=stage))


def _print(result: dict[str, Any], top: int) -> None:
    rec = result["recommendation"]
    console.print("[bold]Recommendation[/]")
    console.print(rec["summary"], soft_wrap=False)
    ranked = table(f"\nTop options (of {len(result['options'])} that pass screening; simulated ones as checked)",
                   [("#", "right"), ("option", "left"), ("USD/month", "right"), ("$/M out tok", "right"),
                    ("p95 TTFT ms", "right"), ("p95 TPOT ms", "right"), ("checked", "left")])
    for row in result["options"][:top]:
        v = row["verified"]
        latency = v if v is not None else row["predicted"]
        check = "screened" if v is None else ("simulated" if v["passed"] else "FAILS in simulation")
        if v is not None and v["replicas_added"]:
            check += f" (+{v['replicas_added']} replicas)"
        ranked.add_row(str(row["rank"]), row["name"], fmt(row["monthly_usd"], 0),
                       fmt(row["usd_per_million_output_tokens"], 3), fmt(latency["ttft_ms_p95"], 0),
                       fmt(latency["tpot_ms_p95"], 1), check)
    console.print(ranked)
    console.print("\n[bold]Rejected[/]")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in result["rejected"]:
        groups.setdefault(r["category"], []).append(r)
    for category, rows in groups.items():
        examples = "; ".join(f"{r['option']}: {r['reason']}" for r in rows[:2])
        console.print(f"  {category} ({len(rows)}): {examples}{' …' if len(rows) > 2 else ''}", soft_wrap=True,
                      highlight=False)
    for change in result.get("what_if", []):
        if "error" in change:
            console.print(f"\nWhat if {change['change']}: {change['error']}")
        else:
            console.print(f"\nWhat if {change['change']}: {change['recommendation']}, "
                          f"${change['monthly_usd']:,.0f}/month ({change['delta_pct']:+.1f}%)"
                          f"{' (same deployment)' if change['same_deployment'] else ''}", highlight=False)
    console.print(f"\nPlanned in {result['timing_s']:.2f} s.")
