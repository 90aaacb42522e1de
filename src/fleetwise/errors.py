"""User-facing errors: anything raised from here is the user's input at fault and ends the CLI with exit 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FleetwiseError(Exception):
    """An error caused by user input or user data, reported without a traceback."""


class UnknownNameError(FleetwiseError):
    """A name (model, instance, chip, engine, dtype) that is not in the registry."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = closest_names(name, known)
        hint = f"; closest: {', '.join(self.suggestions)}" if self.suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")


class DataFileError(FleetwiseError):
    """A data file (catalog YAML/CSV, config.json) that is missing, malformed or fails validation."""

    def __init__(self, path: str, message: str, entry: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.entry = entry
        self.field = field
        where = path
        if entry is not None:
            where += f", entry {entry}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


def closest_names(name: str, known: Iterable[str], limit: int = 5) -> list[str]:
    """Return up to `limit` known names that look most like `name` (case-insensitive, substring-aware)."""
    candidates = sorted(set(known))
    lowered = {c.lower(): c for c in candidates}
    needle = name.lower()
    substring = [c for c in candidates if needle and (needle in c.lower() or c.lower().split("/")[-1] in needle)]
    fuzzy = [lowered[m] for m in difflib.get_close_matches(needle, list(lowered), n=limit, cutoff=0.5)]
    tails = {c.lower().split("/")[-1]: c for c in candidates}
    fuzzy_tail = [
        tails[m] for m in difflib.get_close_matches(needle.split("/")[-1], list(tails), n=limit, cutoff=0.5)
    ]
    ordered: list[str] = []
    for c in fuzzy + fuzzy_tail + substring:
        if c not in ordered:
            ordered.append(c)
    return ordered[:limit]
