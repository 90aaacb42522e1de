"""Which screened deployments to simulate, in what order, and which one wins.

Simulation only adds replicas (it never makes a deployment cheaper), so options are checked cheapest first and the
search stops once nothing unchecked could undercut the best deployment that passed both the peak-hour check and
every hour of the day. That best cost bounds every later check: replicas stop being added to a deployment once it
would cost at least as much (it could no longer win). The best GPU-only and Inferentia-only pools are checked at the
peak too, each bounded by the best of its kind so far, so the savings quoted against them compare simulated costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetwise.plan.costing import Deployment
from fleetwise.plan.result import Rejected
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import Check, Day, Peak, Verifier

EXTRA_FINALISTS = 5  # beyond the finalists and the mix: checked only while they could undercut the best one
KIND_CHECKS = 2  # per hardware kind, candidates simulated to find the best GPU-only / Inferentia-only one

Chosen = tuple[Deployment, Check | None, int, list[Check]]  # deployment, peak check, replicas added, day checks


@dataclass
class Checker:
    """Simulates deployments at most once each (by name; a check stopped by a bound resumes under a higher one)
    and records every failure as a rejection."""

    verifier: Verifier
    rejected: list[Rejected]
    peak: dict[str, Peak] = field(default_factory=dict)
    day: dict[str, Day] = field(default_factory=dict)

    @property
    def spec(self) -> PlanSpec:
        """The plan's question."""
        return self.verifier.context.spec

    def at_peak(self, deployment: Deployment, bound: float = math.inf) -> Peak:
        """The peak-hour check, replicas added until p95 holds (unless they run out, or it would cost `bound`)."""
        known = self.peak.get(deployment.name)
        if known is None or (known.stopped and known.deployment.monthly_usd < bound):
            known = self.peak[deployment.name] = self.verifier.peak(deployment, bound)
            if not known.check.passed and not known.stopped:
                self.rejected.append(Rejected(known.deployment.name, "misses SLO in simulation",
                                              f"p95 TTFT {known.check.ttft_ms_p95} ms, TPOT {known.check.tpot_ms_p95}"
                                              " ms at the peak hour even with replicas added"))
        return known

    def whole(self, deployment: Deployment, bound: float = math.inf) -> Chosen | None:
        """Peak and day checks; the grown deployment when both pass (for less than `bound`), else None."""
        peak = self.at_peak(deployment, bound)
        if not peak.check.passed:
            return None
        known = self.day.get(deployment.name)
        if known is None or (known.stopped and known.deployment.monthly_usd < bound):
            known = self.day[deployment.name] = self.verifier.day(peak.deployment, bound)
            if known.missed is not None:
                c = known.checks[known.missed]
                self.rejected.append(Rejected(known.deployment.name, "misses SLO in simulation",
                                              f"hour {known.missed}: p95 TTFT {c.ttft_ms_p95} ms, TPOT "
                                              f"{c.tpot_ms_p95} ms even with replicas added"))
        return (known.deployment, peak.check, peak.added, known.by_hour()) if known.passed else None

    def failed(self) -> set[str]:
        """Names of deployments that missed the SLOs in simulation."""
        return {r.option for r in self.rejected if r.category == "misses SLO in simulation"}

    def stopped(self) -> set[str]:
        """Names of deployments whose checks stopped once they could no longer win (their cost is a lower bound)."""
        return ({name for name, p in self.peak.items() if p.stopped}
                | {name for name, d in self.day.items() if d.stopped}) - self.failed()

    def simulated(self) -> dict[str, Deployment]:
        """Every simulated deployment by name, at its simulated (grown) cost."""
        return ({name: p.deployment for name, p in self.peak.items()}
                | {name: d.deployment for name, d in self.day.items()})


def search(checker: Checker, singles: list[Deployment], mix: Deployment | None,
           report: Callable[[str, float], None]) -> Chosen | None:
    """The cheapest deployment that passes the peak and every hour; the first finalists and the mix are simulated
    at the peak regardless, for the ranked table (their replicas added only while they could still win)."""
    spec = checker.spec
    queue = list(singles)
    if mix is not None and all(d.name != mix.name for d in queue):
        queue.append(mix)
    queue.sort(key=lambda d: d.monthly_usd)
    must = {d.name for d in singles[: spec.finalists]} | ({mix.name} if mix is not None else set())
    if not spec.verify:
        shown = [d for d in queue if d.name in must]
        return (shown[0], None, 0, []) if shown else None
    best: Chosen | None = None
    for deployment in queue:
        extra = sum(1 for name in checker.peak if name not in must)  # checks beyond the finalists and the mix
        bound = best[0].monthly_usd if best is not None else math.inf
        if deployment.name not in must and (deployment.monthly_usd >= bound or extra >= EXTRA_FINALISTS):
            continue
        peak = checker.at_peak(deployment, bound)
        report("verify", min(0.4 + 0.08 * len(checker.peak), 0.9))
        if not peak.check.passed or peak.deployment.monthly_usd >= bound:
            continue
        result = checker.whole(deployment, bound)
        if result is not None and result[0].monthly_usd < bound:
            best = result
    return best


def best_of_kind(checker: Checker, singles: list[Deployment], kind: str) -> Deployment | None:
    """The cheapest single pool of a hardware kind that passes the peak-hour check (its day result where the day
    was checked: a day stopped once it could no longer win counts at its cost so far); None when none of the first
    few does. Comparing with it quotes simulated costs; each candidate's replicas are added only while it could
    still undercut the best of its kind so far."""
    candidates = sorted((d for d in singles if d.pools[0].option.kind == kind), key=lambda d: d.monthly_usd)
    if not checker.spec.verify:
        return candidates[0] if candidates else None
    failed = checker.failed()
    passed: list[Deployment] = [d.deployment for name, d in checker.day.items()  # already checked over the day
                                if d.missed is None and d.deployment.pools[0].option.kind == kind
                                and d.deployment.kind == "single"]
    passed.sort(key=lambda d: d.monthly_usd)
    for deployment in [d for d in candidates if d.name not in failed][:KIND_CHECKS]:
        bound = passed[0].monthly_usd if passed else math.inf
        if deployment.monthly_usd >= bound:
            break
        day = checker.day.get(deployment.name)
        if day is not None:
            if day.missed is None:
                passed.append(day.deployment)
        else:
            peak = checker.at_peak(deployment, bound)
            if peak.check.passed:
                passed.append(peak.deployment)
        passed.sort(key=lambda d: d.monthly_usd)
    return passed[0] if passed else None
