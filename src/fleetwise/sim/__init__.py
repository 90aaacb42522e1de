"""Serving simulator: pools of replicas under continuous batching with paged KV, routing, autoscaling and spot."""

from fleetwise.sim.fleet import FleetRun, FleetSpec, run_fleet, run_pool
from fleetwise.sim.metrics import Slo, summarize
from fleetwise.sim.pool import Autoscale, PoolSpec, Spot
from fleetwise.sim.result import SimulationResult
from fleetwise.sim.routers import ROUTERS
from fleetwise.sim.simulation import simulate

__all__ = ["ROUTERS", "Autoscale", "FleetRun", "FleetSpec", "PoolSpec", "SimulationResult", "Slo", "Spot",
           "run_fleet", "run_pool", "simulate", "summarize"]
