"""The `fleetwise` command: a thin shell that parses arguments, calls the library and prints."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.markup import escape

from fleetwise import __version__
from fleetwise.cli import (
    calibrate_cmd,
    catalog_cmd,
    fit_cmd,
    models_cmd,
    plan_cmd,
    predict_cmd,
    simulate_cmd,
    workload_cmd,
)
from fleetwise.cli.output import err_console
from fleetwise.errors import FleetwiseError
from fleetwise.native import build_kind

app = typer.Typer(
    name="fleetwise",
    help=(
        "Plan LLM serving on AWS: Inferentia/Trainium or NVIDIA GPUs, sized and costed with evidence.\n\n"
        "`fleetwise plan` answers the main question: the cheapest deployment (Inferentia, GPU or both) that serves "
        "a model for a workload within latency SLOs, with a report. "
        "`fleetwise fit MODEL` shows where a model fits, `fleetwise predict` for its latency, "
        "throughput and cost on one replica, `fleetwise catalog` for instances and prices, `fleetwise models` "
        "for the bundled model library. Every command takes --json."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(models_cmd.app, name="models")
app.add_typer(workload_cmd.app, name="workload")
app.command("plan", help=plan_cmd.PLAN_HELP)(plan_cmd.plan_command)
app.command("fit")(fit_cmd.fit)
app.command("predict")(predict_cmd.predict_command)
app.command("simulate")(simulate_cmd.simulate_command)
app.command("calibrate")(calibrate_cmd.calibrate_command)
app.command("validate")(calibrate_cmd.validate_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleetwise {__version__} ({build_kind()})")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Plan LLM serving on AWS."""


def run() -> None:
    """Run the app: user errors print one line and exit with status 2."""
    try:
        app(prog_name="fleetwise")
    except FleetwiseError as exc:
        _fail(str(exc))
    except ValidationError as exc:  # an option value that a record refuses (e.g. a negative rate)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        given = first.get("input")
        got = f" (got {given!r})" if isinstance(given, str | int | float) and not isinstance(given, bool) else ""
        _fail(f"{where + ': ' if where else ''}{message}{got}")


def _fail(message: str) -> None:
    """One line on stderr, exit status 2 (the user's text is printed as typed: no markup in it is read)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


if __name__ == "__main__":
    run()
