"""Synthetic planner inputs: Options with chosen capacities and prices, and deployments built from them."""

from __future__ import annotations

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.costing import Deployment, plan_pool
from fleetwise.plan.spec import PlanSpec


def option(name: str, capacity: list[float], price: float | None, per_instance: int = 1, *, kind: str = "gpu",
           family: str | None = None, tp: int = 1, max_seqs: int = 8, compiled: bool = False,
           **prices: float) -> Option:
    """An option called `name` (its family the part before the dot) carrying `capacity` requests/s per replica per
    bucket, at `price` USD per on-demand instance-hour (None: no on-demand price); other purchase prices by keyword
    (`spot=`, `reserved_1y=`)."""
    grid = np.tile(np.linspace(0.0, 1.0, 4), (len(capacity), 1))
    return Option(instance=name, family=family or name.split(".")[0], kind=kind, accelerator="x", engine="vllm",
                  tp=tp, dtype="bf16", max_seqs=max_seqs, compiled=compiled, replicas_per_instance=per_instance,
                  prices={"on-demand": price, **{k.replace("_", "-"): v for k, v in prices.items()}},
                  price_sources={}, kv_cache_gib=1.0, calibrated=True, capacity=np.array(capacity, dtype=float),
                  curve_rate=grid, curve_ttft_s=grid, curve_tpot_s=grid, slo_miss="")


def flat_rates(rate: float = 1.0, buckets: int = 1) -> np.ndarray:
    """The same `rate` requests/s in every bucket and every hour, shape (24, buckets)."""
    return np.full((24, buckets), rate)


def single(spec: PlanSpec, chosen: Option, rates: np.ndarray | None = None) -> Deployment:
    """`chosen` as one pool serving all of `rates` (default: one request/s all day)."""
    rates = flat_rates() if rates is None else rates
    return Deployment([plan_pool(spec, chosen, rates, np.ones(rates.shape[1]))], "single")
