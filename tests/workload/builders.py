"""A small workload for tests: fixed 100-token prompts at 5 requests/s for 2,000 s, with any field overridden."""

from __future__ import annotations

from typing import Any

from fleetwise.workload import Arrivals, Lengths, Workload


def small_workload(**overrides: Any) -> Workload:
    """The test workload with `overrides` applied."""
    values: dict[str, Any] = {
        "duration_s": 2000.0, "arrivals": Arrivals(rate_per_s=5.0),
        "prompt_tokens": Lengths(distribution="fixed", mean=100), "output_tokens": Lengths(mean=20), "seed": 1}
    values.update(overrides)
    return Workload(**values)
