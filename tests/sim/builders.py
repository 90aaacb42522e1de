"""Shared builders for the simulator's tests: a Llama-3.1-8B pool on p5.48xlarge, fixed-length Poisson traffic, and
exact inter-token latency percentiles from every gap."""

from __future__ import annotations

import numpy as np

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.sim import PoolSpec, run_pool
from fleetwise.sim.metrics import PERCENTILES
from fleetwise.workload import Arrivals, Lengths, Requests, SharedPrefixes, Workload, generate

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
Run = tuple[float, float, int, float]  # decode steps: (first gap s, growth per step s, steps, sequences)


def pool_spec(**overrides: object) -> PoolSpec:
    """One replica of Llama-3.1-8B, TP=1 bf16, on p5.48xlarge (the default engine), with `overrides`."""
    values: dict[str, object] = dict(model=load_model(MODEL), hardware="p5.48xlarge", tp=1, dtype="bf16",
                                     engine=None, replicas=1)
    values.update(overrides)
    return PoolSpec(**values)  # type: ignore[arg-type]


def poisson(rate: float, duration: float, prompt: int = 512, output: int = 64,
            prefixes: SharedPrefixes | None = None, seed: int = 3) -> Requests:
    """Poisson arrivals at `rate` for `duration` seconds, every request `prompt` in and `output` out."""
    return generate(Workload(duration_s=duration, arrivals=Arrivals(rate_per_s=rate),
                             prompt_tokens=Lengths(mean=prompt), output_tokens=Lengths(mean=output),
                             shared_prefixes=prefixes, seed=seed))


def served(spec: PoolSpec, requests: Requests, catalog: Catalog,
           calibration: CalibrationTable) -> tuple[float, float, int]:
    """(offered and served requests/s, preemptions) of one simulated run: offered over the arrivals' span,
    served as completions over first arrival to last completion."""
    log = run_pool(spec, requests, catalog, calibration).log
    done = ~np.isnan(log.finish_s)
    first = float(requests.arrival_s.min())
    offered = len(requests) / max(float(requests.arrival_s.max()) - first, 1e-9)
    return offered, float(done.sum()) / (float(log.finish_s[done].max()) - first), int(log.preemptions.sum())


def replica_capacity(spec: PoolSpec, catalog: Catalog, calibration: CalibrationTable, prompt: int, output: int,
                     requests: int = 1200) -> float:
    """One replica's simulated capacity (requests/s): what it serves when `requests` arrive far faster."""
    return served(spec, poisson(50.0, requests / 50.0, prompt, output), catalog, calibration)[1]


def exact_percentiles(runs: list[Run], levels: tuple[int, ...] = PERCENTILES) -> list[float]:
    """Every gap of every run, sorted: the smallest gap whose cumulative token weight reaches each level."""
    gaps = np.concatenate([first + slope * np.arange(steps) for first, slope, steps, _ in runs])
    weights = np.concatenate([np.full(steps, sequences) for _, _, steps, sequences in runs])
    order = np.argsort(gaps, kind="stable")
    cumulative = np.cumsum(weights[order])
    return [float(gaps[order][min(int(np.searchsorted(cumulative, p / 100 * cumulative[-1])), len(gaps) - 1)])
            for p in levels]
