"""Deployment options and what one replica of each carries within the SLOs, per request-size bucket.

Options are every fitting instance × engine × TP × dtype shape (with the compiled batch as a choice on Neuron).
For each option and bucket a grid of steady-state loads is priced in one vectorised call of the perf model
(`perf.scenarios.load_point`); the capacity is the highest arrival rate before latency first crosses the screening
target (`latency_headroom` × each p95 SLO, since the model gives mean values; the simulator checks p95 later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetwise.catalog.catalog import Catalog
from fleetwise.dtypes import kv_cache_bytes
from fleetwise.fit.memory import fit_model
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.perf.replica_arrays import build_arrays
from fleetwise.perf.scenarios import load_point
from fleetwise.perf.shape import DeploymentShape, UnpredictableError, resolve_shape
from fleetwise.plan.demand import Demand
from fleetwise.plan.result import Rejected
from fleetwise.plan.spec import PlanSpec
from fleetwise.units import GIB

GRID_POINTS = 32  # steady-state loads per option and bucket, geometric from 1 sequence to the batch limit
MAX_COMPILED_BATCH = 256  # Neuron compiled batches tried: powers of two up to this (and the KV room)


@dataclass(frozen=True)
class Option:
    """One deployment shape with its per-replica capacity per bucket (requests/s within the screening target)."""

    instance: str
    family: str
    kind: str  # gpu or neuron
    accelerator: str
    engine: str
    tp: int
    dtype: str
    max_seqs: int  # vLLM max_num_seqs, or the compiled batch on Neuron
    compiled: bool
    replicas_per_instance: int
    prices: dict[str, float | None]  # USD per instance-hour by purchase option (None: not found)
    price_sources: dict[str, str | None]
    kv_cache_gib: float
    calibrated: bool
    capacity: np.ndarray  # (B,) requests/s per replica
    curve_rate: np.ndarray  # (B, G) the load grid: arrival rate per replica
    curve_ttft_s: np.ndarray  # (B, G) mean-value TTFT at that rate
    curve_tpot_s: np.ndarray  # (B, G)
    slo_miss: str  # why a bucket has no capacity ("" when every bucket has some)

    @property
    def shape(self) -> str:
        """instance/engine/TP/dtype, the name an option is known by."""
        return f"{self.instance} {self.engine} TP={self.tp} {self.dtype}"

    @property
    def name(self) -> str:
        """The shape plus the batch setting."""
        return f"{self.shape} {'batch' if self.compiled else 'max_seqs'}={self.max_seqs}"

    def latency_at(self, bucket_rates: np.ndarray, replicas: int) -> tuple[float, float]:
        """Screening estimate of p95 TTFT and TPOT (s) with `replicas` sharing `bucket_rates` (requests/s)."""
        load = float(np.sum(bucket_rates / np.where(self.capacity > 0, self.capacity, np.inf))) / max(replicas, 1)
        ttft = np.array([np.interp(load * c, r, t) for c, r, t in zip(self.capacity, self.curve_rate,
                                                                       self.curve_ttft_s, strict=True)])
        tpot = np.array([np.interp(load * c, r, t) for c, r, t in zip(self.capacity, self.curve_rate,
                                                                       self.curve_tpot_s, strict=True)])
        weights = bucket_rates / max(float(bucket_rates.sum()), 1e-12)
        return _weighted_quantile(ttft, weights, 0.95), _weighted_quantile(np.nan_to_num(tpot), weights, 0.95)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cumulative, q * cumulative[-1])), len(values) - 1)])


def build_options(spec: PlanSpec, model: ModelArchitecture, demand: Demand, catalog: Catalog,
                  calibration: CalibrationTable) -> tuple[list[Option], list[Rejected]]:
    """Every fitting shape with its capacities; every other shape with the reason it was rejected."""
    families = [x for x in spec.instances if x.strip().lower() in catalog.families()]
    types = [x for x in spec.instances if x not in families]
    instances = catalog.select(families, types)
    fits = fit_model(model, catalog, instances=instances, engines=spec.engines, dtypes=spec.dtypes,
                     context_tokens=demand.context_tokens, region=spec.region)
    rejected: list[Rejected] = []
    shapes: list[DeploymentShape] = []
    for fit in fits:
        label = f"{fit.instance} {fit.engine} TP={fit.tp} {fit.dtype}"
        if not fit.fits:
            category = "doesn't fit" if fit.refused_by == "memory" else "engine can't run it"
            rejected.append(Rejected(label, category, fit.reason))
            continue
        prices = {p: catalog.usd_per_hour(fit.instance, spec.region, p) for p in spec.purchase}
        if prices.get("on-demand") is None and prices.get("spot") is None:
            wanted = " or ".join(p for p in spec.purchase if p in ("on-demand", "spot"))
            rejected.append(Rejected(label, "no price", f"no {wanted} price for {fit.instance} in {spec.region}"))
            continue
        try:
            shape = resolve_shape(model, catalog, calibration, fit.instance, fit.tp, fit.dtype, fit.engine,
                                  context_tokens=demand.context_tokens, region=spec.region)
        except UnpredictableError as exc:
            rejected.append(Rejected(label, "not predictable", str(exc)))
            continue
        if shape.compiled:
            top = min(fit.max_sequences, MAX_COMPILED_BATCH)
            shapes.extend(shape.with_max_seqs(b) for b in (2 ** k for k in range(12)) if b <= top)
        else:
            shapes.append(shape)
    if not shapes:
        return [], rejected
    options = _capacities(spec, model, demand, catalog, shapes)
    return options, rejected


def _capacities(spec: PlanSpec, model: ModelArchitecture, demand: Demand, catalog: Catalog,
                shapes: list[DeploymentShape]) -> list[Option]:
    """Price a grid of loads for every shape and bucket at once; read off each capacity."""
    arrays = build_arrays([shape.config for shape in shapes])
    buckets = demand.buckets
    n_shapes, n_buckets = len(shapes), len(buckets)
    per_token = model.kv_cache_bytes_per_token(kv_cache_bytes("auto"))
    kv_tokens = np.array([shape.fit.kv_cache_gib * GIB / per_token for shape in shapes])
    batch = np.array([float(shape.max_seqs) for shape in shapes])
    compiled = np.array([shape.compiled for shape in shapes])
    context = buckets.prompt_tokens + buckets.output_tokens
    # sequences one replica can hold: the batch setting, and on GPUs the KV room at the bucket's mean context
    limit = np.where(compiled[:, None], batch[:, None],
                     np.maximum(np.minimum(batch[:, None], np.floor(kv_tokens[:, None] / context[None, :])), 1.0))
    steps = np.linspace(0.0, 1.0, GRID_POINTS)
    active = limit[:, :, None] ** steps[None, None, :]  # (S, B, G), from 1 to the limit
    rows = np.repeat(np.arange(n_shapes), n_buckets * GRID_POINTS)
    point = load_point(arrays.take(rows), active.ravel(),
                       np.tile(np.repeat(buckets.prompt_tokens, GRID_POINTS), n_shapes),
                       np.tile(np.repeat(buckets.output_tokens, GRID_POINTS), n_shapes),
                       np.where(compiled[rows], batch[rows], 0.0))
    shape3 = (n_shapes, n_buckets, GRID_POINTS)
    rate, ttft, tpot = (x.reshape(shape3) for x in (point.rate_per_s, point.ttft_s, point.tpot_s))
    ttft_target = spec.slo.ttft_p95_ms / 1e3 * spec.latency_headroom
    tpot_target = spec.slo.tpot_p95_ms / 1e3 * spec.latency_headroom
    ok = point.stable.reshape(shape3) & (ttft <= ttft_target) & ~(tpot > tpot_target)
    ok = np.logical_and.accumulate(ok, axis=2)  # capacity ends where latency first crosses the target
    capacity = np.where(ok, rate, 0.0).max(axis=2)
    options = []
    for s, shape in enumerate(shapes):
        fit, hardware = shape.fit, shape.hardware
        miss = ""
        if (capacity[s] <= 0).any():
            b = int(np.argmax(capacity[s] <= 0))
            over_ttft, over_tpot = ttft[s, b, 0] / ttft_target, np.nan_to_num(tpot[s, b, 0]) / tpot_target
            what, seconds, slo_ms = (("TTFT", ttft[s, b, 0], spec.slo.ttft_p95_ms) if over_ttft >= over_tpot
                                     else ("TPOT", tpot[s, b, 0], spec.slo.tpot_p95_ms))
            ratio = seconds * 1e3 / slo_ms
            by = (f"misses the {slo_ms:g} ms SLO by x{ratio:,.2f}" if ratio > 1 else
                  f"within the {slo_ms:g} ms SLO but over the screening target ({spec.latency_headroom:g} x SLO), "
                  "too little margin for p95")
            miss = f"{what} {seconds * 1e3:,.0f} ms with one request in flight for {buckets.labels[b]}: {by}"
        prices: dict[str, float | None] = {p: catalog.usd_per_hour(fit.instance, spec.region, p) for p in spec.purchase}
        if "spot" in prices and prices["spot"] is not None:
            prices["spot"] *= spec.spot_price_scale
        sources: dict[str, str | None] = {}
        for p in spec.purchase:
            row = catalog.price(fit.instance, spec.region, p)
            sources[p] = None if row is None or row.usd_per_hour is None else f"{row.source} (read {row.as_of})"
        options.append(Option(
            instance=fit.instance, family=hardware.instance.family, kind=hardware.chip.kind,
            accelerator=fit.accelerator, engine=fit.engine, tp=fit.tp, dtype=fit.dtype, max_seqs=shape.max_seqs,
            compiled=shape.compiled, replicas_per_instance=fit.replicas_per_instance, prices=prices,
            price_sources=sources, kv_cache_gib=fit.kv_cache_gib, calibrated=shape.calibrated, capacity=capacity[s],
            curve_rate=rate[s], curve_ttft_s=ttft[s], curve_tpot_s=tpot[s], slo_miss=miss))
    return options
