"""The `fleetwise` command: a thin shell that parses arguments, calls the library and prints."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import typer
from pydantic import ValidationError
from rich.markup import escape

from fleetwise import __version__
from fleetwise.cli.output import err_console
from fleetwise.errors import FleetwiseError
from fleetwise.native import build_kind

HELP = (
    "Plan LLM serving on AWS: Inferentia/Trainium or NVIDIA GPUs, sized and costed with evidence.\n\n"
    "`fleetwise plan` answers the main question: the cheapest deployment (Inferentia, GPU or both) that serves "
    "a model for a workload within latency SLOs, with a report. "
    "`fleetwise fit MODEL` shows where a model fits, `fleetwise predict` for its latency, "
    "throughput and cost on one replica, `fleetwise catalog` for instances and prices, `fleetwise models` "
    "for the bundled model library. Every command takes --json."
)
# command -> (module in fleetwise.cli, attribute, its help text's attribute or None); a sub-app is a Typer
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "catalog": ("catalog_cmd", "app", None),
    "models": ("models_cmd", "app", None),
    "workload": ("workload_cmd", "app", None),
    "plan": ("plan_cmd", "plan_command", "PLAN_HELP"),
    "fit": ("fit_cmd", "fit", None),
    "predict": ("predict_cmd", "predict_command", None),
    "simulate": ("simulate_cmd", "simulate_command", None),
    "calibrate": ("calibrate_cmd", "calibrate_command", None),
    "validate": ("calibrate_cmd", "validate_command", None),
}


def build_app(commands: Iterable[str] = COMMANDS) -> typer.Typer:
    """The `fleetwise` app with the given commands (all by default); only their modules are imported."""
    built = typer.Typer(name="fleetwise", help=HELP, no_args_is_help=True, add_completion=False,
                        pretty_exceptions_enable=False, rich_markup_mode="rich")
    built.callback()(_root)
    for name in commands:
        module_name, attribute, help_attribute = COMMANDS[name]
        module = importlib.import_module(f"fleetwise.cli.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            built.add_typer(target, name=name)
        else:
            built.command(name, help=getattr(module, help_attribute) if help_attribute else None)(target)
    return built


def __getattr__(name: str) -> typer.Typer:
    """`app`: the whole app, built when first asked for (tests, `python -m fleetwise.cli.app`)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleetwise {__version__} ({build_kind()})")
        raise typer.Exit()


def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Plan LLM serving on AWS."""


def _commands_for(args: list[str]) -> Iterable[str]:
    """Only the command being run, when the first argument names one (the others' libraries stay unloaded);
    every command otherwise (help, a typo to suggest against)."""
    return (args[0],) if args and args[0] in COMMANDS else COMMANDS


def run() -> None:
    """Run the app: user errors print one line and exit with status 2."""
    try:
        build_app(_commands_for(sys.argv[1:]))(prog_name="fleetwise")
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
