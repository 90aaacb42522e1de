"""The plan as typed results (`PlanResult`, the `--json` schema) and the recommendation in words."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fleetwise.plan.capacity import Option
from fleetwise.plan.context import PlanContext
from fleetwise.plan.costing import DAYS_PER_MONTH, HOURS_PER_MONTH, Deployment, PoolPlan
from fleetwise.plan.demand import HOURS, Demand
from fleetwise.plan.result import (
    Brief,
    BucketRow,
    CapacityRow,
    Comparison,
    CurvePoint,
    HourCheck,
    Latencies,
    OptionRow,
    PeakCheck,
    PlanResult,
    PoolRow,
    Question,
    Recommendation,
    Rejected,
    ScheduleHour,
    SchedulePool,
    SourceRow,
    Verification,
    Verified,
)
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import DAY_REQUESTS, DAY_WINDOW_S, Check


@dataclass(frozen=True)
class Outcome:
    """What the search found: the recommendation and its checks, and every alternative with its standing."""

    best: Deployment
    check: Check | None  # the recommendation's peak-hour check (None without verification)
    added: int  # replicas the peak check added
    day: list[Check]
    ranked: list[OptionRow]
    rejected: list[Rejected]
    standing: list[Deployment]  # single pools not failed in simulation, cheapest first
    mix: Deployment | None  # the best multi-pool answer
    by_kind: dict[str, Deployment | None]  # the best GPU-only and Inferentia-only pools


def describe(context: PlanContext, outcome: Outcome) -> PlanResult:
    """Everything `plan` answers, what-ifs and timing aside."""
    spec, demand, best, check = context.spec, context.demand, outcome.best, outcome.check
    row = option_row(best, check, outcome.added, demand)
    checked_hours = [c for c in outcome.day if c.requests]
    gpu_only, neuron_only = outcome.by_kind.get("gpu"), outcome.by_kind.get("neuron")
    standing, mix = outcome.standing, outcome.mix
    comparison = Comparison(
        best_single_pool=_brief(standing[0]) if standing else None, best_mix=_brief(mix),
        best_gpu_only=_brief(gpu_only), best_neuron_only=_brief(neuron_only),
        savings_vs_gpu_only_pct=_saving(best, gpu_only), savings_vs_neuron_only_pct=_saving(best, neuron_only),
        mix_vs_single_pct=_saving(mix, standing[0]) if mix is not None and standing else None,
        basis="costs after simulation at the peak hour (with replicas added where needed); the recommendation "
              "is also checked every hour" if spec.verify else "screened costs (verification off)")
    ttft = check.ttft_ms_p95 if check is not None else row.predicted.ttft_ms_p95
    tpot = check.tpot_ms_p95 if check is not None else row.predicted.tpot_ms_p95
    latency_source = "simulated peak hour" if check else "screened"
    recommendation = Recommendation(
        name=best.name, kind=best.kind, pools=[pool_row(p) for p in best.pools], monthly_usd=row.monthly_usd,
        usd_per_million_output_tokens=row.usd_per_million_output_tokens, ttft_ms_p95=ttft, tpot_ms_p95=tpot,
        latency_source=latency_source, goodput_peak=check.goodput if check is not None else None,
        day_worst_ttft_ms_p95=max((c.ttft_ms_p95 or 0.0 for c in checked_hours), default=None),
        day_worst_tpot_ms_p95=max((c.tpot_ms_p95 or 0.0 for c in checked_hours), default=None),
        day_passed=all(c.passed for c in outcome.day) if outcome.day else None,
        replicas_added_in_simulation=outcome.added, summary="")
    recommendation = replace(recommendation,
                             summary=_summary(spec, context.model.name, demand, best, recommendation, comparison))
    return PlanResult(
        question=_question(context), recommendation=recommendation, comparison=comparison, options=outcome.ranked,
        rejected=outcome.rejected, schedule=_schedule(best, demand), buckets=_buckets(demand),
        capacity_curve=_capacity_curve(standing, demand), verification=_verification(check, outcome, demand),
        assumptions=_assumptions(spec, demand), sources=_sources(best, context), what_if=[], timing_s=0.0)


def option_row(deployment: Deployment, check: Check | None, added: int, demand: Demand,
               failed: bool = False, stopped: bool = False) -> OptionRow:
    """One ranked option (`failed`: it missed the SLOs in simulation, at the peak or in some hour; `stopped`: its
    checks ended once it could no longer win, so its cost is a lower bound)."""
    rates = demand.bucket_rates
    peak = int(np.argmax(demand.hourly_rate))
    ttft, tpot = 0.0, 0.0
    for pool in deployment.pools:
        pool_ttft, pool_tpot = pool.option.latency_at(rates[peak] * pool.bucket_share, int(pool.replicas[peak]))
        ttft, tpot = max(ttft, pool_ttft), max(tpot, pool_tpot)
    tokens = float(demand.hourly_rate.sum()) * 3600.0 * demand.mean_output_tokens * DAYS_PER_MONTH
    return OptionRow(
        name=deployment.name, kind=deployment.kind, hardware=sorted({p.option.kind for p in deployment.pools}),
        pools=[pool_row(p) for p in deployment.pools], monthly_usd=round(deployment.monthly_usd, 2),
        usd_per_million_output_tokens=round(deployment.monthly_usd / tokens * 1e6, 4) if tokens > 0 else None,
        predicted=Latencies(round(ttft * 1e3, 2), round(tpot * 1e3, 3)),
        verified=None if check is None else Verified(check.ttft_ms_p95, check.tpot_ms_p95, check.goodput,
                                                     check.requests, check.passed and not failed, added, stopped))


def pool_row(pool: PoolPlan) -> PoolRow:
    """One pool of an option (the JSON schema's `pools` entries)."""
    option = pool.option
    return PoolRow(
        instance=option.instance, accelerator=option.accelerator, kind=option.kind, tp=option.tp, dtype=option.dtype,
        engine=option.engine, max_seqs=option.max_seqs, compiled_batch=option.compiled,
        replicas_peak=int(pool.replicas.max()), replicas_min=int(pool.replicas.min()),
        instances_peak=int(pool.instances.max()), instances_min=int(pool.instances.min()),
        replicas_per_instance=option.replicas_per_instance, purchase=pool.purchases(),
        reserved_instances=pool.reserved, reserved_term=pool.reserved_term,
        spot_instances_peak=int(pool.spot.max()), spot_spares_peak=int(pool.spot_spares.max()),
        on_demand_instances_peak=int(pool.on_demand.max()), monthly_usd=round(pool.monthly_usd, 2),
        cost_by_purchase_monthly_usd={k: round(v, 2) for k, v in pool.cost_by_purchase.items()},
        break_even_utilization=pool.break_even, bucket_share=[round(float(x), 4) for x in pool.bucket_share],
        capacity_rps_per_replica=[round(float(x), 4) for x in option.capacity], calibrated=option.calibrated,
        prices_usd_per_instance_hour=option.prices, price_sources=option.price_sources, notes=pool.notes)


def _brief(deployment: Deployment | None) -> Brief | None:
    return None if deployment is None else Brief(deployment.name, round(deployment.monthly_usd, 2))


def _saving(best: Deployment | None, other: Deployment | None) -> float | None:
    if best is None or other is None or other.monthly_usd <= 0:
        return None
    return round((1 - best.monthly_usd / other.monthly_usd) * 100, 2)


def _summary(spec: PlanSpec, model_name: str, demand: Demand, best: Deployment, recommendation: Recommendation,
             comparison: Comparison) -> str:
    pools = []
    for pool in best.pools:
        option = pool.option
        buying = ", ".join(pool.purchases()) or "on-demand"
        share = "" if best.kind == "single" else f" for {_share_words(pool.bucket_share, demand)}"
        low, high = int(pool.replicas.min()), int(pool.replicas.max())
        count = f"{high} replica{'s' if high > 1 else ''}" if low == high else f"{low}–{high} replicas"
        pools.append(f"{count} of {option.engine} "
                     f"TP={option.tp} {option.dtype} on {option.instance} ({int(pool.instances.max())} instance(s) "
                     f"at the peak, {buying}){share}")
    parts = [f"Serve {model_name} on " + "; plus ".join(pools) + "."]
    parts.append(f"Expected p95 TTFT {recommendation.ttft_ms_p95} ms and TPOT {recommendation.tpot_ms_p95} ms "
                 f"at the peak ({recommendation.latency_source}; SLO {spec.slo.ttft_p95_ms:g} / "
                 f"{spec.slo.tpot_p95_ms:g} ms), about ${recommendation.monthly_usd:,.0f} a month "
                 f"(${recommendation.usd_per_million_output_tokens} per million output tokens).")
    for label, saving, other in (("GPU-only", comparison.savings_vs_gpu_only_pct, comparison.best_gpu_only),
                                 ("Inferentia/Trainium-only", comparison.savings_vs_neuron_only_pct,
                                  comparison.best_neuron_only)):
        if other is None:
            parts.append(f"No {label} option meets the SLOs.")
        elif other.name != best.name:
            parts.append(f"That is {saving:.0f}% less than the best {label} option "
                         f"({other.name}, ${other.monthly_usd:,.0f}/month).")
    if best.kind == "mix":
        parts.append(f"The mix saves {comparison.mix_vs_single_pct:.0f}% over the best single pool.")
    elif comparison.best_mix is not None and comparison.best_mix.name != best.name:
        parts.append("A hybrid mix does not beat it.")
    if demand.too_long_share > 0:
        parts.append(f"{demand.too_long_share * 100:.2f}% of requests exceed the model's context and are dropped.")
    return " ".join(parts)


def _share_words(share: np.ndarray, demand: Demand) -> str:
    taken = [demand.buckets.labels[b] + (f" ({share[b] * 100:.0f}%)" if share[b] < 0.999 else "")
             for b in range(len(share)) if share[b] > 1e-3]
    return "all request sizes" if bool(np.all(share >= 0.999)) else "; ".join(taken)


def _question(context: PlanContext) -> Question:
    spec, demand = context.spec, context.demand
    return Question(
        model=context.model.name, workload=demand.workload.name, peak_rate_per_s=round(demand.peak_rate, 4),
        mean_rate_per_s=round(float(demand.hourly_rate.mean()), 4),
        hourly_rate_per_s=[round(float(r), 4) for r in demand.hourly_rate],
        mean_output_tokens=round(demand.mean_output_tokens, 1),
        mean_prompt_tokens=round(float(np.mean(demand.peak_requests.prompt_tokens)), 1),
        context_tokens=demand.context_tokens, slo=spec.slo.model_dump(), region=spec.region,
        purchase=list(spec.purchase), instances=spec.instances or "all",
        engines=spec.engines or "default per hardware", dtypes=spec.dtypes, latency_headroom=spec.latency_headroom,
        traffic_scale=spec.traffic_scale, prompt_scale=spec.prompt_scale, spot_price_scale=spec.spot_price_scale)


def _schedule(best: Deployment, demand: Demand) -> list[ScheduleHour]:
    hourly = best.hourly_usd()
    return [ScheduleHour(hour=hour, rate_per_s=round(float(demand.hourly_rate[hour]), 4),
                         usd=round(float(hourly[hour]), 4),
                         pools=[SchedulePool(p.option.name, int(p.replicas[hour]), int(p.instances[hour]),
                                             int(p.on_demand[hour]), int(p.spot[hour]), p.reserved)
                                for p in best.pools])
            for hour in range(HOURS)]


def _buckets(demand: Demand) -> list[BucketRow]:
    b = demand.buckets
    return [BucketRow(label, round(float(s), 4), round(float(p), 1), round(float(o), 1))
            for label, s, p, o in zip(b.labels, b.share, b.prompt_tokens, b.output_tokens, strict=True)]


def _verification(check: Check | None, outcome: Outcome, demand: Demand) -> Verification:
    peak = None if check is None else PeakCheck(check.ttft_ms_p95, check.tpot_ms_p95, check.goodput, check.requests,
                                                check.passed, round(demand.peak_window_s, 1), outcome.added)
    return Verification(peak=peak, day=[HourCheck(h, c.ttft_ms_p95, c.tpot_ms_p95, c.goodput, c.requests, c.passed)
                                        for h, c in enumerate(outcome.day)], day_requests_per_hour=DAY_REQUESTS)


def _capacity_curve(singles: list[Deployment], demand: Demand) -> list[CapacityRow]:
    """Max request rate within the SLO per replica and per instance: the cheapest single pools and each kind's best."""
    shown = singles[:12]
    for kind in ("gpu", "neuron"):  # the best of each kind, even when it ranks far down
        shown += [d for d in singles if d.pools[0].option.kind == kind and d not in shown][:3]
    rows = []
    for deployment in shown:
        option = deployment.pools[0].option
        per_replica = 1.0 / float(np.sum(demand.buckets.share / option.capacity))
        price = option.prices.get("on-demand") or option.prices.get("spot")
        per_instance = per_replica * option.replicas_per_instance
        rows.append(CapacityRow(name=option.name, kind=option.kind, max_rate_per_replica=round(per_replica, 4),
                                max_rate_per_instance=round(per_instance, 4),
                                max_rate_per_usd_hour=round(per_instance / price, 4) if price else None,
                                curve=_latency_curve(option, demand, per_replica)))
    return rows


def _latency_curve(option: Option, demand: Demand, per_replica: float) -> list[CurvePoint]:
    """Screened p95 TTFT and TPOT of one replica as its load grows (the workload's mix of sizes), up to where the
    load grid ends: requests/s per instance against latency, the capacity curve the report draws."""
    points = []
    for utilisation in np.linspace(0.1, 1.5, 15):
        if np.any(utilisation * option.capacity > option.curve_rate[:, -1]):
            break
        ttft, tpot = option.latency_at(demand.buckets.share * utilisation * per_replica, 1)
        points.append(CurvePoint(round(float(utilisation * per_replica * option.replicas_per_instance), 4),
                                 round(ttft * 1e3, 2), round(tpot * 1e3, 3)))
    return points


def _assumptions(spec: PlanSpec, demand: Demand) -> list[str]:
    return [
        f"SLOs: p95 TTFT ≤ {spec.slo.ttft_p95_ms:g} ms, p95 TPOT ≤ {spec.slo.tpot_p95_ms:g} ms "
        "(defaults are chosen chat targets, not measurements)",
        f"screening holds each option's mean-value latency to {spec.latency_headroom:g} × each SLO; finalists are "
        f"then checked at p95 in the simulator on {demand.peak_window_s:,.0f} s of peak-hour traffic and replicas "
        "added until they pass",
        f"the day is checked on about {DAY_REQUESTS} requests ({DAY_WINDOW_S[0]:g}–{DAY_WINDOW_S[1]:g} s) of every "
        "hour's traffic at that hour's replica count; an hour that misses gets replicas added",
        f"launch to serving {spec.startup_s:g} s (+ {spec.compile_s:g} s Neuron compile): capacity for an hour is "
        "launched that much earlier and paid from launch (your value: --startup-s / --compile-s)",
        f"spot: {spec.spot_interruptions_per_hour:g} interruptions per instance-hour (a stress value, not a measured "
        f"rate), at most {spec.spot_max_share:.0%} of each hour's non-reserved instances, spares for instances being "
        "replaced; the rest on-demand",
        "reserved: the always-on base, as many instances as are busy at least the break-even share of hours "
        "(reserved price ÷ on-demand price)",
        f"a month is {HOURS_PER_MONTH:g} hours (365 × 24 / 12); whole instances are bought",
        "requests are routed by size bucket in the shares the mix chooses; the screening ignores prefix caching "
        "(the simulator includes it)",
        f"workload {demand.workload.name}: rates and lengths measured on generated requests "
        f"(seed {demand.workload.seed})",
    ]


def _sources(best: Deployment, context: PlanContext) -> list[SourceRow]:
    model = context.model
    rows = [SourceRow("calibration", context.calibration.path or "bundled"),
            SourceRow("model config", getattr(model, "source", None) or model.name),
            SourceRow("catalog files", ", ".join(context.catalog.files) or "bundled")]
    for pool in best.pools:
        for purchase, source in pool.option.price_sources.items():
            if source:
                rows.append(SourceRow(f"{pool.option.instance} {purchase} price", source))
    return rows
