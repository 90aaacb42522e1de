"""From capacities to money: replicas per hour, instances bought on-demand, spot or reserved, and what a month costs.

- Replicas per hour = the hour's load (each bucket's rate over the replica's capacity for it), rounded up; whole
  instances are bought (a p5.48xlarge carries eight TP=1 replicas).
- Cold starts: capacity for the next hour is launched `lead_s` (start-up, plus Neuron compile unless cached) before
  the hour begins and is paid from launch, so it is serving when the load rises.
- Reserved: the always-on base, priced for every hour; how many is chosen with the rest (an instance busy less
  than the break-even share of hours, reserved price / on-demand price, is cheaper on demand or spot).
- Spot: up to `spot_max_share` of the rest of each hour's instances, plus spares for the instances expected to be
  down at once (interruptions per hour × launch delay, rounded up); the remainder stays on-demand to hold the SLO.
- The pool takes the cheapest of these combinations over the day (every reserved count, spot or not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.spec import COMMITMENTS, PlanSpec

HOURS_PER_MONTH = 365 * 24 / 12  # 730, the average month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
RESERVED = COMMITMENTS  # reserved instances and savings plans: a fixed hourly price for every hour of the term


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


def plan_pool(spec: PlanSpec, option: Option, bucket_rates: np.ndarray, share: np.ndarray) -> PoolPlan:
    """Size and buy one pool for `share` of each bucket of `bucket_rates` (24, B)."""
    return buy_pool(spec, option, share, replicas_by_hour(option, bucket_rates * share[None, :]))


def buy_pool(spec: PlanSpec, option: Option, share: np.ndarray, replicas: np.ndarray) -> PoolPlan:
    """Buy whole instances for `replicas` (24,) of `option` serving `share` of each bucket (a copy is kept)."""
    need = np.array(replicas, dtype=np.int64)
    pool = PoolPlan(option=option, bucket_share=share, replicas=need,
                    instances=-(-need // option.replicas_per_instance))
    _buy(spec, pool)
    return pool


def _launch_hours(instances: np.ndarray, lead_s: float) -> np.ndarray:
    """Instance-hours paid before serving: each instance added for the next hour starts `lead_s` early, booked to
    the hour before the rise."""
    return np.asarray(np.maximum(np.roll(instances, -1) - instances, 0) * lead_s / 3600.0, dtype=np.float64)


def _buy(spec: PlanSpec, pool: PoolPlan) -> None:
    """Choose reserved, spot and on-demand instances per hour (the cheapest combination), and price them."""
    prices = pool.option.prices
    on_demand, spot_price = prices.get("on-demand"), prices.get("spot")
    instances = pool.instances
    lead_s = spec.startup_s + (spec.compile_s if pool.option.compiled else 0.0)
    wanted_terms: list[str] = [t for t in RESERVED if t in spec.purchase]
    for wanted in wanted_terms:
        price = prices.get(wanted)
        pool.break_even[wanted] = None if price is None or not on_demand else round(price / on_demand, 4)
    priced_terms = [t for t in wanted_terms if prices.get(t) is not None]
    term = min(priced_terms, key=lambda t: prices[t] or math.inf, default=None)
    if wanted_terms and term is None:
        pool.notes.append(f"no reserved price for {pool.option.instance} in {spec.region} (not found; import one "
                          "with `fleetwise catalog import-prices`)")
    reserved_price = prices.get(term) if term is not None else None

    def split(reserved: int, use_spot: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """On-demand, spot (with spares) and spare instances per hour, and each hour's cost by purchase (on-demand
        with its launch lead, spot with its lead, reserved), for one choice."""
        rest = instances - np.minimum(instances, reserved)  # reserved instances run all day: no launches
        if not use_spot:
            on, spot, spares = rest, np.zeros_like(rest), np.zeros_like(rest)
        else:
            share = spec.spot_max_share if on_demand is not None else 1.0
            spot = np.floor(rest * share).astype(np.int64)
            # instances down at once while a reclaimed one is replaced (notice to ready: the launch delay)
            spares = np.ceil(spot * spec.spot_interruptions_per_hour * lead_s / 3600.0).astype(np.int64)
            on, spot = rest - spot, spot + spares
        on_usd = (on + _launch_hours(on, lead_s)) * (on_demand or 0.0)
        spot_usd = (spot + _launch_hours(spot, lead_s)) * (spot_price or 0.0)
        return on, spot, spares, on_usd, spot_usd

    spot_choices = [on_demand is None] if spot_price is None or on_demand is None else [False, True]
    if spot_price is not None and on_demand is not None and spot_price >= on_demand:
        spot_choices = [False]
    reserved_choices = range(int(instances.max()) + 1) if reserved_price is not None else range(1)
    choices = [(split(k, s), k) for k in reserved_choices for s in spot_choices]
    (on, spot, spares, on_usd, spot_usd), reserved = min(
        choices, key=lambda c: float(c[0][3].sum() + c[0][4].sum()) + c[1] * (reserved_price or 0.0) * 24)
    pool.on_demand, pool.spot, pool.spot_spares = on, spot, spares
    pool.reserved, pool.reserved_term = reserved, term if reserved else None
    pool.hourly_usd = np.asarray(on_usd + spot_usd + reserved * (reserved_price or 0.0), dtype=np.float64)
    pool.cost_by_purchase = {"on-demand": float(on_usd.sum()) * DAYS_PER_MONTH,
                             "spot": float(spot_usd.sum()) * DAYS_PER_MONTH}
    if reserved and term is not None:
        pool.cost_by_purchase[term] = reserved * (reserved_price or 0.0) * HOURS_PER_MONTH
    if on_demand is None and spot.any():
        pool.notes.append("spot only: no on-demand floor, so a wave of interruptions can breach the SLO")


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
