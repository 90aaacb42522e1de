"""Request traces from CSV: fleetwise's own format and the public ones users have (Azure, BurstGPT, Splitwise/Vidur).

| format | columns read |
|---|---|
| fleetwise | arrival_s, prompt_tokens, output_tokens[, prefix_id, prefix_tokens, session_id] |
| azure | TIMESTAMP (date-time), ContextTokens, GeneratedTokens (Azure LLM inference trace) |
| burstgpt | Timestamp (seconds), Request tokens, Response tokens (BurstGPT) |
| vidur | arrived_at (seconds), num_prefill_tokens, num_decode_tokens (Splitwise traces as Vidur ships them) |

Rows a serving run could not replay (no prompt, or no output, e.g. BurstGPT's failed requests) are dropped and
counted, never silently.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from fleetwise.datafiles import read_text_file
from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.workload.requests import Requests

_EPOCH = datetime(1970, 1, 1)
_LARGEST_COUNT = 2**31 - 1  # token counts and ids are stored as int64; no context comes near this
FORMATS: dict[str, tuple[str, str, str]] = {
    "fleetwise": ("arrival_s", "prompt_tokens", "output_tokens"),
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
    "vidur": ("arrived_at", "num_prefill_tokens", "num_decode_tokens"),
}


@dataclass(frozen=True)
class Trace:
    """Requests read from a trace, the format detected, and how many rows were dropped and why."""

    requests: Requests
    format: str
    dropped: dict[str, int]


def read_trace(path: str | Path, format: str = "auto") -> Trace:
    """Read a trace CSV (format detected from its header unless given); times start at zero."""
    name = str(path)
    reader = csv.DictReader(io.StringIO(read_text_file(path)))
    header = [h.strip() for h in reader.fieldnames or []]
    fmt = _detect(header, name) if format == "auto" else format
    if fmt not in FORMATS:
        raise DataFileError(name, f"unknown trace format {fmt!r}; expected one of {', '.join(FORMATS)} or auto")
    time_col, prompt_col, output_col = FORMATS[fmt]
    missing = [c for c in FORMATS[fmt] if c not in header]
    if missing:
        raise DataFileError(name, f"{fmt} trace lacks column(s) {', '.join(missing)}")
    parse_time = _parse_datetime if fmt == "azure" else float
    times, prompts, outputs, prefix_ids, prefix_tokens, sessions = [], [], [], [], [], []
    dropped = {"no prompt tokens": 0, "no output tokens": 0}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        t = _field(row, time_col, parse_time, name, line)
        prompt = _tokens(row, prompt_col, name, line)
        output = _tokens(row, output_col, name, line)
        if prompt < 1:
            dropped["no prompt tokens"] += 1
            continue
        if output < 1:
            dropped["no output tokens"] += 1
            continue
        times.append(t)
        prompts.append(prompt)
        outputs.append(output)
        prefix_ids.append(_whole(row, "prefix_id", -1, name, line))
        prefix_tokens.append(_whole(row, "prefix_tokens", 0, name, line))
        sessions.append(_whole(row, "session_id", -1, name, line))
    if not times:
        raise DataFileError(name, "no replayable requests in the trace")
    _check_prefixes(name, prompts, prefix_ids, prefix_tokens, sessions)
    arrival = np.asarray(times, dtype=np.float64)
    order = np.argsort(arrival, kind="stable")
    arrival = arrival[order] - arrival[order][0]
    requests = Requests(arrival, *(np.asarray(a, dtype=np.int64)[order]
                                   for a in (prompts, outputs, prefix_ids, prefix_tokens, sessions)))
    return Trace(requests, fmt, {k: v for k, v in dropped.items() if v})


def write_trace(requests: Requests, path: str | Path) -> None:
    """Write requests in fleetwise's trace format."""
    try:
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["arrival_s", "prompt_tokens", "output_tokens", "prefix_id", "prefix_tokens",
                             "session_id"])
            for row in zip(np.round(requests.arrival_s, 6), requests.prompt_tokens, requests.output_tokens,
                           requests.prefix_id, requests.prefix_tokens, requests.sessions, strict=True):
                writer.writerow([float(row[0]), *(int(x) for x in row[1:])])
    except OSError as exc:
        raise FleetwiseError(f"cannot write the trace to {path}: {exc.strerror or exc}") from None


def _check_prefixes(name: str, prompts: list[int], prefix_ids: list[int], prefix_tokens: list[int],
                    sessions: list[int]) -> None:
    """A shared prefix lies inside its prompt, comes with an id, and system-prompt ids differ from conversation ids."""
    conversations = {s for s in sessions if s >= 0}
    for row, (prompt, prefix, shared, session) in enumerate(zip(prompts, prefix_ids, prefix_tokens, sessions,
                                                                strict=True), start=1):
        if shared < 0 or shared >= prompt:
            raise DataFileError(name, f"prefix_tokens {shared} must be at least 0 and below the prompt's {prompt}",
                                entry=f"request {row}", field="prefix_tokens")
        if (prefix >= 0) != (shared > 0):
            raise DataFileError(name, "a prefix_id needs prefix_tokens > 0, and prefix_tokens need a prefix_id",
                                entry=f"request {row}", field="prefix_id")
        if prefix >= 0 and prefix != session and prefix in conversations:
            raise DataFileError(name, f"prefix_id {prefix} is also a session_id; use distinct ids",
                                entry=f"request {row}", field="prefix_id")


def _detect(header: list[str], name: str) -> str:
    for fmt, columns in FORMATS.items():
        if all(c in header for c in columns):
            return fmt
    known = "; ".join(f"{fmt}: {', '.join(cols)}" for fmt, cols in FORMATS.items())
    raise DataFileError(name, f"cannot tell the trace format from its header {header}; expected {known}")


def _field(row: dict[str, str], column: str, parse: Callable[[str], float], name: str, line: int) -> float:
    text = row.get(column, "")
    try:
        value = parse(text)
    except ValueError:
        raise DataFileError(name, f"cannot read {text!r}", entry=f"line {line}", field=column) from None
    if not np.isfinite(value) or value < 0:
        raise DataFileError(name, f"must be a non-negative number, got {text!r}", entry=f"line {line}", field=column)
    return value


def _tokens(row: dict[str, str], column: str, name: str, line: int) -> int:
    """A token count (written as a whole or decimal number), at most 2^31 - 1."""
    value = _field(row, column, float, name, line)
    if value > _LARGEST_COUNT:
        raise DataFileError(name, f"{row[column]!r} tokens is beyond any model's context", entry=f"line {line}",
                            field=column)
    return int(value)


def _whole(row: dict[str, str], column: str, default: int, name: str, line: int) -> int:
    """An optional integer column (an id or a token count); empty means `default`."""
    text = row.get(column, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise DataFileError(name, f"must be a whole number, got {text!r}", entry=f"line {line}", field=column) from None
    if not -1 <= value <= _LARGEST_COUNT:
        raise DataFileError(name, f"must be -1 (none) or between 0 and 2^31 - 1, got {text!r}",
                            entry=f"line {line}", field=column)
    return value


def _parse_datetime(text: str) -> float:
    """Azure's TIMESTAMP ('2023-11-16 18:15:46.6805900') in seconds; more than 6 fraction digits are cut."""
    head, _, fraction = text.partition(".")
    stamp = datetime.fromisoformat(head.replace("T", " ")).replace(tzinfo=None)
    return (stamp - _EPOCH).total_seconds() + (float("0." + fraction) if fraction.isdigit() else 0.0)
