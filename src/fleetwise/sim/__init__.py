"""Serving simulator: pools of replicas under continuous batching with paged KV, routing, autoscaling and spot."""

from fleetwise.sim.fleet import FleetRun, FleetSpec, run_fleet, run_pool
from fleetwise.sim.metrics import Slo, summarize
from fleetwise.sim.pool import Autoscale, PoolSpec, Spot
from fleetwise.sim.routers import ROUTERS

__all__ = ["ROUTERS", "Autoscale", "FleetRun", "FleetSpec", "PoolSpec", "Slo", "Spot", "run_fleet", "run_pool",
           "summarize"]
