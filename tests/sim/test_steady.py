"""One replica under steady load (what predict --rate/--concurrency reports): alone at low load, Little's law."""

from __future__ import annotations

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.perf.step_time import StepCost
from fleetwise.sim import PoolSpec
from fleetwise.sim.pool import replica_settings, resolve_pool_shape
from fleetwise.sim.scheduler import ReplicaSettings
from fleetwise.sim.steady import closed_loop_steady, poisson_steady

PROMPT, OUTPUT = 512, 64


@pytest.fixture(scope="module")
def replica(catalog: Catalog, calibration: CalibrationTable) -> tuple[StepCost, ReplicaSettings]:
    spec = PoolSpec(model=load_model("meta-llama/Llama-3.1-8B-Instruct"), hardware="p5.48xlarge", tp=1,
                    dtype="bf16", engine=None, replicas=1)
    shape = resolve_pool_shape(spec, catalog, calibration, PROMPT + OUTPUT)
    return shape.step_cost(), replica_settings(shape)


def _alone(cost: StepCost) -> tuple[float, float]:
    """A request served alone: one prefill step, then one decode step per later token at its own context."""
    prefill = cost.step_s(0.0, 0.0, PROMPT, cost.causal_attended(0.0, PROMPT), 1.0)
    decode = [cost.step_s(1.0, cost.attended(PROMPT + 1 + j), 0.0, 0.0, 0.0) for j in range(OUTPUT - 1)]
    return prefill, float(np.mean(decode))


def test_at_a_low_rate_each_request_is_served_alone(replica: tuple[StepCost, ReplicaSettings]) -> None:
    cost, settings = replica
    result = poisson_steady(cost, settings, 0.02, PROMPT, OUTPUT, count=100)
    prefill, tpot = _alone(cost)
    assert result.ttft_p50_s == pytest.approx(prefill, rel=1e-6)
    assert result.tpot_p50_s == pytest.approx(tpot, rel=1e-3)
    assert result.e2e_p50_s == pytest.approx(prefill + (OUTPUT - 1) * tpot, rel=1e-3)
    assert result.preemptions == 0


def test_a_stable_replica_delivers_the_arrival_rate(replica: tuple[StepCost, ReplicaSettings]) -> None:
    cost, settings = replica
    rate, count = 0.05, 400
    result = poisson_steady(cost, settings, rate, PROMPT, OUTPUT, seed=2, count=count)
    arrivals = np.cumsum(np.random.default_rng(2).exponential(1.0 / rate, count))  # the same draws
    offered = (count - 1) / (arrivals[-1] - arrivals[0])  # the rate these arrivals actually came at
    assert result.requests_per_s == pytest.approx(offered, rel=1.0 / count)
    assert result.output_tokens_per_s == pytest.approx(OUTPUT * result.requests_per_s)


def test_the_same_seed_gives_the_same_answer(replica: tuple[StepCost, ReplicaSettings]) -> None:
    cost, settings = replica
    a = poisson_steady(cost, settings, 5.0, PROMPT, OUTPUT, seed=1, count=300)
    assert poisson_steady(cost, settings, 5.0, PROMPT, OUTPUT, seed=1, count=300) == a
    assert poisson_steady(cost, settings, 5.0, PROMPT, OUTPUT, seed=2, count=300) != a


def test_one_user_sends_back_to_back_requests(replica: tuple[StepCost, ReplicaSettings]) -> None:
    cost, settings = replica
    result = closed_loop_steady(cost, settings, 1, PROMPT, OUTPUT, count=200)
    prefill, tpot = _alone(cost)
    assert result.e2e_p50_s == pytest.approx(prefill + (OUTPUT - 1) * tpot, rel=1e-3)
    assert result.requests_per_s == pytest.approx(1.0 / result.e2e_p50_s, rel=1e-9)


@pytest.mark.parametrize("users", [4, 16])
def test_a_closed_loop_obeys_littles_law(replica: tuple[StepCost, ReplicaSettings], users: int) -> None:
    cost, settings = replica
    count = 2000
    result = closed_loop_steady(cost, settings, users, PROMPT, OUTPUT, count=count)
    # every user always has one request in the system: N = throughput x mean latency
    mean_e2e = result.ttft_mean_s + (OUTPUT - 1) * result.tpot_mean_s
    # the window leaves out the up to `users` requests still running at its end: a bias of users / count
    assert result.requests_per_s * mean_e2e == pytest.approx(users, rel=users / count + 0.005)


def test_more_users_share_the_replica_for_more_throughput_and_slower_tokens(
        replica: tuple[StepCost, ReplicaSettings]) -> None:
    cost, settings = replica
    few, many = (closed_loop_steady(cost, settings, users, PROMPT, OUTPUT, count=400) for users in (2, 32))
    assert many.output_tokens_per_s > few.output_tokens_per_s
    assert many.tpot_p50_s > few.tpot_p50_s
