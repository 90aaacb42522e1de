"""The search over screened deployments: cheapest first, early stop, the peak-check cap, and the best of each kind."""

# The simulator is replaced by a fake Verifier whose checks are fixed per deployment, so each test states which
# deployments pass and asserts which ones the search simulated.

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from fleetwise.plan.costing import Deployment, buy_pool
from fleetwise.plan.result import Rejected
from fleetwise.plan.search import EXTRA_FINALISTS, KIND_CHECKS, Checker, best_of_kind, search
from fleetwise.plan.spec import PlanSpec
from fleetwise.plan.verify import Check, Day, Peak
from tests.plan.synthetic import option, single

SPEC = PlanSpec(purchase=["on-demand"], startup_s=0)
PASS = Check(100.0, 10.0, 1.0, 100, True)
MISS = Check(2000.0, 10.0, 0.4, 100, False)


def _grown(deployment: Deployment, factor: int) -> Deployment:
    """The deployment with `factor` times the replicas every hour, re-priced."""
    return Deployment([buy_pool(SPEC, p.option, p.bucket_share, p.replicas * factor) for p in deployment.pools],
                      deployment.kind)


@dataclass
class FakeVerifier:
    """Peak and day checks decided in advance by deployment name; every call and its bound recorded. A deployment
    that needs more replicas than the bound allows stops, as the real sizing does."""

    spec: PlanSpec = SPEC
    miss_peak: set[str] = field(default_factory=set)
    miss_day: set[str] = field(default_factory=set)
    grow: dict[str, int] = field(default_factory=dict)  # name -> replica factor the peak check needs
    peak_calls: list[str] = field(default_factory=list)
    day_calls: list[str] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)

    @property
    def context(self) -> SimpleNamespace:
        return SimpleNamespace(spec=self.spec)

    def peak(self, deployment: Deployment, bound: float = math.inf) -> Peak:
        self.peak_calls.append(deployment.name)
        self.bounds.append(bound)
        factor = self.grow.get(deployment.name, 1)
        grown = _grown(deployment, factor) if factor > 1 else deployment
        added = sum(int(p.replicas.max()) for p in grown.pools) - sum(int(p.replicas.max()) for p in deployment.pools)
        if factor > 1 and grown.monthly_usd >= bound:
            return Peak(grown, MISS, added, stopped=True)
        return Peak(grown, MISS if deployment.name in self.miss_peak else PASS, added)

    def day(self, deployment: Deployment, bound: float = math.inf) -> Day:
        self.day_calls.append(deployment.name)
        if deployment.name in self.miss_day:  # the day check stops at the first hour that misses
            return Day(deployment, {**{h: PASS for h in range(7)}, 7: MISS}, missed=7)
        return Day(deployment, {h: PASS for h in range(24)})


def _singles(prices: list[float], kind: str = "gpu", prefix: str = "o") -> list[Deployment]:
    """One single-pool deployment per price (USD per instance-hour, one instance all day), cheapest first."""
    return sorted((single(SPEC, option(f"{prefix}{i}.x", [1.0], p, kind=kind)) for i, p in enumerate(prices)),
                  key=lambda d: d.monthly_usd)


def _mix(price: float) -> Deployment:
    """Two pools, one per bucket, at `price` USD per instance-hour each."""
    a, b = option("m1.x", [1.0, 0.0], price), option("m2.x", [0.0, 1.0], price)
    return Deployment([buy_pool(SPEC, a, np.array([1.0, 0.0]), np.ones(24)),
                       buy_pool(SPEC, b, np.array([0.0, 1.0]), np.ones(24))], "mix")


def _search(fake: FakeVerifier, singles: list[Deployment],
            mix: Deployment | None = None) -> tuple[Checker, tuple | None]:
    checker = Checker(fake, [])  # type: ignore[arg-type]  # the fake stands in for the simulator
    return checker, search(checker, singles, mix, lambda stage, done: None)


def test_options_dearer_than_a_passing_one_are_never_simulated_beyond_the_finalists() -> None:
    singles = _singles([1.0 + i for i in range(10)])
    fake = FakeVerifier(spec=SPEC.replace(finalists=3))
    _, chosen = _search(fake, singles)
    assert chosen is not None and chosen[0] is singles[0]
    assert fake.peak_calls == [d.name for d in singles[:3]]  # the finalists, for the ranked table; nothing dearer
    assert fake.day_calls == [singles[0].name]  # only a deployment that could win is checked all day


def test_the_search_goes_on_past_failures_until_one_passes_then_stops() -> None:
    singles = _singles([1.0 + i for i in range(10)])
    fake = FakeVerifier(spec=SPEC.replace(finalists=1), miss_peak={singles[0].name},
                        miss_day={singles[1].name})
    checker, chosen = _search(fake, singles)
    assert chosen is not None and chosen[0] is singles[2]
    assert fake.peak_calls == [d.name for d in singles[:3]]
    assert {r.option for r in checker.rejected} == {singles[0].name, singles[1].name}


def test_peak_checks_never_exceed_the_cap() -> None:
    singles = _singles([1.0 + i for i in range(20)])
    fake = FakeVerifier(spec=SPEC.replace(finalists=3), miss_peak={d.name for d in singles})
    checker, chosen = _search(fake, singles)
    assert chosen is None
    assert len(fake.peak_calls) == 3 + EXTRA_FINALISTS  # cheapest first, then it gives up
    assert fake.peak_calls == [d.name for d in singles[:3 + EXTRA_FINALISTS]]
    assert all(r.category == "misses SLO in simulation" for r in checker.rejected)
    assert len(checker.rejected) == 3 + EXTRA_FINALISTS


def test_the_mix_is_simulated_at_the_peak_even_when_it_costs_more() -> None:
    singles = _singles([1.0, 2.0, 3.0])
    mix = _mix(10.0)
    assert mix.monthly_usd > singles[-1].monthly_usd
    fake = FakeVerifier(spec=SPEC.replace(finalists=1))
    _, chosen = _search(fake, singles, mix)
    assert chosen is not None and chosen[0] is singles[0]
    assert fake.peak_calls == [singles[0].name, mix.name]  # the single finalist, and the mix regardless
    assert mix.name not in fake.day_calls  # dearer than the winner: no day check


def test_the_mix_is_simulated_even_when_cheaper_single_pools_used_up_the_cap() -> None:
    singles = _singles([1.0 + i for i in range(12)])
    mix = _mix(50.0)
    fake = FakeVerifier(spec=SPEC.replace(finalists=3), miss_peak={d.name for d in singles})
    _, chosen = _search(fake, singles, mix)
    assert mix.name in fake.peak_calls
    assert chosen is not None and chosen[0] is mix


def test_a_cheaper_mix_is_checked_first_and_can_win() -> None:
    singles = _singles([2.0, 3.0])
    mix = single(SPEC, option("mixed.x", [1.0], 1.0))
    mix = Deployment(mix.pools, "mix")
    fake = FakeVerifier(spec=SPEC.replace(finalists=1))
    _, chosen = _search(fake, singles, mix)
    assert chosen is not None and chosen[0] is mix
    assert fake.peak_calls == [mix.name, singles[0].name]


def test_a_deployment_grown_in_simulation_lets_cheaper_unchecked_options_compete() -> None:
    singles = _singles([1.0, 1.5, 2.5, 4.0])
    # the cheapest needs three times its replicas: $3/h-equivalent, so the $1.5 and $2.5 ones may still undercut it
    fake = FakeVerifier(spec=SPEC.replace(finalists=1), grow={singles[0].name: 3})
    _, chosen = _search(fake, singles)
    assert chosen is not None and chosen[0] is singles[1]
    assert fake.peak_calls == [d.name for d in singles[:2]]  # the $2.5 one cannot beat $1.5: not simulated
    assert chosen[0].monthly_usd < _grown(singles[0], 3).monthly_usd


def test_without_verification_nothing_is_simulated() -> None:
    singles = _singles([1.0, 2.0, 3.0])
    fake = FakeVerifier(spec=SPEC.replace(verify=False))
    _, chosen = _search(fake, singles)
    assert chosen is not None and chosen[0] is singles[0] and chosen[1] is None
    assert fake.peak_calls == [] and fake.day_calls == []


@pytest.mark.parametrize("seed", range(40))
def test_search_invariants_on_random_questions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count, finalists = int(rng.integers(1, 15)), int(rng.integers(1, 5))
    singles = _singles(list(rng.uniform(1.0, 20.0, count)))
    names = [d.name for d in singles]
    fake = FakeVerifier(spec=SPEC.replace(finalists=finalists),
                        miss_peak={n for n in names if rng.random() < 0.4},
                        miss_day={n for n in names if rng.random() < 0.2},
                        grow={n: int(rng.integers(1, 4)) for n in names})
    _, chosen = _search(fake, singles)
    cap = finalists + EXTRA_FINALISTS
    assert len(fake.peak_calls) <= cap
    assert len(set(fake.peak_calls)) == len(fake.peak_calls)  # each deployment simulated at most once
    by_name = {d.name: d for d in singles}
    passing = {n: _grown(by_name[n], fake.grow[n]).monthly_usd for n in fake.peak_calls
               if n not in fake.miss_peak and n not in fake.miss_day}
    if chosen is None:
        assert not passing
        return
    assert chosen[0].monthly_usd == pytest.approx(min(passing.values()))  # the cheapest that passed both
    must = set(names[:finalists])
    for name in fake.peak_calls:
        if name not in must:  # simulated only while it could still undercut the recommendation
            assert by_name[name].monthly_usd <= chosen[0].monthly_usd + 1e-9
    if len(fake.peak_calls) < cap:  # stopped early: nothing left unchecked could have undercut the recommendation
        for name in set(names) - set(fake.peak_calls):
            assert by_name[name].monthly_usd >= chosen[0].monthly_usd - 1e-9


def test_each_deployment_is_simulated_once_and_its_failure_recorded_once() -> None:
    deployment = _singles([1.0])[0]
    fake = FakeVerifier(miss_peak={deployment.name})
    checker = Checker(fake, [])  # type: ignore[arg-type]
    assert checker.whole(deployment) is None and checker.whole(deployment) is None
    checker.at_peak(deployment)
    assert fake.peak_calls == [deployment.name] and fake.day_calls == []
    assert checker.rejected == [Rejected(deployment.name, "misses SLO in simulation",
                                         "p95 TTFT 2000.0 ms, TPOT 10.0 ms at the peak hour even with replicas added")]
    assert checker.failed() == {deployment.name}


def test_a_day_failure_names_the_hour_and_rules_the_deployment_out() -> None:
    deployment = _singles([1.0])[0]
    fake = FakeVerifier(miss_day={deployment.name})
    checker = Checker(fake, [])  # type: ignore[arg-type]
    assert checker.whole(deployment) is None
    assert checker.whole(deployment) is None and fake.day_calls == [deployment.name]
    (rejected,) = checker.rejected
    assert rejected.reason.startswith("hour 7: ") and deployment.name in checker.failed()


def test_simulated_costs_are_the_grown_ones() -> None:
    deployment = _singles([1.0])[0]
    checker = Checker(FakeVerifier(grow={deployment.name: 2}), [])  # type: ignore[arg-type]
    chosen = checker.whole(deployment)
    assert chosen is not None and chosen[2] == 1  # one replica added
    assert len(chosen[3]) == 24 and all(c.passed for c in chosen[3])  # the day's checks, in hour order
    assert checker.simulated()[deployment.name].monthly_usd == pytest.approx(2 * deployment.monthly_usd)


def test_best_of_kind_is_the_cheapest_of_that_kind_passing_the_peak() -> None:
    gpus = _singles([1.0, 2.0, 3.0], kind="gpu", prefix="g")
    neurons = _singles([1.5, 2.5, 3.5, 4.5], kind="neuron", prefix="n")
    singles = sorted(gpus + neurons, key=lambda d: d.monthly_usd)
    fake = FakeVerifier(miss_peak={neurons[0].name})
    checker = Checker(fake, [])  # type: ignore[arg-type]
    best = best_of_kind(checker, singles, "neuron")
    assert best is neurons[1]
    assert fake.peak_calls == [n.name for n in neurons[:KIND_CHECKS]]  # never more than KIND_CHECKS candidates
    assert all(name.startswith("n") for name in fake.peak_calls)


def test_best_of_kind_reuses_a_deployment_already_checked_all_day() -> None:
    gpus = _singles([1.0, 2.0, 3.0], kind="gpu", prefix="g")
    fake = FakeVerifier()
    checker = Checker(fake, [])  # type: ignore[arg-type]
    checker.whole(gpus[0])
    assert best_of_kind(checker, gpus, "gpu") is gpus[0]
    assert fake.peak_calls == [gpus[0].name]  # nothing dearer was simulated to find it


def test_best_of_kind_is_none_when_its_candidates_all_fail() -> None:
    neurons = _singles([1.0, 2.0, 3.0], kind="neuron", prefix="n")
    fake = FakeVerifier(miss_peak={d.name for d in neurons})
    checker = Checker(fake, [])  # type: ignore[arg-type]
    assert best_of_kind(checker, neurons, "neuron") is None
    assert len(fake.peak_calls) == KIND_CHECKS
    assert best_of_kind(checker, neurons, "gpu") is None


def test_best_of_kind_without_verification_is_the_cheapest_screened() -> None:
    neurons = _singles([2.0, 1.0], kind="neuron", prefix="n")
    fake = FakeVerifier(spec=SPEC.replace(verify=False))
    assert best_of_kind(Checker(fake, []), neurons, "neuron") is neurons[0]  # type: ignore[arg-type]
    assert fake.peak_calls == []


# --- early stop: replicas are added only while a deployment could still win ------------------------------------


def test_checks_after_the_first_winner_are_bounded_by_its_cost() -> None:
    singles = _singles([1.0, 2.0, 3.0])
    fake = FakeVerifier(spec=SPEC.replace(finalists=3), grow={singles[1].name: 3})
    checker, chosen = _search(fake, singles)
    assert chosen is not None and chosen[0] is singles[0]
    assert fake.bounds == [math.inf, singles[0].monthly_usd, singles[0].monthly_usd]
    assert checker.stopped() == {singles[1].name} and not checker.failed()  # it could not win: not a failure
    assert fake.day_calls == [singles[0].name]


def test_a_check_stopped_by_one_bound_resumes_under_a_higher_one() -> None:
    gpu = single(SPEC, option("g.x", [1.0], 1.0, kind="gpu"))
    neuron = single(SPEC, option("n.x", [1.0], 1.5, kind="neuron"))
    fake = FakeVerifier(spec=SPEC.replace(finalists=2), grow={neuron.name: 2})
    checker, chosen = _search(fake, [gpu, neuron])
    assert chosen is not None and chosen[0] is gpu and checker.peak[neuron.name].stopped
    best = best_of_kind(checker, [gpu, neuron], "neuron")  # the comparison needs its cost: no bound of its kind yet
    assert best is not None and best.monthly_usd == pytest.approx(2 * neuron.monthly_usd)
    assert fake.peak_calls == [gpu.name, neuron.name, neuron.name] and fake.bounds[-1] == math.inf
    assert neuron.name not in checker.stopped()


def test_the_best_of_kind_bounds_its_next_candidates() -> None:
    neurons = _singles([1.0, 1.5], kind="neuron", prefix="n")
    fake = FakeVerifier(grow={neurons[0].name: 2, neurons[1].name: 2})  # $2 and $3 once grown
    best = best_of_kind(Checker(fake, []), neurons, "neuron")  # type: ignore[arg-type]
    assert best is not None and best.monthly_usd == pytest.approx(2 * neurons[0].monthly_usd)
    assert fake.bounds == [math.inf, pytest.approx(2 * neurons[0].monthly_usd)]


@pytest.mark.parametrize("seed", range(30))
def test_the_recommendation_is_the_exhaustive_searchs(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    singles = _singles(list(rng.uniform(1.0, 5.0, int(rng.integers(1, 7)))))  # few enough that no cap binds
    names = [d.name for d in singles]
    fake = FakeVerifier(spec=SPEC.replace(finalists=int(rng.integers(1, 4))),
                        miss_peak={n for n in names if rng.random() < 0.3},
                        miss_day={n for n in names if rng.random() < 0.2},
                        grow={n: int(rng.integers(1, 4)) for n in names})
    _, chosen = _search(fake, singles)
    every = {d.name: _grown(d, fake.grow[d.name]).monthly_usd for d in singles  # each checked to the end, no bound
             if d.name not in fake.miss_peak and d.name not in fake.miss_day}
    if not every:
        assert chosen is None
    else:
        assert chosen is not None and chosen[0].monthly_usd == pytest.approx(min(every.values()))
