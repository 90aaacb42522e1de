"""Whether the simulator's hot modules run compiled (mypyc, from a regular install) or as pure Python."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# setup.py compiles these (and only these) for a regular install.
HOT_MODULES = ("perf/step_time", "sim/batching", "sim/block_manager", "sim/decode_batch", "sim/replica",
               "sim/scheduler", "sim/request_log", "sim/itl", "sim/events", "sim/pool", "sim/roster", "sim/routers",
               "sim/fleet")


def compiled_modules() -> list[str]:
    """The hot modules that have a compiled extension beside their source (checked without importing them)."""
    root = Path(__file__).parent
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return [name for name in HOT_MODULES
            if any((root / f"{name}{suffix}").exists() for suffix in suffixes)]


def build_kind() -> str:
    """How the simulator runs, in words: compiled (every hot module), pure Python (none), or which ones are."""
    compiled = compiled_modules()
    if len(compiled) == len(HOT_MODULES):
        return "simulator compiled with mypyc"
    return "pure Python" if not compiled else f"partly compiled: {', '.join(compiled)}"
