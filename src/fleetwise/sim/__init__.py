"""Serving simulator: replicas under continuous batching with paged KV, behind a router, fed a workload."""

from fleetwise.sim.fleet import PoolRun, PoolSpec, run_pool
from fleetwise.sim.metrics import Slo, summarize

__all__ = ["PoolRun", "PoolSpec", "Slo", "run_pool", "summarize"]
