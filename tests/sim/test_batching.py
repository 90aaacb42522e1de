"""Batching policies: continuous batching on GPUs, compiled shapes (full batch, one prompt per step) on Neuron."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable
from fleetwise.perf.step_time import StepCost
from fleetwise.sim import PoolSpec, run_pool, summarize
from fleetwise.sim.batching import CompiledBatch, ContinuousBatching, batch_policy
from fleetwise.sim.decode_batch import DecodeBatch
from fleetwise.sim.pool import replica_settings, resolve_pool_shape
from fleetwise.sim.replica import ReplicaSim
from fleetwise.sim.request_log import RequestRecord
from fleetwise.sim.scheduler import ReplicaSettings, Scheduler
from fleetwise.workload import Arrivals, Lengths, Requests, Workload, generate

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GPU = ("p5.48xlarge", 1)
NEURON = ("inf2.48xlarge", 8)


def _spec(hardware: tuple[str, int], model: str = MODEL) -> PoolSpec:
    return PoolSpec(model=load_model(model), hardware=hardware[0], tp=hardware[1], dtype="bf16", engine=None,
                    replicas=1)


def _parts(catalog: Catalog, calibration: CalibrationTable, hardware: tuple[str, int], model: str = MODEL,
           longest: int | None = None, max_seqs: int | None = None) -> tuple[StepCost, ReplicaSettings]:
    shape = resolve_pool_shape(_spec(hardware, model), catalog, calibration, 1024)
    settings = replica_settings(shape, longest)
    return shape.step_cost(), settings if max_seqs is None else dataclasses.replace(settings, max_seqs=max_seqs)


def _requests(prompts: list[int], outputs: list[int]) -> Requests:
    n = len(prompts)
    return Requests(np.zeros(n), np.array(prompts), np.array(outputs), np.full(n, -1), np.zeros(n, dtype=np.int64))


def _batch(contexts: list[int], step: int = 0) -> DecodeBatch:
    batch = DecodeBatch(16)
    for request, context in enumerate(contexts):
        batch.add(request, context, remaining=1000)
    batch.step = step
    return batch


def test_the_engine_picks_the_policy(catalog: Catalog, calibration: CalibrationTable) -> None:
    gpu, _ = _parts(catalog, calibration, GPU)
    neuron, _ = _parts(catalog, calibration, NEURON)
    assert not gpu.pads and neuron.pads
    assert isinstance(batch_policy(gpu, 64), ContinuousBatching)
    assert isinstance(batch_policy(neuron, 64), CompiledBatch)


def test_continuous_batching_decodes_the_sequences_it_has(catalog: Catalog, calibration: CalibrationTable) -> None:
    cost, _ = _parts(catalog, calibration, GPU)
    policy = ContinuousBatching(cost, 64)
    assert policy.linear_decode  # no sliding windows: attended tokens in closed form
    batch = _batch([100, 900, 3000], step=40)
    for ahead in (0, 7):
        seqs, attended = policy.decode_load(batch, ahead)
        assert seqs == 3
        assert attended == pytest.approx(sum(cost.attended(c + 40 + ahead) for c in (100, 900, 3000)), rel=1e-12)


def test_continuous_batching_sums_windowed_attention_per_sequence(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    cost, _ = _parts(catalog, calibration, ("p5.48xlarge", 2), model="google/gemma-3-27b-it")
    policy = ContinuousBatching(cost, 64)
    assert not policy.linear_decode
    batch = _batch([100, 900, 6000], step=40)
    seqs, attended = policy.decode_load(batch, 5)
    assert seqs == 3
    assert attended == pytest.approx(sum(cost.attended(c + 45) for c in (100, 900, 6000)), rel=1e-12)


@pytest.mark.parametrize("decoding", [1, 3, 8])
def test_a_compiled_batch_always_decodes_its_full_size_over_the_longest_bucket(
        catalog: Catalog, calibration: CalibrationTable, decoding: int) -> None:
    cost, _ = _parts(catalog, calibration, NEURON)
    policy = CompiledBatch(cost, 8)
    contexts = [130 + 100 * i for i in range(decoding)]
    seqs, attended = policy.decode_load(_batch(contexts))
    assert seqs == 8  # padding fills the compiled batch however few sequences decode
    longest = max(contexts)
    bucket = 2 ** int(np.ceil(np.log2(longest)))  # power-of-two context buckets
    assert cost.bucket(longest) == bucket
    assert attended == pytest.approx(8 * cost.attended(bucket), rel=1e-12)


def test_a_compiled_prompt_is_computed_up_to_its_bucket(catalog: Catalog, calibration: CalibrationTable) -> None:
    cost, _ = _parts(catalog, calibration, NEURON)
    policy = CompiledBatch(cost, 8)
    assert policy.prompt_tokens(0, 2000) == 2048
    assert policy.prompt_tokens(0, 100) == cost.bucket(100) >= 100  # the smallest bucket
    gpu = ContinuousBatching(_parts(catalog, calibration, GPU)[0], 8)
    assert gpu.prompt_tokens(0, 2000) == 2000


def test_a_compiled_stretch_ends_where_the_longest_context_leaves_its_bucket(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    cost, _ = _parts(catalog, calibration, NEURON)
    policy = CompiledBatch(cost, 8)
    batch = _batch([1000, 1500])  # longest 1500, bucket 2048
    assert policy.segment_cap(batch, 10_000) == 2048 - 1500 + 1
    assert policy.segment_cap(batch, 20) == 20
    assert ContinuousBatching(cost, 8).segment_cap(batch, 10_000) == 10_000


@pytest.mark.parametrize(("hardware", "chunks_in_first_step"), [(GPU, 3), (NEURON, 1)], ids=["gpu", "neuron"])
def test_neuron_prefills_one_prompt_per_step_while_a_gpu_packs_several(
        catalog: Catalog, calibration: CalibrationTable, hardware: tuple[str, int], chunks_in_first_step: int) -> None:
    cost, settings = _parts(catalog, calibration, hardware, longest=600, max_seqs=8)
    requests = _requests([500, 500, 500], [10, 10, 10])
    scheduler = Scheduler(0, settings, requests, RequestRecord(3), batch_policy(cost, settings.max_seqs))
    for request in range(3):
        scheduler.enqueue(request)
    chunks = scheduler.chunks(budget=2048, now=0.0)
    assert [request for request, _, _ in chunks] == list(range(chunks_in_first_step))


def test_a_lone_neuron_request_pays_for_the_whole_compiled_batch(
        catalog: Catalog, calibration: CalibrationTable) -> None:
    prompt, output, compiled = 200, 300, 8
    cost, settings = _parts(catalog, calibration, NEURON, longest=prompt + output, max_seqs=compiled)
    log = RequestRecord(1)
    replica = ReplicaSim(0, cost, settings, _requests([prompt], [output]), log)
    replica.enqueue(0)
    replica.drain_all()
    decode = float(log.finish_s[0] - log.first_token_s[0])
    contexts = [prompt + 1 + j for j in range(output - 1)]
    padded = sum(cost.step_s(compiled, compiled * cost.attended(cost.bucket(c)), 0, 0, 0) for c in contexts)
    alone = sum(cost.step_s(1, cost.attended(cost.bucket(c)), 0, 0, 0) for c in contexts)
    assert decode == pytest.approx(padded, rel=1e-9)
    assert decode > alone


def test_neuron_decode_gaps_include_prompt_stalls(catalog: Catalog, calibration: CalibrationTable) -> None:
    requests = generate(Workload(duration_s=30.0, arrivals=Arrivals(rate_per_s=4.0),
                                 prompt_tokens=Lengths(mean=2000), output_tokens=Lengths(mean=200), seed=3))
    run = run_pool(_spec(NEURON), requests, catalog, calibration)
    report = summarize(run, requests)
    assert report.completed == len(requests)
    # Neuron prefills run on their own, so some gaps between tokens include a whole prompt
    assert report.itl_ms.p99 > report.tpot_ms.p50
    cost = run.pools[0].cost
    prefill_s = cost.step_s(0, 0, 2048, cost.causal_attended(0, 2048), 1)
    assert max(total / weight for _, weight, total in run.log.itl.bins()) > prefill_s
