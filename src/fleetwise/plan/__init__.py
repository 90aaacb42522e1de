"""Deployment planner: search shapes, size and buy pools, mix them, verify in the simulator, explain."""

from fleetwise.plan.planner import plan
from fleetwise.plan.spec import PlanSpec, Slos, load_plan_file, parse_slo, parse_what_if

__all__ = ["PlanSpec", "Slos", "load_plan_file", "parse_slo", "parse_what_if", "plan"]
