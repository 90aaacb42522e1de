"""Where a run's requests come from: a workload (bundled or a file), a trace, or a flat Poisson rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fleetwise.errors import FleetwiseError
from fleetwise.workload.library import resolve_workload
from fleetwise.workload.requests import Requests, generate
from fleetwise.workload.spec import Arrivals, Lengths, Workload
from fleetwise.workload.traces import read_trace

FLAT_DURATION_S = 600.0  # seconds of a flat --rate stream when no duration is given


@dataclass(frozen=True)
class RequestSource:
    """Exactly one of: a workload name or file, a trace file, or a Poisson rate with fixed lengths."""

    workload: str | None = None
    trace: str | Path | None = None
    rate_per_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    duration_s: float | None = None  # default: the workload's own (FLAT_DURATION_S for a rate, all of a trace)
    seed: int | None = None  # synthetic workloads: same seed, same requests

    def __post_init__(self) -> None:
        given = [x for x in (self.workload, self.trace, self.rate_per_s) if x is not None]
        if len(given) != 1:
            raise FleetwiseError("give exactly one of --workload, --trace or --rate (with -i and -o)")
        if self.rate_per_s is not None and (self.input_tokens is None or self.output_tokens is None):
            raise FleetwiseError("--rate needs --input-tokens and --output-tokens")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise FleetwiseError(f"--duration must be a positive number of seconds, got {self.duration_s}")
        if self.seed is not None and self.seed < 0:
            raise FleetwiseError(f"--seed must not be negative, got {self.seed}")

    def requests(self) -> Requests:
        """The requests, read or generated."""
        if self.trace is not None:
            requests = read_trace(self.trace).requests
            return requests if self.duration_s is None else requests.head(self.duration_s)
        if self.rate_per_s is not None:
            assert self.input_tokens is not None and self.output_tokens is not None  # checked above
            prompt, output = Lengths(mean=self.input_tokens), Lengths(mean=self.output_tokens)
            spec = Workload(name="poisson", duration_s=self.duration_s or FLAT_DURATION_S,
                            arrivals=Arrivals(rate_per_s=self.rate_per_s), prompt_tokens=prompt, output_tokens=output)
        else:
            spec = resolve_workload(str(self.workload))
        updates: dict[str, float | int] = {}
        if self.duration_s is not None:
            updates["duration_s"] = self.duration_s
        if self.seed is not None:
            updates["seed"] = self.seed
        return generate(spec.replace(**updates) if updates else spec)
