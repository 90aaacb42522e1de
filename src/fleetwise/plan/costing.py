"""From capacities to money: replicas per hour, instances bought on-demand, spot or reserved, and what a month costs.

- Replicas per hour = the hour's load (each bucket's rate over the replica's capacity for it), rounded up; whole
  instances are bought (a p5.48xlarge carries eight TP=1 replicas).
- Cold starts: capacity for the next hour is launched `lead_s` (start-up, plus Neuron compile unless cached) before
  the hour begins and is paid from launch, so it is serving when the load rises.
- Reserved: the always-on base, as many instances as stay busy at least the break-even share of hours
  (reserved price / on-demand price), priced for every hour.
- Spot: up to `spot_max_share` of the rest of each hour's instances, plus spares for the instances expected to be
  down at once (interruptions per hour × replacement time); the remainder stays on-demand to hold the SLO. Spot is
  used only where it makes the day cheaper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.spec import PlanSpec

HOURS_PER_MONTH = 365 * 24 / 12  # 730, the average month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
RESERVED = ("reserved-3y", "reserved-1y")


@dataclass
class PoolPlan:
    """One pool of a deployment: its option, the share of each bucket it serves, and its hourly purchase plan."""

    option: Option
    bucket_share: np.ndarray  # (B,) fraction of each bucket's requests routed here
    replicas: np.ndarray  # (24,) replicas serving in each hour
    instances: np.ndarray  # (24,) instances (replicas rounded up to whole instances)
    reserved: int = 0  # always-on reserved instances
    reserved_term: str | None = None
    spot: np.ndarray = field(default_factory=lambda: np.zeros(24, dtype=np.int64))  # spot instances incl. spares
    spot_spares: np.ndarray = field(default_factory=lambda: np.zeros(24, dtype=np.int64))
    on_demand: np.ndarray = field(default_factory=lambda: np.zeros(24, dtype=np.int64))
    hourly_usd: np.ndarray = field(default_factory=lambda: np.zeros(24))
    cost_by_purchase: dict[str, float] = field(default_factory=dict)  # USD per month
    break_even: dict[str, float | None] = field(default_factory=dict)  # utilisation a commitment needs
    notes: list[str] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        """Cost of an average month."""
        return float(self.hourly_usd.sum()) * DAYS_PER_MONTH

    def purchases(self) -> list[str]:
        """Purchase options this pool actually uses."""
        return [p for p, usd in self.cost_by_purchase.items() if usd > 0]


def replicas_by_hour(option: Option, bucket_rates: np.ndarray) -> np.ndarray:
    """Replicas each hour needs for `bucket_rates` (24, B) requests/s; at least one, so the pool stays up."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_bucket = np.where(bucket_rates > 0, bucket_rates / option.capacity[None, :], 0.0)
    load = per_bucket.sum(axis=1)
    if not np.all(np.isfinite(load)):
        raise ValueError(f"{option.name} has no capacity for a bucket it was given")
    return np.asarray(np.maximum(np.ceil(load - 1e-9), 1), dtype=np.int64)


def plan_pool(spec: PlanSpec, option: Option, bucket_rates: np.ndarray, share: np.ndarray,
              replicas: np.ndarray | None = None) -> PoolPlan:
    """Size and buy one pool for `share` of each bucket of `bucket_rates` (24, B); `replicas` overrides sizing."""
    routed = bucket_rates * share[None, :]
    need = replicas if replicas is not None else replicas_by_hour(option, routed)
    instances = -(-need // option.replicas_per_instance)
    pool = PoolPlan(option=option, bucket_share=share, replicas=need, instances=instances)
    _buy(spec, pool)
    return pool


def _buy(spec: PlanSpec, pool: PoolPlan) -> None:
    """Choose reserved, spot and on-demand instances per hour, and price them."""
    prices = pool.option.prices
    on_demand = prices.get("on-demand")
    spot_price = prices.get("spot")
    instances = pool.instances
    lead_s = spec.startup_s + (spec.compile_s if pool.option.compiled else 0.0)
    launched = np.maximum(np.roll(instances, -1) - instances, 0)  # started ahead of the next hour's rise
    lead_hours = launched * min(lead_s, 3600.0) / 3600.0
    for term in (t for t in RESERVED if t in spec.purchase):
        price = prices.get(term)
        pool.break_even[term] = None if price is None or not on_demand else round(price / on_demand, 4)
    best_term = min((t for t in RESERVED if pool.break_even.get(t) is not None),
                    key=lambda t: prices[t] or math.inf, default=None)
    if best_term is not None:
        share_needed = pool.break_even[best_term] or 0.0
        pool.reserved = max((k for k in range(1, int(instances.max()) + 1)
                             if np.mean(instances >= k) >= share_needed), default=0)
        pool.reserved_term = best_term if pool.reserved else None
    elif any(t in spec.purchase for t in RESERVED):
        pool.notes.append(f"no reserved price for {pool.option.instance} in {spec.region} (not found; import one "
                          "with `fleetwise catalog import-prices`)")
    rest = instances - np.minimum(instances, pool.reserved)
    fallback = on_demand if on_demand is not None else spot_price
    assert fallback is not None  # an option without an on-demand or spot price is rejected earlier
    plain_od = rest.copy() if on_demand is not None else np.zeros_like(rest)
    plain_spot = np.zeros_like(rest) if on_demand is not None else rest.copy()
    candidates = [(plain_od, plain_spot, np.zeros_like(rest))]
    if spot_price is not None and on_demand is not None:
        spot = np.floor(rest * spec.spot_max_share).astype(np.int64)
        spares = np.ceil(spot * spec.spot_interruptions_per_hour * (lead_s + 120.0) / 3600.0).astype(np.int64)
        candidates.append((rest - spot, spot + spares, spares))
    elif spot_price is not None:  # spot only: spares, but no on-demand floor
        spares = np.ceil(rest * spec.spot_interruptions_per_hour * (lead_s + 120.0) / 3600.0).astype(np.int64)
        candidates[0] = (np.zeros_like(rest), rest + spares, spares)
        pool.notes.append("spot only: no on-demand floor, so a wave of interruptions can breach the SLO")

    def hourly(od: np.ndarray, sp: np.ndarray) -> np.ndarray:
        reserved_usd = pool.reserved * (prices.get(pool.reserved_term or "") or 0.0)
        return np.asarray(od * (on_demand or 0.0) + sp * (spot_price or 0.0) + reserved_usd + lead_hours * fallback,
                          dtype=np.float64)

    od, sp, spares = min(candidates, key=lambda c: float(hourly(c[0], c[1]).sum()))
    pool.on_demand, pool.spot, pool.spot_spares = od, sp, spares
    pool.hourly_usd = hourly(od, sp)
    pool.cost_by_purchase = {
        "on-demand": float((od * (on_demand or 0.0) + lead_hours * fallback).sum()) * DAYS_PER_MONTH,
        "spot": float((sp * (spot_price or 0.0)).sum()) * DAYS_PER_MONTH,
    }
    if pool.reserved_term:
        pool.cost_by_purchase[pool.reserved_term] = pool.reserved * (prices[pool.reserved_term] or 0.0) * \
            HOURS_PER_MONTH


@dataclass
class Deployment:
    """One or more pools serving the whole workload."""

    pools: list[PoolPlan]
    kind: str  # "single" or "mix"

    @property
    def monthly_usd(self) -> float:
        """Cost of an average month across pools."""
        return sum(p.monthly_usd for p in self.pools)

    @property
    def name(self) -> str:
        """The pools, joined."""
        return " + ".join(f"{p.option.name}" for p in self.pools)

    def hourly_usd(self) -> np.ndarray:
        """Cost of each hour of the day across pools."""
        return np.asarray(np.sum([p.hourly_usd for p in self.pools], axis=0), dtype=np.float64)
