"""Bundled workloads by name, or a user's workload file."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from fleetwise.errors import UnknownNameError
from fleetwise.workload.spec import Workload, load_workload


@cache
def bundled_workloads() -> dict[str, Workload]:
    """The workloads shipped with fleetwise, by name."""
    folder = resources.files("fleetwise.workload") / "data"
    out: dict[str, Workload] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            with resources.as_file(item) as path:
                workload = load_workload(path)
            out[workload.name] = workload
    return out


def resolve_workload(name_or_path: str) -> Workload:
    """A bundled workload by name, else a YAML/JSON workload file."""
    bundled = bundled_workloads()
    if name_or_path in bundled:
        return bundled[name_or_path]
    if Path(name_or_path).expanduser().exists() or name_or_path.endswith((".yaml", ".yml", ".json")):
        return load_workload(name_or_path)
    raise UnknownNameError("workload (bundled name or YAML/JSON file)", name_or_path, bundled)
