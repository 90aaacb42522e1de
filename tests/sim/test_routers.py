"""Routers: the registry by name, even spreading, least-busy choice, prefix affinity and cost-aware spillover."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError
from fleetwise.perf import CalibrationTable
from fleetwise.sim import ROUTERS, Autoscale, FleetSpec, Spot, run_fleet, run_pool, summarize
from fleetwise.sim.pool import Slot
from fleetwise.sim.replica import ReplicaSim
from fleetwise.sim.routers import CostAware, LeastOutstanding, PrefixAffinity, Router, rendezvous_weight
from fleetwise.workload import Requests, SharedPrefixes, generate, resolve_workload
from tests.sim.builders import poisson as _workload
from tests.sim.builders import pool_spec as _spec


def _burst(n: int, prompt: int = 512, output: int = 500) -> Requests:
    return Requests(np.zeros(n), np.full(n, prompt), np.full(n, output), np.full(n, -1), np.zeros(n, dtype=np.int64))


def test_the_registry_names_the_four_routers() -> None:
    assert set(ROUTERS) == {"round-robin", "least-outstanding", "prefix-affinity", "cost-aware"}
    assert all(router.name == name for name, router in ROUTERS.items())
    assert [name for name, router in ROUTERS.items() if router.needs_ttft_slo] == ["cost-aware"]


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_every_router_is_usable_by_name(catalog: Catalog, calibration: CalibrationTable, name: str) -> None:
    requests = _workload(4.0, 30.0, prefixes=SharedPrefixes(count=4, tokens=256))
    slo = 1000.0 if ROUTERS[name].needs_ttft_slo else None
    fleet = FleetSpec(pools=(_spec(replicas=2, name="a"), _spec(name="b")), router=name, slo_ttft_ms=slo)
    report = summarize(run_fleet(fleet, requests, catalog, calibration), requests)
    assert report.router == name
    assert report.completed == len(requests) and report.dropped == 0
    assert sum(pool.requests_finished for pool in report.pools) == len(requests)


def test_an_unknown_router_is_refused_with_the_known_names(catalog: Catalog, calibration: CalibrationTable) -> None:
    with pytest.raises(FleetwiseError, match="unknown router 'random'") as refused:
        FleetSpec(pools=(_spec(),), router="random")
    assert all(name in str(refused.value) for name in ROUTERS)
    with pytest.raises(FleetwiseError, match="unknown router"):
        run_pool(_spec(), _burst(2), catalog, calibration, router="fastest")


def test_round_robin_spreads_requests_evenly(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = _workload(20.0, 20.0)
    run = run_pool(_spec(replicas=4), requests, catalog, calibration, "round-robin")
    counts = np.bincount(run.log.replica, minlength=4)
    assert counts.sum() == len(requests) and counts.max() - counts.min() <= 1


def test_least_outstanding_balances_a_burst_across_equal_replicas(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    run = run_pool(_spec(replicas=2), _burst(9), catalog, calibration, "least-outstanding")
    # each arrival goes to the replica holding fewer (the lower number on a tie): 0, 1, 0, 1, ...
    assert run.log.replica.tolist() == [0, 1] * 4 + [0]


def test_least_outstanding_avoids_the_busier_replica(catalog: Catalog, calibration: CalibrationTable) -> None:
    # six long requests, then short ones later: the short ones fill whichever replica holds fewer
    requests = Requests(np.array([0.0] * 3 + [0.5] * 4), np.full(7, 512), np.array([4000] * 3 + [10] * 4),
                        np.full(7, -1), np.zeros(7, dtype=np.int64))
    run = run_pool(_spec(replicas=2), requests, catalog, calibration, "least-outstanding")
    assert run.log.replica[:3].tolist() == [0, 1, 0]
    assert run.log.replica[3:].tolist() == [1, 0, 1, 0]  # 1 held one fewer long request
    assert np.isfinite(run.log.finish_s).all()


def test_rendezvous_hashing_moves_few_prefixes_when_a_replica_joins() -> None:
    def owner(prefix: int, replicas: range) -> int:
        return max(replicas, key=lambda r: rendezvous_weight(prefix, r))

    before = [owner(p, range(4)) for p in range(2000)]
    after = [owner(p, range(5)) for p in range(2000)]
    moved = [a for b, a in zip(before, after, strict=True) if a != b]
    assert all(a == 4 for a in moved)  # only to the new replica, never between old ones
    assert 0.15 < len(moved) / 2000 < 0.25  # about 1/5 (mod-N hashing would move about 4/5)
    assert max(before.count(r) for r in range(4)) < 1.2 * 2000 / 4  # spread evenly


def test_prefix_affinity_keeps_each_prefix_on_one_warm_replica(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    prefixes = 64
    requests = _workload(10.0, 200.0, prompt=2048, output=64,
                         prefixes=SharedPrefixes(count=prefixes, tokens=1536, popularity="uniform"), seed=2)
    affinity = run_pool(_spec(replicas=4, max_seqs=8), requests, catalog, calibration, "prefix-affinity")
    spread = run_pool(_spec(replicas=4, max_seqs=8), requests, catalog, calibration, "round-robin")
    owner = np.array([max(range(4), key=lambda r: rendezvous_weight(int(p), r)) for p in requests.prefix_id])
    assert np.mean(affinity.log.replica == owner) > 0.99  # light load: the owner is rarely a full batch busier
    misses = {name: int((run.log.prefix_hit_tokens == 0).sum()) for name, run in
              (("affinity", affinity), ("spread", spread))}
    assert misses["affinity"] <= 1.25 * prefixes  # about one computation per prefix
    # round-robin sends every prefix to every replica, and each must compute it once
    pairs = len(set(zip(requests.prefix_id.tolist(), spread.log.replica.tolist(), strict=True)))
    assert pairs == 4 * prefixes and misses["spread"] >= pairs
    warm, cold = summarize(affinity, requests), summarize(spread, requests)
    assert warm.prefix_cache_hit_rate > cold.prefix_cache_hit_rate
    assert warm.completed == cold.completed == len(requests)


@dataclass
class _Sim:
    index: int
    outstanding: int
    settings: object = field(default_factory=lambda: type("Limits", (), {"max_seqs": 8})())

    def catch_up(self, now: float) -> None:
        pass

    def next_change(self) -> float:
        return math.inf


@dataclass
class _Slot:
    sim: _Sim


@dataclass
class _Pool:
    slots: list[_Slot]

    def ready(self, now: float) -> list[_Slot]:
        return self.slots

    def next_ready_s(self, now: float) -> float:
        return math.inf


@pytest.mark.parametrize(("owner_holds", "goes_to_owner"), [(0, True), (9, True), (10, True), (11, False)])
def test_prefix_affinity_leaves_the_owner_only_when_it_is_over_a_full_batch_busier(
        owner_holds: int, goes_to_owner: bool) -> None:
    requests = Requests(np.zeros(1), np.array([100]), np.array([10]), np.array([5]), np.array([50]))
    owner = max(range(3), key=lambda r: rendezvous_weight(5, r))
    slots = [_Slot(_Sim(r, owner_holds if r == owner else 2)) for r in range(3)]
    router = PrefixAffinity([_Pool(slots)], requests, None)  # type: ignore[list-item]
    chosen = router.choose(0, 0.0)
    assert chosen is not None
    least = min((s for s in slots if s.sim.index != owner), key=lambda s: s.sim.index)
    assert chosen.sim.index == (owner if goes_to_owner else least.sim.index)  # 2 + a batch of 8 = 10 is the limit


def test_cost_aware_fills_the_cheaper_pool_and_spills_under_load(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    # the same replicas bought two ways: spot is cheaper per token, so it is filled first
    cheap, dear = _spec(purchase="spot", name="spot", max_seqs=8), _spec(name="on-demand", max_seqs=8)
    fleet = FleetSpec(pools=(dear, cheap), router="cost-aware", slo_ttft_ms=300.0)
    light = _workload(0.2, 600.0)
    run = run_fleet(fleet, light, catalog, calibration)
    assert [pool.spec.name for pool in CostAware(run.pools, light, 300.0).order] == ["spot", "on-demand"]
    served = {p.name: p.requests_finished for p in summarize(run, light).pools}
    assert served == {"spot": len(light), "on-demand": 0}  # the cheaper pool takes all while it keeps the SLO
    heavy = _workload(40.0, 60.0)
    served = {p.name: p.requests_finished for p in summarize(run_fleet(fleet, heavy, catalog, calibration),
                                                              heavy).pools}
    assert served["on-demand"] > 0  # spilled
    assert served["spot"] > served["on-demand"]  # still first choice, and the fallback when both are late
    assert served["spot"] + served["on-demand"] == len(heavy)


# ---- routers that compare replicas touch only those due, and choose as a scan of every replica would ------------

def _scan_least_busy(ready: list[Slot], now: float) -> Slot:
    """The routers' choice before rosters: every ready replica caught up, then the fewest outstanding."""
    for slot in ready:
        slot.sim.catch_up(now)
    return min(ready, key=lambda s: (s.sim.outstanding, s.sim.index))


def _fresh_ready(router: Router, now: float) -> list[Slot]:
    return [slot for pool in router.pools for slot in pool.ready(now)]


class _ScanLeastOutstanding(LeastOutstanding):
    name = "scan-least-outstanding"

    def least_busy(self, now: float) -> Slot | None:
        ready = _fresh_ready(self, now)
        return _scan_least_busy(ready, now) if ready else None


class _ScanPrefixAffinity(PrefixAffinity):
    name = "scan-prefix-affinity"

    def choose(self, request: int, now: float) -> Slot | None:
        ready = _fresh_ready(self, now)
        if not ready:
            return None
        least = _scan_least_busy(ready, now)
        prefix = int(self.req.prefix_id[request])
        if prefix >= 0:
            preferred = max(ready, key=lambda s: rendezvous_weight(prefix, s.sim.index))
            if preferred.sim.outstanding <= least.sim.outstanding + preferred.sim.settings.max_seqs:
                return preferred
        return least


class _ScanCostAware(CostAware):
    name = "scan-cost-aware"

    def choose(self, request: int, now: float) -> Slot | None:
        fallback: Slot | None = None
        for pool in self.order:
            ready = pool.ready(now)
            if ready:
                best = _scan_least_busy(ready, now)
                fallback = fallback or best
                if self._expected_ttft(pool, best, request) <= (self.slo_ttft_ms or 0.0) / 1e3:
                    return best
        return fallback


def _chat(rate: float, seconds: float, seed: int = 7) -> Requests:
    return generate(resolve_workload("chat-diurnal").replace(arrivals={"rate_per_s": rate}, duration_s=seconds,
                                                             seed=seed))


_FLEETS = {  # router: (the full-scan version, pools, TTFT SLO ms, requests/s for 120 s)
    "least-outstanding": (_ScanLeastOutstanding, (_spec(replicas=6, max_seqs=16),), None, 30.0),
    "least-outstanding-autoscaled-spot": (_ScanLeastOutstanding, (_spec(  # overloaded: interrupted ones re-queue
        replicas=3, max_seqs=8, purchase="spot", spot=Spot(40.0), startup_s=30.0,
        autoscale=Autoscale(min_replicas=2, max_replicas=8, target_inflight=6.0, scale_down_cooldown_s=30.0)),),
        None, 40.0),
    "prefix-affinity": (_ScanPrefixAffinity, (_spec(replicas=5, max_seqs=8, autoscale=Autoscale(
        min_replicas=3, max_replicas=7, target_inflight=6.0, scale_down_cooldown_s=20.0)),), None, 30.0),
    "cost-aware": (_ScanCostAware, (_spec(replicas=2, max_seqs=8, name="dear"),
                                    _spec(replicas=3, max_seqs=8, purchase="spot", name="cheap")), 150.0, 30.0),
}


@pytest.mark.parametrize("name", sorted(_FLEETS))
def test_routers_choose_as_a_scan_of_every_replica_caught_up_would(
        catalog: Catalog, calibration: CalibrationTable, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    scan, pools, slo, rate = _FLEETS[name]
    monkeypatch.setitem(ROUTERS, scan.name, scan)
    requests = _chat(rate, 120.0)
    router = name.split("-autoscaled")[0]
    runs = [run_fleet(FleetSpec(pools=pools, router=r, slo_ttft_ms=slo, seed=3), requests, catalog, calibration)
            for r in (router, scan.name)]
    fast, full = (run.log for run in runs)
    assert len(set(fast.replica.tolist())) > 2
    assert fast.replica.tolist() == full.replica.tolist()
    np.testing.assert_array_equal(fast.finish_s, full.finish_s)
    np.testing.assert_array_equal(fast.first_token_s, full.first_token_s)
    assert [len(p.slots) for p in runs[0].pools] == [len(p.slots) for p in runs[1].pools]
    if "spot" in name:
        assert fast.requeues.any() and runs[0].pools[0].interruptions > 0  # replicas came and went


def test_least_outstanding_catches_up_only_replicas_with_something_to_run(
        catalog: Catalog, calibration: CalibrationTable, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    catch_up = ReplicaSim.catch_up

    def counted(sim: ReplicaSim, now: float) -> None:
        calls.append(sim.next_change() <= now)  # whether it had anything to run before `now`
        catch_up(sim, now)

    monkeypatch.setattr(ReplicaSim, "catch_up", counted)
    replicas, requests = 16, _chat(40.0, 60.0)
    run = run_pool(_spec(replicas=replicas), requests, catalog, calibration, "least-outstanding")
    assert np.isfinite(run.log.finish_s).all()
    assert calls and all(calls)  # a scan calls every replica on every arrival, almost all with nothing to run
    assert len(calls) < len(requests) * replicas / 8
