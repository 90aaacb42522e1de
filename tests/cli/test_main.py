"""The `fleetwise` entry point and app-wide contracts: --version fast path, one-line errors, help, --json."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer.main
from typer.testing import CliRunner

from fleetwise import __version__
from fleetwise.cli.app import app
from fleetwise.cli.main import main
from fleetwise.native import build_kind
from fleetwise.workload import bundled_workloads

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
README = Path(__file__).resolve().parents[2] / "README.md"


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = dict(_walk(ROOT))  # () is the root; ("catalog", "show") a subcommand; built from the app itself
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not getattr(cmd, "commands", None)}
# what a user can run and get an answer from: every leaf, and groups that answer on their own (`fleetwise catalog`)
RUNNABLE = {path: cmd for path, cmd in COMMANDS.items()
            if path and (path in LEAVES or getattr(cmd, "invoke_without_command", False))}
WITH_REQUIRED = {path: cmd for path, cmd in LEAVES.items() if any(p.required for p in cmd.params)}


def _ids(paths: Any) -> list[str]:
    return [" ".join(p) or "fleetwise" for p in paths]


def _flat(text: str) -> str:
    """Help text with the rich boxes removed and whitespace collapsed, so wrapped lines read as one."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_version_answers_without_loading_the_app(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "fleetwise.cli.app", raising=False)
    monkeypatch.setattr(sys, "argv", ["fleetwise", "--version"])
    main()
    assert capsys.readouterr().out == f"fleetwise {__version__} ({build_kind()})\n"
    assert "fleetwise.cli.app" not in sys.modules


def test_fast_path_and_app_print_the_same_version(run: Run) -> None:
    fast = run("--version").ok()
    via_app = CliRunner().invoke(app, ["--version"], prog_name="fleetwise")
    assert via_app.exit_code == 0
    assert fast.out == via_app.stdout == f"fleetwise {__version__} ({build_kind()})\n"


def test_installed_console_script_prints_the_version(run_installed: Run) -> None:
    assert run_installed("--version").ok().out == f"fleetwise {__version__} ({build_kind()})\n"


def test_installed_console_script_reports_a_user_error_in_one_line(run_installed: Run) -> None:
    run_installed("models", "show", "meta-llama/Llama-3.1-8B-Instrukt").user_error(
        "unknown model 'meta-llama/Llama-3.1-8B-Instrukt'", f"closest: {LLAMA}")


def test_library_errors_become_one_line_and_exit_2(run: Run) -> None:
    run("fit", "no-such-model").user_error("unknown model 'no-such-model'")


def test_refused_option_values_name_the_field_in_one_line(run: Run) -> None:
    # a record refusing a value (pydantic) takes the same one-line path as the library's own errors
    run("simulate", "-m", LLAMA, "-H", "p5.48xlarge", "--rate", "-1", "-i", "10", "-o", "10").user_error(
        "rate_per_s", "greater than 0")


@pytest.mark.parametrize(("args", "given"), [
    (("plan", "--purchase", "lease", "--no-report"), "lease"),
    (("simulate", "-m", LLAMA, "-H", "p5.48xlarge", "--rate", "-1", "-i", "10", "-o", "10"), "-1"),
], ids=["plan-purchase", "simulate-rate"])
def test_refused_option_values_also_name_the_value_given(run: Run, args: tuple[str, ...], given: str) -> None:
    run(*args).user_error(given)


def test_app_tree_holds_every_documented_command() -> None:
    # guards the walk below: if it found nothing, every derived test would pass vacuously
    documented = {("plan",), ("fit",), ("predict",), ("simulate",), ("calibrate",), ("validate",), ("catalog",),
                  ("catalog", "show"), ("catalog", "chips"), ("catalog", "import-prices"), ("models",),
                  ("models", "show"), ("workload",), ("workload", "list"), ("workload", "show"),
                  ("workload", "generate"), ("workload", "read")}
    assert documented <= set(COMMANDS)


def test_root_help_lists_every_command_with_its_summary(run: Run) -> None:
    shown = run("--help").ok()
    text = _flat(shown.out)
    for name, command in ROOT.commands.items():
        summary = _flat(command.help.split("\n\n")[0]).split(":")[0]
        assert name in text and summary in text, name


def test_no_arguments_shows_the_command_list(run: Run) -> None:
    shown = run()
    assert "Traceback" not in shown.out + shown.err
    assert all(name in shown.out for name in ROOT.commands)


@pytest.mark.parametrize("path", list(COMMANDS), ids=_ids(COMMANDS))
def test_help_teaches_every_command_and_option(run: Run, path: tuple[str, ...]) -> None:
    command = COMMANDS[path]
    shown = run(*path, "--help").ok()
    text = _flat(shown.out)
    assert f"Usage: {' '.join(('fleetwise', *path))}" in text
    assert _flat(command.help.split("\n\n")[0]) in text
    for param in command.params:
        if param.param_type_name == "option":
            assert all(opt in text for opt in (*param.opts, *param.secondary_opts)), param.opts
        else:
            assert param.name in text, param.name
        if param.help:
            assert _flat(param.help) in text, (param.name, param.help)


@pytest.mark.parametrize("path", list(RUNNABLE), ids=_ids(RUNNABLE))
def test_every_command_takes_json(path: tuple[str, ...]) -> None:
    assert any("--json" in p.opts for p in RUNNABLE[path].params)


@pytest.mark.parametrize("path", list(WITH_REQUIRED), ids=_ids(WITH_REQUIRED))
def test_missing_required_input_exits_2_naming_it(run: Run, path: tuple[str, ...]) -> None:
    shown = run(*path)
    assert shown.code == 2 and "Traceback" not in shown.out + shown.err
    first = next(p for p in WITH_REQUIRED[path].params if p.required)
    assert (first.opts[0] if first.param_type_name == "option" else first.name) in shown.err


def test_readme_commands_table_names_every_command() -> None:
    readme = README.read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for name in ROOT.commands:
        assert f"`fleetwise {name}" in table, name


@pytest.fixture
def json_samples(tmp_path: Path, offer_file: Path, small_measurements: Path) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Cheap arguments for every runnable command; the keys must cover the whole app (checked below)."""
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0.0,100,10\n0.5,200,20\n")
    workload = next(iter(bundled_workloads()))
    return {
        ("plan",): ("plan", "--rate", "1", "-i", "200", "-o", "20", "--instances", "g6e.xlarge", "--no-verify",
                    "--no-report"),
        ("fit",): ("fit", LLAMA, "--instance", "g6e.xlarge"),
        ("predict",): ("predict", "-m", LLAMA, "-H", "g6e.xlarge", "--batch", "1", "-i", "100", "-o", "10"),
        ("simulate",): ("simulate", "-m", LLAMA, "-H", "g6e.xlarge", "--trace", trace),
        ("calibrate",): ("calibrate", "--measurements", small_measurements, "--no-cross-validate", "-o",
                         tmp_path / "cal.yaml"),
        ("validate",): ("validate", "--measurements", small_measurements),
        ("catalog",): ("catalog", "--family", "g6e"),
        ("catalog", "show"): ("catalog", "show", "g6e.xlarge"),
        ("catalog", "chips"): ("catalog", "chips"),
        ("catalog", "import-prices"): ("catalog", "import-prices", offer_file, "-o", tmp_path / "prices.csv"),
        ("models",): ("models",),
        ("models", "show"): ("models", "show", LLAMA),
        ("workload", "list"): ("workload", "list"),
        ("workload", "show"): ("workload", "show", workload, "--duration", "60"),
        ("workload", "generate"): ("workload", "generate", workload, "--duration", "60", "-o",
                                   tmp_path / "out.csv"),
        ("workload", "read"): ("workload", "read", trace),
    }


def test_json_samples_cover_every_command(json_samples: dict[tuple[str, ...], tuple[Any, ...]]) -> None:
    assert set(json_samples) == set(RUNNABLE)


@pytest.mark.parametrize("path", list(RUNNABLE), ids=_ids(RUNNABLE))
def test_every_command_prints_strict_json(run: Run, json_samples: dict[tuple[str, ...], tuple[Any, ...]],
                                          path: tuple[str, ...]) -> None:
    payload = run(*json_samples[path], "--json").json()
    assert isinstance(payload, dict) and payload
