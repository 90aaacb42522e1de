"""`simulate`: one call from a fleet and a request stream to the report, and the `--pool` mini-language."""

from __future__ import annotations

import math
from typing import cast

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.sim.fleet import FleetSpec, run_fleet
from fleetwise.sim.metrics import Slo, summarize
from fleetwise.sim.pool import Autoscale, PoolSpec, Purchase, Spot
from fleetwise.sim.result import SimulationResult
from fleetwise.workload.requests import Requests

DEFAULT_INTERVAL_S = 60.0  # seconds per time-series row


def simulate(fleet: FleetSpec, requests: Requests, catalog: Catalog, calibration: CalibrationTable,
             slo: Slo = Slo(), interval_s: float = DEFAULT_INTERVAL_S) -> SimulationResult:
    """Replay `requests` through `fleet` and report what users would see and what it cost."""
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise FleetwiseError(f"--interval must be a positive number of seconds, got {interval_s}")
    targets = (("--slo-ttft-ms", slo.ttft_ms, "milliseconds"), ("--slo-tpot-ms", slo.tpot_ms, "milliseconds"),
               ("the E2E SLO", slo.e2e_s, "seconds"))
    for flag, value, unit in targets:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise FleetwiseError(f"{flag} must be a positive number of {unit}, got {value}")
    return summarize(run_fleet(fleet, requests, catalog, calibration), requests, slo, interval_s)


POOL_KEYS = ("tp", "dtype", "engine", "replicas", "purchase", "spot_rate", "startup_s", "compile_s", "compiled_cache",
             "max_seqs", "autoscale_min", "autoscale_max", "target_inflight")
_WHOLE = {"tp", "replicas", "compiled_cache", "max_seqs", "autoscale_min", "autoscale_max"}
_WORDS = {"dtype", "engine", "purchase"}


def parse_pool(text: str, model: ModelArchitecture, kv_cache_dtype: str = "auto",
               region: str = DEFAULT_REGION) -> PoolSpec:
    """`HARDWARE[:key=value...]` (keys: POOL_KEYS) into a PoolSpec; unknown keys and bad numbers name themselves."""
    hardware, *pairs = text.split(":")
    words: dict[str, str] = {}
    number: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in POOL_KEYS:
            raise FleetwiseError(f"--pool {text!r}: {pair!r} is not key=value with a key from {sorted(POOL_KEYS)}")
        if key in _WORDS:
            words[key] = value
            continue
        try:
            number[key] = float(int(value)) if key in _WHOLE else float(value)
        except ValueError:
            kind = "a whole number" if key in _WHOLE else "a number"
            raise FleetwiseError(f"--pool {text!r}: {key} must be {kind}, got {value!r}") from None
        if not math.isfinite(number[key]):
            raise FleetwiseError(f"--pool {text!r}: {key} must be finite, got {value!r}")
    replicas = int(number.get("replicas", 1))
    scale = None
    if {"autoscale_min", "autoscale_max", "target_inflight"} & number.keys():
        default = Autoscale()
        ceiling = int(number["autoscale_max"]) if "autoscale_max" in number else max(default.max_replicas, replicas)
        scale = Autoscale(min_replicas=int(number.get("autoscale_min", default.min_replicas)), max_replicas=ceiling,
                          target_inflight=number.get("target_inflight", default.target_inflight))
    purchase = cast(Purchase, words.get("purchase", "on-demand"))
    rate = number.get("spot_rate", 0.0)
    return PoolSpec(model=model, hardware=hardware, tp=int(number.get("tp", 1)), dtype=words.get("dtype", "bf16"),
                    engine=words.get("engine"), replicas=replicas,
                    max_seqs=int(number["max_seqs"]) if "max_seqs" in number else None,
                    kv_cache_dtype=kv_cache_dtype, region=region, name=text, purchase=purchase,
                    startup_s=number.get("startup_s", 0.0), compile_s=number.get("compile_s", 0.0),
                    compiled_cache=bool(number.get("compiled_cache", 0.0)), autoscale=scale,
                    spot=Spot(rate) if rate else None)
