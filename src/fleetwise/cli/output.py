"""Shared printing for the CLI: JSON to stdout, rich tables, and number formatting."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
    console = Console(width=200)
err_console = Console(stderr=True)


def emit_json(payload: Any) -> None:
    """Write `payload` as indented, strictly valid JSON to stdout: NaN and infinity become null."""
    sys.stdout.write(json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def table(title: str | None, columns: list[tuple[str, str]]) -> Table:
    """A rich table with (header, justify) columns."""
    t = Table(title=title, title_justify="left", header_style="bold", show_lines=False, pad_edge=False)
    for header, justify in columns:
        t.add_column(header, justify=justify)  # type: ignore[arg-type]
    return t


def fmt(value: float | int | None, digits: int = 2, unknown: str = "n/a") -> str:
    """A number with thousands separators, or `unknown` when it is None."""
    if value is None:
        return unknown
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def fmt_params(count: float | None) -> str:
    """Parameter count in billions (or millions below 1 B)."""
    if count is None:
        return "n/a"
    return f"{count / 1e9:,.2f} B" if count >= 1e9 else f"{count / 1e6:,.1f} M"
