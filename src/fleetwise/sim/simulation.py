"""`simulate`: one call from a fleet and a request stream to the report; pools from command-line options and the
`--pool` mini-language."""

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
    whole = {key: int(value) for key, value in number.items() if key in _WHOLE}
    return pool_from_options(
        model, hardware, tp=whole.get("tp", 1), dtype=words.get("dtype", "bf16"), engine=words.get("engine"),
        replicas=whole.get("replicas", 1), max_seqs=whole.get("max_seqs"), kv_cache_dtype=kv_cache_dtype,
        region=region, name=text, purchase=words.get("purchase", "on-demand"), spot_rate=number.get("spot_rate", 0.0),
        startup_s=number.get("startup_s", 0.0), compile_s=number.get("compile_s", 0.0),
        compiled_cache=bool(whole.get("compiled_cache", 0)), autoscale_min=whole.get("autoscale_min"),
        autoscale_max=whole.get("autoscale_max"), target_inflight=number.get("target_inflight"))


def pool_from_options(model: ModelArchitecture, hardware: str, *, tp: int = 1, dtype: str = "bf16",
                      engine: str | None = None, replicas: int = 1, max_seqs: int | None = None,
                      kv_cache_dtype: str = "auto", region: str = DEFAULT_REGION, name: str = "",
                      purchase: str = "on-demand", spot_rate: float = 0.0, startup_s: float = 0.0,
                      compile_s: float = 0.0, compiled_cache: bool = False, autoscale: bool = False,
                      autoscale_min: int | None = None, autoscale_max: int | None = None,
                      target_inflight: float | None = None) -> PoolSpec:
    """A pool from command-line options (`simulate`'s flags and `--pool` keys alike). It autoscales when asked or
    when any bound is given; the default ceiling rises to the starting replicas, a given one is kept (and refused
    when below them); spot interruptions need spot capacity."""
    scale = None
    if autoscale or autoscale_min is not None or autoscale_max is not None or target_inflight is not None:
        default = Autoscale()
        scale = Autoscale(min_replicas=default.min_replicas if autoscale_min is None else autoscale_min,
                          max_replicas=max(default.max_replicas, replicas) if autoscale_max is None else autoscale_max,
                          target_inflight=default.target_inflight if target_inflight is None else target_inflight)
    return PoolSpec(model=model, hardware=hardware, tp=tp, dtype=dtype, engine=engine, replicas=replicas,
                    max_seqs=max_seqs, kv_cache_dtype=kv_cache_dtype, region=region, name=name,
                    purchase=cast(Purchase, purchase), startup_s=startup_s, compile_s=compile_s,
                    compiled_cache=compiled_cache, autoscale=scale, spot=Spot(spot_rate) if spot_rate else None)
