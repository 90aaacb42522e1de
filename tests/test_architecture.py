"""The codebase's shape: layers import only downwards, modules stay readable, functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fleetwise"
# Each package may import only from its own layer or the ones before it.
LAYERS = [
    {"__init__", "errors", "units", "sourced", "datafiles", "dtypes", "native"},  # shared basics
    {"catalog", "models", "workload"},  # facts and inputs
    {"engines"},
    {"fit"},
    {"perf"},
    {"sim"},
    {"predict"},
    {"plan"},
    {"cli"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _layer(package: str) -> int:
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"fleetwise.{package} is in no layer; add it to LAYERS")


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fleetwise"):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("fleetwise")]
    return found


def test_every_import_points_down_the_layers() -> None:
    upward = []
    for path in _modules():
        own = _layer(_package(path))
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            if _layer(parts[1]) > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not upward, "imports running up a layer:\n" + "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    assert _layer("perf") < _layer("sim") < _layer("plan")
    module = tmp_path / "bad.py"
    module.write_text("from fleetwise.sim.fleet import run_pool\n", encoding="utf-8")
    assert _imports(module) == [(1, "fleetwise.sim.fleet")]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_readable_in_one_sitting(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(SRC)} has {lines} lines; split it by concept"


def test_functions_stay_short() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
