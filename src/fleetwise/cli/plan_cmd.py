"""`fleetwise plan`: the cheapest deployment that meets the SLOs, its evidence, and a report."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.cli.output import console, emit_json, err_console, fmt, table
from fleetwise.errors import FleetwiseError
from fleetwise.plan import PlanSpec, plan
from fleetwise.plan.result import PlanResult, Rejected, WhatIf
from fleetwise.plan.spec import PURCHASES, plan_spec

DEFAULT_REPORT = "fleetwise-plan.html"
PLAN_HELP = (
    "Find the cheapest way to serve a model for a workload within p95 latency SLOs: Inferentia, GPU, or both.\n\n"
    "Searches instance × TP × dtype × engine × batch settings, sizes each option per hour of the day, buys it "
    "on-demand, spot or reserved, solves a Mélange mix of pools over request sizes, verifies the finalists in the "
    "serving simulator, and explains every rejection.\n\n"
    f"With no arguments it plans {PlanSpec().model} for the bundled {PlanSpec().workload} workload and writes "
    f"{DEFAULT_REPORT}. Example: fleetwise plan -m meta-llama/Llama-3.1-70B-Instruct --slo ttft_p95=800ms "
    "--instances inf2,p4d,p5 --what-if traffic=2x"
)
_D = PlanSpec()  # the defaults, quoted in the help


def plan_command(
    plan_file: Path = typer.Argument(None, help="A YAML plan file with the same fields (model, workload, slo, "
                                                "purchase, instances, ...); options given here override it."),
    model: str = typer.Option(None, "--model", "-m", help=f"Bundled HF id, config.json or model dir ({_D.model})."),
    workload: str = typer.Option(None, "--workload", "-w", help=f"Bundled workload or a YAML/JSON workload file "
                                                               f"({_D.workload})."),
    rate: float = typer.Option(None, "--rate", help="Flat Poisson requests/s instead of a workload (with -i, -o)."),
    input_tokens: int = typer.Option(None, "--input-tokens", "-i", help="Prompt tokens (with --rate)."),
    output_tokens: int = typer.Option(None, "--output-tokens", "-o", help="Output tokens (with --rate)."),
    slo: list[str] = typer.Option([], "--slo", help=f"A p95 target: ttft_p95=800ms or tpot_p95=60ms (repeatable; "
                                                    f"defaults {_D.slo.ttft_p95_ms:g} ms, {_D.slo.tpot_p95_ms:g} ms)."),
    region: str = typer.Option(None, "--region", help=f"Region for prices ({_D.region})."),
    purchase: list[str] = typer.Option([], "--purchase", help=f"Purchase options, comma-separated: "
                                                              f"{', '.join(PURCHASES)}, savings-plan-1y, "
                                                              f"savings-plan-3y ({', '.join(_D.purchase)})."),
    instances: list[str] = typer.Option([], "--instances", help="Families or types, comma-separated (inf2,g6e,"
                                                                "p5.48xlarge; default: the whole catalog)."),
    engines: list[str] = typer.Option([], "--engines", help="Engines, comma-separated (default: vllm on GPU, nxdi "
                                                            "on Neuron)."),
    dtypes: list[str] = typer.Option([], "--dtypes", help=f"Weight dtypes, comma-separated ({','.join(_D.dtypes)}; "
                                                          "add int8,int4 to allow quantised weights)."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration file (default: bundled)."),
    catalog_files: list[Path] = typer.Option([], "--catalog", help="Extra catalog file(s), e.g. reserved prices."),
    what_if: list[str] = typer.Option([], "--what-if", help="Re-plan with a change: traffic=2x, prompt=1.5x, "
                                                            "spot_price=+30% (repeatable)."),
    startup_s: float = typer.Option(None, "--startup-s", help=f"Launch to serving, s ({_D.startup_s:g})."),
    compile_s: float = typer.Option(None, "--compile-s", help=f"Neuron compile per launch when not cached, s "
                                                              f"({_D.compile_s:g})."),
    spot_rate: float = typer.Option(None, "--spot-interruptions-per-hour", help=f"Per instance-hour "
                                                                               f"({_D.spot_interruptions_per_hour:g},"
                                                                               " a stress value)."),
    spot_max_share: float = typer.Option(None, "--spot-max-share", help=f"Largest share of an hour's non-reserved "
                                                                       f"instances on spot ({_D.spot_max_share:g})."),
    finalists: int = typer.Option(None, "--finalists", help=f"Single pools verified in the simulator "
                                                            f"({_D.finalists}; the best mix always is)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check finalists in the serving simulator."),
    report: Path = typer.Option(Path(DEFAULT_REPORT), "--report", help="Where to write the HTML report."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    top: int = typer.Option(10, "--top", help="Ranked options to print."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (the stable schema)."),
) -> None:
    """Find the cheapest way to serve a model for a workload within p95 latency SLOs (see PLAN_HELP)."""
    if top < 1:
        raise FleetwiseError(f"--top must be at least 1, got {top}")
    target = _report_path(report, no_report)  # before the work, not after
    spec = plan_spec(plan_file, slo=slo, catalog=[str(p) for p in catalog_files], verify=verify, model=model,
                     workload=workload, rate_per_s=rate, input_tokens=input_tokens, output_tokens=output_tokens,
                     region=region, purchase=purchase, instances=instances, engines=engines, dtypes=dtypes,
                     calibration=calibration, what_if=what_if, startup_s=startup_s, compile_s=compile_s,
                     spot_interruptions_per_hour=spot_rate, spot_max_share=spot_max_share, finalists=finalists)
    result = _run(spec, show_progress=not as_json)
    written = _write_report(result, target)
    if as_json:
        emit_json(result.to_json(report=None if written is None else str(written)))
        return
    _print(result, top)
    if written is not None:
        console.print(f"\nReport: {written}")


def _report_path(report: Path, no_report: bool) -> Path | None:
    """Where the report goes, refused now if it cannot be written (None: no report). The report's module, with
    its charts, loads only when a report is written."""
    if no_report:
        return None
    from fleetwise.plan.report import check_report_path

    return check_report_path(report)


def _write_report(result: PlanResult, target: Path | None) -> Path | None:
    if target is None:
        return None
    from fleetwise.plan.report import write_report

    return write_report(result, target)


def _run(spec: PlanSpec, show_progress: bool) -> PlanResult:
    if not show_progress or not err_console.is_terminal:
        return plan(spec)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # only for a terminal

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task("planning", total=1.0)
        return plan(spec, progress=lambda stage, done: progress.update(task, completed=done, description=stage))


def _print(result: PlanResult, top: int) -> None:
    console.print("[bold]Recommendation[/]")
    console.print(result.recommendation.summary, soft_wrap=False)
    ranked = table(f"\nTop options (of {len(result.options)} that pass screening; simulated ones as checked)",
                   [("#", "right"), ("option", "left"), ("USD/month", "right"), ("$/M out tok", "right"),
                    ("p95 TTFT ms", "right"), ("p95 TPOT ms", "right"), ("checked", "left")])
    for row in result.options[:top]:
        v = row.verified
        ttft, tpot = (v.ttft_ms_p95, v.tpot_ms_p95) if v is not None else (row.predicted.ttft_ms_p95,
                                                                           row.predicted.tpot_ms_p95)
        check = "screened" if v is None else ("stopped: could not win" if v.stopped else
                                              "simulated" if v.passed else "FAILS in simulation")
        if v is not None and v.replicas_added:
            check += f" (+{v.replicas_added} replicas)"
        ranked.add_row(str(row.rank), row.name, fmt(row.monthly_usd, 0), fmt(row.usd_per_million_output_tokens, 3),
                       fmt(ttft, 0), fmt(tpot, 1), check)
    console.print(ranked)
    console.print("\n[bold]Rejected[/]")
    groups: dict[str, list[Rejected]] = {}
    for r in result.rejected:
        groups.setdefault(r.category, []).append(r)
    for category, rows in groups.items():
        examples = "; ".join(f"{r.option}: {r.reason}" for r in rows[:2])
        console.print(f"  {category} ({len(rows)}): {examples}{' …' if len(rows) > 2 else ''}", soft_wrap=True,
                      highlight=False)
    for change in result.what_if:
        if isinstance(change, WhatIf):
            console.print(f"\nWhat if {change.change}: {change.recommendation}, ${change.monthly_usd:,.0f}/month "
                          f"({change.delta_pct or 0.0:+.1f}%){' (same deployment)' if change.same_deployment else ''}",
                          highlight=False)
        else:
            console.print(f"\nWhat if {change.change}: {change.error}", highlight=False)
    console.print(f"\nPlanned in {result.timing_s:.2f} s.")
