"""`fleetwise workload`: describe a workload, generate its requests as a trace, or read a public trace."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwise.cli.output import console, emit_json
from fleetwise.errors import FleetwiseError
from fleetwise.workload import (
    FORMATS,
    Workload,
    bundled_workloads,
    generate,
    read_trace,
    resolve_workload,
    write_trace,
)

app = typer.Typer(help="Workloads: bundled synthetic ones, your YAML/JSON specs, and request traces.",
                  no_args_is_help=True)
JsonFlag = typer.Option(False, "--json", help="Print JSON.")
WorkloadArg = typer.Argument(..., help="A bundled workload name (e.g. chat-diurnal) or a YAML/JSON workload file.")


@app.command("list")
def list_workloads(as_json: bool = JsonFlag) -> None:
    """List the bundled workloads."""
    rows = [{"name": w.name, "duration_s": w.duration_s, "rate_per_s": w.arrivals.rate_per_s,
             "process": w.arrivals.process, "diurnal": w.arrivals.hourly_profile is not None}
            for w in bundled_workloads().values()]
    if as_json:
        emit_json({"workloads": rows})
        return
    for r in rows:
        console.print(f"{r['name']}: {r['process']} at {r['rate_per_s']}/s for {r['duration_s']:g} s"
                      + (", diurnal profile" if r["diurnal"] else ""))


@app.command("show")
def show(workload: str = WorkloadArg,
         duration: float = typer.Option(None, "--duration", help="Override the duration in seconds."),
         as_json: bool = JsonFlag) -> None:
    """Generate a workload's requests and summarise them (count, rate, length percentiles, prefix sharing)."""
    spec = _with_duration(resolve_workload(workload), duration)
    summary = {"workload": spec.model_dump(exclude_none=True), **generate(spec).summary()}
    if as_json:
        emit_json(summary)
        return
    for key, value in summary.items():
        if key != "workload":
            console.print(f"{key}: {value}")


@app.command("generate")
def generate_trace(workload: str = WorkloadArg,
                   output: Path = typer.Option(..., "--output", "-o", help="CSV trace to write."),
                   duration: float = typer.Option(None, "--duration", help="Override the duration in seconds."),
                   as_json: bool = JsonFlag) -> None:
    """Write a workload's requests as a trace CSV (arrival_s, prompt_tokens, output_tokens, prefix columns)."""
    requests = generate(_with_duration(resolve_workload(workload), duration))
    if output.is_dir():
        raise FleetwiseError(f"--output {output} is a directory; give a file name such as trace.csv")
    write_trace(requests, output)
    summary = {"output": str(output), **requests.summary()}
    if as_json:
        emit_json(summary)
    else:
        console.print(f"wrote {summary['requests']} requests to {output}")


@app.command("read")
def read(trace: Path = typer.Argument(..., help="A trace CSV."),
         format: str = typer.Option("auto", "--format", help=f"One of {', '.join(FORMATS)}, or auto (by header)."),
         as_json: bool = JsonFlag) -> None:
    """Read a trace (fleetwise, Azure LLM inference, BurstGPT or Splitwise/Vidur CSV) and summarise it."""
    result = read_trace(trace, format)
    summary = {"format": result.format, "dropped": result.dropped, **result.requests.summary()}
    if as_json:
        emit_json(summary)
        return
    for key, value in summary.items():
        console.print(f"{key}: {value}")


def _with_duration(spec: Workload, duration: float | None) -> Workload:
    if duration is None:
        return spec
    if not duration > 0:
        raise FleetwiseError(f"--duration must be positive, got {duration}")
    return spec.replace(duration_s=float(duration))
