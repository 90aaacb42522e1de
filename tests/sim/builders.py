"""Shared builders for the simulator's tests: a Llama-3.1-8B pool on p5.48xlarge and fixed-length Poisson traffic."""

from __future__ import annotations

from fleetwise.models import load_model
from fleetwise.sim import PoolSpec
from fleetwise.workload import Arrivals, Lengths, Requests, SharedPrefixes, Workload, generate

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


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
