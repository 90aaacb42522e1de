"""The step-time model: physical sanity, and the simulator's scalar path agreeing with the vectorised one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.models import load_model
from fleetwise.perf import bundled_calibration
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaArrays, ReplicaConfig, build_arrays
from fleetwise.perf.scenarios import static_batch
from fleetwise.perf.step_time import StepCost, decode_step, prefill_step, step_parts


def _arrays(catalog: Catalog, model: str, hardware: str, tp: int, dtype: str = "bf16") -> ReplicaArrays:
    hw = resolve_hardware(catalog, hardware, tp)
    eff = bundled_calibration().lookup(hw.engine.id, hw.chip.id, hw.chip.kind)
    return build_arrays([ReplicaConfig(load_model(model), hw, get_dtype(dtype), eff)])


# dense, MoE, MLA, sliding windows; TP 1 to 8; GPU and Neuron (compiled buckets)
SHAPES = [
    ("meta-llama/Llama-3.1-8B-Instruct", "p5.48xlarge", 1, "bf16"),
    ("meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", 2, "bf16"),
    ("meta-llama/Llama-3.1-70B-Instruct", "p4d.24xlarge", 8, "bf16"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "h100-sxm", 4, "bf16"),
    ("Qwen/Qwen3-30B-A3B", "p5.48xlarge", 1, "fp8"),
    ("deepseek-ai/DeepSeek-V3", "p5en.48xlarge", 8, "fp8"),
    ("google/gemma-3-27b-it", "p5.48xlarge", 2, "bf16"),
    ("meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 8, "bf16"),
    ("meta-llama/Llama-3.1-70B-Instruct", "trn1.32xlarge", 8, "bf16"),
]


@pytest.mark.parametrize(("model", "hardware", "tp", "dtype"), SHAPES)
def test_simulator_steps_agree_with_the_vectorised_model(catalog: Catalog, model: str, hardware: str, tp: int,
                                                        dtype: str) -> None:
    arrays = _arrays(catalog, model, hardware, tp, dtype)
    cost = StepCost.from_arrays(arrays)
    for batch, prompt in itertools.product((1, 4), (17, 300, 1000, 4097)):
        executed = cost.bucket(prompt)
        scalar = cost.step_s(0.0, 0.0, batch * executed, batch * cost.causal_attended(0.0, executed), batch)
        vector = float(prefill_step(arrays, batch, prompt).total_s[0, 0])
        assert scalar == pytest.approx(vector, rel=1e-3), (batch, prompt)
    for batch, context in itertools.product((1, 8, 64), (129, 1000, 5000)):
        attended = cost.attended(cost.bucket(context))
        scalar = cost.step_s(batch, batch * attended, 0.0, 0.0, 0.0)
        vector = float(decode_step(arrays, batch, context).total_s[0, 0])
        assert scalar == pytest.approx(vector, rel=1e-3), (batch, context)
        step = decode_step(arrays, batch, context)
        assert cost.decode_s(batch, batch * attended)[1] == bool(step.compute_s[0, 0] > step.memory_s[0, 0])


@pytest.mark.parametrize(("model", "hardware", "tp", "dtype"), SHAPES)
def test_the_affine_forms_give_the_formulas_step_times(catalog: Catalog, model: str, hardware: str, tp: int,
                                                       dtype: str) -> None:
    cost = StepCost.from_arrays(_arrays(catalog, model, hardware, tp, dtype))
    rng = np.random.default_rng(5)
    for seqs, context in itertools.product((1.0, 3.0, 64.0, 256.0), (1.0, 130.0, 4097.0, 128_000.0)):
        attended = seqs * cost.attended(context)
        compute, memory, communication, overhead = step_parts(cost.constants, seqs, attended, 0.0, 0.0, 0.0)
        seconds, compute_bound = cost.decode_s(seqs, attended)
        assert seconds == pytest.approx(max(compute, memory) + communication + overhead, rel=1e-12)
        assert compute_bound == (compute > memory) or compute == pytest.approx(memory, rel=1e-12)
        for _ in range(3):  # mixed steps: decodes beside prompt chunks, some of them ending
            start, chunk = float(rng.integers(0, 4000)), float(rng.integers(1, 8192))
            prompts = float(rng.integers(0, 3))
            args = (seqs, attended, chunk, cost.causal_attended(start, start + chunk), prompts)
            compute, memory, communication, overhead = step_parts(cost.constants, *args)
            assert cost.step_s(*args) == pytest.approx(max(compute, memory) + communication + overhead, rel=1e-12)


def test_batch_one_decode_is_weights_over_bandwidth(catalog: Catalog) -> None:
    arrays = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1)
    step = decode_step(arrays, np.array([[1.0]]), np.array([[1.0]]))
    weights = load_model("meta-llama/Llama-3.1-8B-Instruct").weight_bytes(get_dtype("bf16"))
    expected = weights / (3350e9 * float(arrays.memory_eff[0]))  # H100 SXM HBM3: 3.35 TB/s (chips.yaml)
    assert float(step.memory_s[0, 0]) == pytest.approx(expected, rel=0.01)
    assert float(step.memory_s[0, 0]) > 20 * float(step.compute_s[0, 0])  # batch 1 is memory-bound


def test_throughput_rises_with_batch_until_compute_bound(catalog: Catalog) -> None:
    arrays = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1)
    batches = [1, 4, 16, 64, 256, 1024]
    throughput = [float(static_batch(arrays, b, 512, 256).output_tokens_per_s[0]) for b in batches]
    assert all(later > earlier for earlier, later in itertools.pairwise(throughput))
    gains = [later / earlier for earlier, later in itertools.pairwise(throughput)]
    assert gains[0] > 3.0 and gains[-1] < 1.5  # near-linear while memory-bound, flattening once compute-bound
    big = decode_step(arrays, np.array([[1024.0]]), np.array([[600.0]]))
    assert float(big.compute_s[0, 0]) > float(big.memory_s[0, 0]) * 0.5


def test_more_tp_lowers_tpot_but_adds_communication(catalog: Catalog) -> None:
    tpot, comm = [], []
    for tp in (2, 4, 8):
        arrays = _arrays(catalog, "meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", tp)
        result = static_batch(arrays, 1, 512, 128)
        tpot.append(float(result.tpot_p50_s[0]))
        comm.append(float(result.decode.communication_s[0, 0]))
    assert tpot[0] > tpot[1] > tpot[2]
    assert 0 < comm[0] < comm[1] < comm[2]  # each layer's all-reduces cost more with more ranks
    single = decode_step(_arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "p5.48xlarge", 1), 1.0, 100.0)
    assert float(single.communication_s[0, 0]) == 0.0  # one rank: nothing to all-reduce


def test_quantised_weights_cut_decode_by_bytes_moved(catalog: Catalog) -> None:
    model = load_model("meta-llama/Llama-3.1-70B-Instruct")
    times = {}
    for dtype in ("bf16", "int8", "fp8"):
        arrays = _arrays(catalog, "meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", 4, dtype)
        times[dtype] = float(decode_step(arrays, np.array([[1.0]]), np.array([[1.0]])).memory_s[0, 0])
    byte_ratio = model.weight_bytes(get_dtype("int8")) / model.weight_bytes(get_dtype("bf16"))
    assert times["int8"] / times["bf16"] == pytest.approx(byte_ratio, rel=0.02)
    assert times["fp8"] == pytest.approx(times["int8"], rel=0.01)


def test_neuron_pads_prompts_to_power_of_two_buckets(catalog: Catalog) -> None:
    arrays = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 8)
    t300 = float(prefill_step(arrays, np.array([[1.0]]), np.array([[300.0]])).total_s[0, 0])
    t512 = float(prefill_step(arrays, np.array([[1.0]]), np.array([[512.0]])).total_s[0, 0])
    t600 = float(prefill_step(arrays, np.array([[1.0]]), np.array([[600.0]])).total_s[0, 0])
    assert t300 == pytest.approx(t512)  # 300 tokens run in the 512 bucket
    assert t600 > t512  # 600 tokens need the 1024 bucket


def test_moe_decode_touches_only_routed_experts(catalog: Catalog) -> None:
    arrays = _arrays(catalog, "mistralai/Mixtral-8x7B-Instruct-v0.1", "h100-sxm", 2)
    one = float(decode_step(arrays, np.array([[1.0]]), np.array([[1.0]])).memory_s[0, 0])
    many = float(decode_step(arrays, np.array([[256.0]]), np.array([[1.0]])).memory_s[0, 0])
    model = load_model("mistralai/Mixtral-8x7B-Instruct-v0.1")
    active_share = model.parameters().active / model.parameters().total
    assert one / many == pytest.approx(active_share, rel=0.1)  # batch 1: 2 of 8 experts; batch 256: all


def test_sliding_windows_cap_attention_over_long_contexts(catalog: Catalog) -> None:
    gemma = StepCost.from_arrays(_arrays(catalog, "google/gemma-3-27b-it", "p5.48xlarge", 2))
    llama = StepCost.from_arrays(_arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "p5.48xlarge", 1))
    # Gemma 3 keeps one full-attention layer in six; the others attend to a 1,024-token window
    assert gemma.attended(100_000.0) < 0.2 * gemma.full_layers * 100_000.0 * 6
    assert llama.attended(100_000.0) == llama.full_layers * 100_000.0
    assert gemma.causal_attended(0.0, 500.0) == pytest.approx(gemma.full_layers * 500 * 501 / 2
                                                              + sum(n * 500 * 501 / 2 for _, n in gemma.windows))
