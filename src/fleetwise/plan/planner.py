"""`plan()`: search deployments for a model and workload under SLOs, verify the finalists, and explain the answer.

1. demand: hourly rates and request-size buckets of the workload;
2. options: every fitting shape (instance × engine × TP × dtype × batch setting) with its per-replica capacity per
   bucket within the screening target (vectorised perf model); the rest rejected with a reason;
3. single pools: each option sized per hour and bought (reserved base, spot share, on-demand), ranked by cost;
4. mix: Mélange's integer program over the shortlisted options (HiGHS), compared with the best single pool;
5. verification: the finalists and the mix in the simulator at the peak hour (replicas added until p95 holds),
   the recommendation hour by hour over the day.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from pydantic import ValidationError

from fleetwise.catalog.catalog import Catalog, load_catalog
from fleetwise.errors import FleetwiseError
from fleetwise.models.library import load_model
from fleetwise.perf.efficiency import load_calibration
from fleetwise.plan.capacity import Option, build_options
from fleetwise.plan.context import PlanContext
from fleetwise.plan.costing import Deployment, plan_pool
from fleetwise.plan.demand import Demand, build_demand
from fleetwise.plan.explain import Outcome, describe, option_row
from fleetwise.plan.mix import shortlist, solve_mix
from fleetwise.plan.result import OptionRow, PlanResult, Rejected, WhatIf, WhatIfError
from fleetwise.plan.search import Checker, Chosen, best_of_kind, search
from fleetwise.plan.spec import PlanSpec, parse_what_if
from fleetwise.plan.verify import Check, Runs, Verifier

Progress = Callable[[str, float], None]  # (stage, fraction done)
SINGLES_OFFERED = 3  # the cheapest single pools are always among the options the mix solver may combine


def plan(spec: PlanSpec, progress: Progress | None = None, catalog: Catalog | None = None,
         compare: bool = True) -> PlanResult:
    """Answer `spec`: the recommendation, ranked options, rejections with reasons, schedule, costs, what-ifs.

    `compare=False` skips simulating the best GPU-only and Inferentia-only pools (their comparison is then null).
    """
    return _plan(spec, progress, catalog, compare, Runs())


def _plan(spec: PlanSpec, progress: Progress | None, catalog: Catalog | None, compare: bool,
          runs: Runs) -> PlanResult:
    """`plan`, simulating into `runs` (runs already there, of the same traffic, are reused)."""
    started = time.perf_counter()
    before = runs.simulations
    report = progress or (lambda stage, done: None)
    catalog = catalog or load_catalog(spec.catalog)
    catalog.check_region(spec.region)
    calibration = load_calibration(spec.calibration)
    model = load_model(spec.model)
    report("demand", 0.05)
    demand = build_demand(spec, model)
    context = PlanContext(spec, model, demand, catalog, calibration)
    report("options", 0.1)
    options, rejected = build_options(spec, model, demand, catalog, calibration)
    rates = demand.bucket_rates  # (24, B)
    singles, slow = _single_pools(spec, options, rates)
    rejected += slow
    if not singles:
        raise FleetwiseError(_nothing_left(spec, rejected))
    report("mix", 0.3)
    mix = _best_mix(spec, options, rates, [d.pools[0].option for d in singles[:SINGLES_OFFERED]])
    report("verify", 0.4)
    checker = Checker(Verifier(context, runs), rejected)
    chosen = search(checker, singles, mix, report)
    if chosen is None:
        raise FleetwiseError("every finalist misses the SLOs in simulation (at the peak or in some hour of the day); "
                             "relax the SLOs or allow more shapes")
    report("compare", 0.9)
    by_kind = {kind: best_of_kind(checker, singles, kind) for kind in ("gpu", "neuron")} if compare else {}
    result = describe(context, _outcome(spec, checker, chosen, singles, mix, by_kind))
    what_ifs: list[WhatIf | WhatIfError] = []
    simulations = runs.simulations - before
    for change in spec.what_if:
        report(f"what-if {change}", 0.95)
        # a what-if that changes only prices replays the same traffic: it reuses this plan's runs
        again = runs if parse_what_if(change)[0] == "spot_price_scale" else Runs()
        counted = again.simulations
        what_ifs.append(_what_if(spec, change, result, catalog, again))
        simulations += again.simulations - counted
    report("done", 1.0)
    return replace(result, what_if=what_ifs, timing_s=round(time.perf_counter() - started, 3),
                   simulations=simulations)


def _outcome(spec: PlanSpec, checker: Checker, chosen: Chosen, singles: list[Deployment], mix: Deployment | None,
             by_kind: dict[str, Deployment | None]) -> Outcome:
    """Rank what was screened and simulated, and give every alternative its standing against the recommendation."""
    best, best_check, added, day = chosen
    rejected = checker.rejected
    failed = checker.failed()
    simulated = checker.simulated() | {best.name: best}  # simulated costs replace screened ones
    singles = sorted((simulated.get(s.name, s) for s in singles), key=lambda d: d.monthly_usd)
    mix = simulated.get(mix.name, mix) if mix is not None else None
    if spec.verify:  # cheaper on screening but never simulated (the search stopped): not a standing alternative
        unchecked = [s for s in singles if s.name not in simulated and s.monthly_usd < best.monthly_usd]
        rejected += [Rejected(s.name, "not verified", f"${s.monthly_usd:,.0f}/month on screening, but beyond the "
                              f"{len(checker.peak)} options simulated; raise --finalists to check it")
                     for s in unchecked]
        singles = [s for s in singles if s not in unchecked]
    checked: list[tuple[Deployment, Check | None, int]] = [
        (simulated.get(name, p.deployment), p.check, p.added) for name, p in checker.peak.items()]
    if not spec.verify and mix is not None:
        checked.append((mix, None, 0))  # ranked with the single pools, as screened
    stopped = checker.stopped()
    ranked = _ranked(singles, checked, best, checker.verifier.context.demand, failed, stopped)
    rejected += [_costs_more(r, best, r.name in stopped) for r in ranked
                 if r.name != best.name and r.monthly_usd >= best.monthly_usd and r.name not in failed]
    standing = [s for s in singles if s.name not in failed]
    if mix is not None and (mix.kind != "mix" or mix.name in failed):
        mix = None  # a one-pool answer is a single pool; a failed mix is no alternative
    return Outcome(best, best_check, added, day, ranked, rejected, standing, mix, by_kind)


def _costs_more(row: OptionRow, best: Deployment, stopped: bool) -> Rejected:
    """A standing option dearer than the recommendation (`stopped`: its checks ended once it could no longer win,
    so its cost is a lower bound)."""
    more, pct = row.monthly_usd - best.monthly_usd, (row.monthly_usd / best.monthly_usd - 1) * 100
    if stopped:
        return Rejected(row.name, "costs more", f"${more:,.0f}/month or more above the recommendation (+{pct:,.0f}% "
                        "or more): replicas stopped being added in simulation once it cost more than a verified option")
    return Rejected(row.name, "costs more", f"${more:,.0f}/month more than the recommendation (+{pct:,.0f}%)")


def _single_pools(spec: PlanSpec, options: list[Option], rates: np.ndarray) -> tuple[list[Deployment], list[Rejected]]:
    """Every shape as one pool, its cheapest batch setting, ranked by monthly cost; shapes that miss the SLO."""
    best: dict[str, Deployment] = {}
    misses: dict[str, Option] = {}
    serves = rates.sum(axis=0) > 0
    for option in options:
        if (option.capacity[serves] <= 0).any():
            misses.setdefault(option.shape, option)
            continue
        deployment = Deployment([plan_pool(spec, option, rates, np.ones(rates.shape[1]))], "single")
        current = best.get(option.shape)
        if current is None or deployment.monthly_usd < current.monthly_usd:
            best[option.shape] = deployment
    rejected = [Rejected(shape, "misses SLO", option.slo_miss) for shape, option in misses.items()
                if shape not in best]
    return sorted(best.values(), key=lambda d: d.monthly_usd), rejected


def _best_mix(spec: PlanSpec, options: list[Option], rates: np.ndarray,
              best_singles: list[Option]) -> Deployment | None:
    """Mélange's mix over the day's hourly loads, bought hour by hour like a single pool.

    The solver prices instances linearly; spot counts are whole instances and spot spares come on top, so it is
    solved twice (on-demand prices, and on-demand blended with the allowed spot share) and the mix that is
    cheaper once really bought is kept.
    """
    peak_hour = int(np.argmax(rates.sum(axis=1)))
    spot_shares = {0.0 if "on-demand" in spec.purchase else 1.0}
    if "spot" in spec.purchase and "on-demand" in spec.purchase:
        spot_shares.add(spec.spot_max_share)
    mixes = []
    for spot_share in sorted(spot_shares):
        offered = shortlist(options, rates[peak_hour], spot_share)
        offered += [o for o in best_singles if all(o is not x for x in offered)]
        chosen = solve_mix(offered, rates, spot_share)
        if chosen:
            total = np.sum([share for _, share, _ in chosen], axis=0)
            mixes.append(Deployment([plan_pool(spec, option, rates, share / np.maximum(total, 1e-12))
                                     for option, share, _ in chosen], "mix" if len(chosen) > 1 else "single"))
    return min(mixes, key=lambda d: d.monthly_usd, default=None)


def _ranked(singles: list[Deployment], checked: list[tuple[Deployment, Check | None, int]], best: Deployment,
            demand: Demand, failed: set[str], stopped: set[str]) -> list[OptionRow]:
    """Options ranked by monthly cost: simulated ones with their p95s, the rest as screened; failures last."""
    by_name = {d.name: (d, c, a) for d, c, a in checked}
    rows: list[OptionRow] = []
    seen: set[str] = set()
    for deployment in [*(d for d, _, _ in checked), *singles]:
        if deployment.name in seen:
            continue
        seen.add(deployment.name)
        deployment, check, added = by_name.get(deployment.name, (deployment, None, 0))
        if deployment.name == best.name:
            deployment = best
        # a failure at the peak, or in an hour of the day (see `rejected`)
        rows.append(option_row(deployment, check, added, demand, failed=deployment.name in failed,
                               stopped=deployment.name in stopped))
    rows.sort(key=lambda r: (r.verified is not None and not r.verified.passed, r.monthly_usd))
    return [replace(row, rank=rank) for rank, row in enumerate(rows, 1)]


def _what_if(spec: PlanSpec, change: str, base: PlanResult, catalog: Catalog, runs: Runs) -> WhatIf | WhatIfError:
    """Re-plan with one change (traffic, prompt length or spot price scaled) and say what moved."""
    field, factor = parse_what_if(change)
    try:
        changed = spec.replace(**{field: getattr(spec, field) * factor}, what_if=[], finalists=1)
        other = _plan(changed, None, catalog, False, runs)
    except FleetwiseError as exc:
        return WhatIfError(change, str(exc))
    except ValidationError as exc:  # e.g. a scaled rate beyond what a workload may generate
        return WhatIfError(change, str(exc.errors()[0]["msg"]).removeprefix("Value error, "))
    now, then = base.recommendation, other.recommendation
    return WhatIf(
        change=change, recommendation=then.name, pools=then.pools, monthly_usd=then.monthly_usd,
        usd_per_million_output_tokens=then.usd_per_million_output_tokens, ttft_ms_p95=then.ttft_ms_p95,
        tpot_ms_p95=then.tpot_ms_p95, delta_monthly_usd=round(then.monthly_usd - now.monthly_usd, 2),
        delta_pct=round((then.monthly_usd / now.monthly_usd - 1) * 100, 2) if now.monthly_usd else None,
        same_deployment=then.name == now.name)


def _nothing_left(spec: PlanSpec, rejected: list[Rejected]) -> str:
    counts = Counter(r.category for r in rejected)
    summary = ", ".join(f"{n} {category}" for category, n in counts.items()) or "no shapes in the selection"
    closest = next((r for r in rejected if r.category == "misses SLO"), None)
    reasons = Counter(r.reason for r in rejected).most_common(1)
    common = reasons[0][0] if reasons else ""
    hint = (f"; closest: {closest.option}: {closest.reason}" if closest else
            f"; most often: {common}" if common else "")
    return f"no option serves {spec.model} within the SLOs ({summary}){hint}"


__all__ = ["plan"]
