"""Which screened deployments to simulate, in what order, and which one wins.

Simulation only adds replicas (it never makes a deployment cheaper), so options are checked cheapest first and the
search stops once nothing unchecked could undercut the best deployment that passed both the peak-hour check and
every hour of the day. The best GPU-only and Inferentia-only pools are checked at the peak too, so the savings
quoted against them compare simulated costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fleetwise.plan.costing import Deployment
from fleetwise.plan.result import Rejected
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import Check, Verifier

EXTRA_FINALISTS = 5  # beyond the finalists and the mix: checked only while they could undercut the best one
KIND_CHECKS = 2  # per hardware kind, candidates simulated to find the best GPU-only / Inferentia-only one

Chosen = tuple[Deployment, Check | None, int, list[Check]]  # deployment, peak check, replicas added, day checks


@dataclass
class Checker:
    """Simulates deployments at most once each (by name) and records every failure as a rejection."""

    verifier: Verifier
    rejected: list[Rejected]
    peak: dict[str, tuple[Deployment, Check, int]] = field(default_factory=dict)
    day: dict[str, tuple[Deployment, list[Check]]] = field(default_factory=dict)

    @property
    def spec(self) -> PlanSpec:
        """The plan's question."""
        return self.verifier.context.spec

    def at_peak(self, deployment: Deployment) -> tuple[Deployment, Check, int]:
        """The peak-hour check, replicas added until p95 holds (or the repairs run out)."""
        if deployment.name not in self.peak:
            grown, check, added = self.verifier.peak(deployment)
            self.peak[deployment.name] = (grown, check, added)
            if not check.passed:
                self.rejected.append(Rejected(grown.name, "misses SLO in simulation",
                                              f"p95 TTFT {check.ttft_ms_p95} ms, TPOT {check.tpot_ms_p95} ms at the "
                                              "peak hour even with replicas added"))
        return self.peak[deployment.name]

    def whole(self, deployment: Deployment) -> Chosen | None:
        """Peak and day checks; the grown deployment when both pass, else None."""
        grown, check, added = self.at_peak(deployment)
        if not check.passed:
            return None
        if deployment.name not in self.day:
            final, day = self.verifier.day(grown)
            self.day[deployment.name] = (final, day)
            missed = [(hour, c) for hour, c in enumerate(day) if not c.passed]
            if missed:
                hour, c = missed[0]
                self.rejected.append(Rejected(final.name, "misses SLO in simulation",
                                              f"hour {hour}: p95 TTFT {c.ttft_ms_p95} ms, TPOT {c.tpot_ms_p95} ms "
                                              "even with replicas added"))
        final, day = self.day[deployment.name]
        return None if any(not c.passed for c in day) else (final, check, added, day)

    def failed(self) -> set[str]:
        """Names of deployments that missed the SLOs in simulation."""
        return {r.option for r in self.rejected if r.category == "misses SLO in simulation"}

    def simulated(self) -> dict[str, Deployment]:
        """Every simulated deployment by name, at its simulated (grown) cost."""
        return {name: d for name, (d, _, _) in self.peak.items()} | {name: d for name, (d, _) in self.day.items()}


def search(checker: Checker, singles: list[Deployment], mix: Deployment | None,
           report: Callable[[str, float], None]) -> Chosen | None:
    """The cheapest deployment that passes the peak and every hour; the first finalists and the mix are simulated
    at the peak regardless, for the ranked table."""
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
        cheaper = best is None or deployment.monthly_usd < best[0].monthly_usd
        if deployment.name not in must and (not cheaper or extra >= EXTRA_FINALISTS):
            continue
        grown, check, _ = checker.at_peak(deployment)
        report("verify", min(0.4 + 0.08 * len(checker.peak), 0.9))
        if not check.passed or (best is not None and grown.monthly_usd >= best[0].monthly_usd):
            continue
        result = checker.whole(deployment)
        if result is not None and (best is None or result[0].monthly_usd < best[0].monthly_usd):
            best = result
    return best


def best_of_kind(checker: Checker, singles: list[Deployment], kind: str) -> Deployment | None:
    """The cheapest single pool of a hardware kind that passes the peak-hour check (its whole-day result where
    that was run too); None when none of the first few does. Comparing with it quotes simulated costs."""
    candidates = sorted((d for d in singles if d.pools[0].option.kind == kind), key=lambda d: d.monthly_usd)
    if not checker.spec.verify:
        return candidates[0] if candidates else None
    failed = checker.failed()
    passed: list[Deployment] = [d for name, (d, _) in checker.day.items()  # already checked all day
                                if name not in failed and d.pools[0].option.kind == kind and d.kind == "single"]
    passed.sort(key=lambda d: d.monthly_usd)
    for deployment in [d for d in candidates if d.name not in failed][:KIND_CHECKS]:
        if passed and deployment.monthly_usd >= passed[0].monthly_usd:
            break
        if deployment.name in checker.day:
            final = checker.whole(deployment)
            if final is not None:
                passed.append(final[0])
        else:
            grown, check, _ = checker.at_peak(deployment)
            if check.passed:
                passed.append(grown)
        passed.sort(key=lambda d: d.monthly_usd)
    return passed[0] if passed else None
