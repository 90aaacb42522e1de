"""Workloads: synthetic request streams and public trace formats, as values the simulator and planner can name."""

from fleetwise.workload.library import bundled_workloads, resolve_workload
from fleetwise.workload.requests import Requests, generate
from fleetwise.workload.spec import (
    Arrivals,
    Lengths,
    Sessions,
    SharedPrefixes,
    Workload,
    load_workload,
    save_workload,
)
from fleetwise.workload.traces import FORMATS, Trace, read_trace, write_trace

__all__ = [
    "FORMATS",
    "Arrivals",
    "Lengths",
    "Requests",
    "Sessions",
    "SharedPrefixes",
    "Trace",
    "Workload",
    "bundled_workloads",
    "generate",
    "load_workload",
    "read_trace",
    "resolve_workload",
    "save_workload",
    "write_trace",
]
