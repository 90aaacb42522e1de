"""Performance model: physical sanity of step times, request metrics, and the shipped calibration's accuracy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fleetwise.catalog import load_catalog
from fleetwise.dtypes import get_dtype
from fleetwise.errors import FleetwiseError
from fleetwise.models import load_model
from fleetwise.perf import PredictRequest, bundled_calibration, predict
from fleetwise.perf.calibrate import absolute_percentage_errors, cross_validate, prepare_replay
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.perf.measurements import read_measurements
from fleetwise.perf.scenarios import closed_loop, poisson, static_batch
from fleetwise.perf.replica_arrays import ReplicaConfig, build_arrays
from fleetwise.perf.step_time import decode_step, prefill_step


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(include_user_prices=False)


def _arrays(catalog, model: str, hardware: str, tp: int, dtype: str, engine: str | None = None):  # type: ignore[no-untyped-def]
    hw = resolve_hardware(catalog, hardware, tp, engine)
    eff = bundled_calibration().lookup(hw.engine.id, hw.chip.id, hw.chip.kind)
    return build_arrays([ReplicaConfig(load_model(model), hw, get_dtype(dtype), eff)]), hw, eff


def _request(**overrides: object) -> PredictRequest:
    values: dict[str, object] = dict(model=load_model("meta-llama/Llama-3.1-8B-Instruct"), hardware="p5.48xlarge",
                                     tp=1, dtype="bf16", engine=None, mode="batch", load=1.0, input_tokens=512,
                                     output_tokens=128)
    values.update(overrides)
    return PredictRequest(**values)  # type: ignore[arg-type]


def test_batch_one_decode_is_weights_over_bandwidth(catalog) -> None:  # type: ignore[no-untyped-def]
    arrays, _hw, eff = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1, "bf16")
    step = decode_step(arrays, np.array([[1.0]]), np.array([[1.0]]))
    weights = load_model("meta-llama/Llama-3.1-8B-Instruct").weight_bytes(get_dtype("bf16"))
    expected = weights / (3350e9 * eff.memory)  # H100 SXM HBM3: 3.35 TB/s (chips.yaml)
    assert float(step.memory_s[0, 0]) == pytest.approx(expected, rel=0.01)
    assert float(step.memory_s[0, 0]) > 20 * float(step.compute_s[0, 0])  # batch 1 is memory-bound


def test_throughput_rises_with_batch_until_compute_bound(catalog) -> None:  # type: ignore[no-untyped-def]
    arrays, *_ = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1, "bf16")
    batches = [1, 4, 16, 64, 256, 1024]
    throughput = [float(static_batch(arrays, b, 512, 256).output_tokens_per_s[0]) for b in batches]
    assert all(later > earlier for earlier, later in itertools.pairwise(throughput))
    gains = [later / earlier for earlier, later in itertools.pairwise(throughput)]
    assert gains[0] > 3.0 and gains[-1] < 1.5  # near-linear while memory-bound, flattening once compute-bound
    big = decode_step(arrays, np.array([[1024.0]]), np.array([[600.0]]))
    assert float(big.compute_s[0, 0]) > float(big.memory_s[0, 0]) * 0.5


def test_more_tp_lowers_tpot_but_adds_communication(catalog) -> None:  # type: ignore[no-untyped-def]
    tpot, comm = [], []
    for tp in (2, 4, 8):
        arrays, *_ = _arrays(catalog, "meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", tp, "bf16")
        result = static_batch(arrays, 1, 512, 128)
        tpot.append(float(result.tpot_p50_s[0]))
        comm.append(float(result.decode.communication_s[0, 0]))
    assert tpot[0] > tpot[1] > tpot[2]
    assert 0 < comm[0] < comm[1] < comm[2]  # each layer's all-reduces cost more with more ranks


def test_quantised_weights_cut_decode_by_bytes_moved(catalog) -> None:  # type: ignore[no-untyped-def]
    model = load_model("meta-llama/Llama-3.1-70B-Instruct")
    times = {}
    for dtype in ("bf16", "int8", "fp8"):
        arrays, *_ = _arrays(catalog, "meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", 4, dtype)
        times[dtype] = float(decode_step(arrays, np.array([[1.0]]), np.array([[1.0]])).memory_s[0, 0])
    byte_ratio = model.weight_bytes(get_dtype("int8")) / model.weight_bytes(get_dtype("bf16"))
    assert times["int8"] / times["bf16"] == pytest.approx(byte_ratio, rel=0.02)
    assert times["fp8"] == pytest.approx(times["int8"], rel=0.01)


def test_neuron_pads_prompts_to_power_of_two_buckets(catalog) -> None:  # type: ignore[no-untyped-def]
    arrays, *_ = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 8, "bf16")
    t300 = float(prefill_step(arrays, np.array([[1.0]]), np.array([[300.0]])).total_s[0, 0])
    t512 = float(prefill_step(arrays, np.array([[1.0]]), np.array([[512.0]])).total_s[0, 0])
    assert t300 == pytest.approx(t512)  # 300 tokens run in the 512 bucket


def test_moe_decode_touches_only_routed_experts(catalog) -> None:  # type: ignore[no-untyped-def]
    arrays, *_ = _arrays(catalog, "mistralai/Mixtral-8x7B-Instruct-v0.1", "h100-sxm", 2, "bf16")
    one = float(decode_step(arrays, np.array([[1.0]]), np.array([[1.0]])).memory_s[0, 0])
    many = float(decode_step(arrays, np.array([[256.0]]), np.array([[1.0]])).memory_s[0, 0])
    model = load_model("mistralai/Mixtral-8x7B-Instruct-v0.1")
    active_share = model.parameters().active / model.parameters().total
    assert one / many == pytest.approx(active_share, rel=0.1)  # batch 1: 2 of 8 experts; batch 256: all


def test_closed_loop_and_poisson_agree_with_littles_law(catalog) -> None:  # type: ignore[no-untyped-def]
    arrays, *_ = _arrays(catalog, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1, "bf16")
    loop = closed_loop(arrays, 32, 512, 256, max_sequences=500)
    assert float(loop.requests_per_s[0]) * float(loop.e2e_p50_s[0]) == pytest.approx(32, rel=1e-6)
    rate = float(loop.requests_per_s[0]) * 0.5
    open_loop = poisson(arrays, rate, 512, 256, max_sequences=500)
    assert not open_loop.saturated[0]
    assert float(open_loop.concurrency[0]) == pytest.approx(rate * float(open_loop.e2e_p50_s[0]), rel=0.05)
    assert float(open_loop.output_tokens_per_s[0]) == pytest.approx(rate * 256)
    overloaded = poisson(arrays, 1000.0, 512, 256, max_sequences=500)
    assert overloaded.saturated[0] and not np.isfinite(overloaded.ttft_p50_s[0])


def test_predict_reports_the_documented_keys(catalog) -> None:  # type: ignore[no-untyped-def]
    result = predict(_request(), catalog, bundled_calibration())
    for key in ("ttft_ms", "tpot_ms", "e2e_s", "output_tokens_per_s", "requests_per_s",
                "usd_per_million_output_tokens", "breakdown"):
        assert key in result
    assert set(result["ttft_ms"]) >= {"p50", "mean"} and "p50" in result["e2e_s"]
    assert result["breakdown"]["decode"]["bound"] in ("compute", "memory", "communication", "overhead")
    price = catalog.usd_per_hour("p5.48xlarge") / 8
    assert result["usd_per_million_output_tokens"] == pytest.approx(
        price / (result["output_tokens_per_s"] * 3600) * 1e6, rel=1e-3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": load_model("Qwen/Qwen2.5-7B-Instruct"), "tp": 8}, "does not divide 28 attention heads"),
        ({"dtype": "fp8", "hardware": "p4d.24xlarge"}, "compute capability"),
        ({"load": 100000.0}, "does not fit the KV cache"),
        ({"hardware": "inf2.xlarge", "dtype": "int4"}, "does not run int4"),
        ({"hardware": "h100"}, "closest"),
        ({"input_tokens": 0}, "at least 1"),
    ],
)
def test_bad_requests_get_the_reasons_fit_gives(catalog, overrides: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FleetwiseError, match=message):
        predict(_request(**overrides), catalog, bundled_calibration())


def test_shipped_calibration_meets_the_error_targets(catalog) -> None:  # type: ignore[no-untyped-def]
    rows, excluded = read_measurements()
    assert len(rows) + len(excluded) >= 64 and all(x.reason for x in excluded)
    replay = prepare_replay(rows, catalog)
    errors = absolute_percentage_errors(replay, bundled_calibration())
    assert float(np.median(errors)) <= 0.15
    cv = cross_validate(replay)
    assert cv.median <= 0.25
    assert len(cv.by_source) >= 4


def test_neuron_rate_compiles_the_smallest_batch_that_keeps_up(catalog) -> None:  # type: ignore[no-untyped-def]
    light = predict(_request(hardware="inf2.48xlarge", tp=8, mode="rate", load=0.5), catalog, bundled_calibration())
    heavy = predict(_request(hardware="inf2.48xlarge", tp=8, mode="rate", load=3.0), catalog, bundled_calibration())
    assert light["batch_limit"] < heavy["batch_limit"]
    assert light["batch_limit"] & (light["batch_limit"] - 1) == 0  # a power of two
    assert not light["saturated"] and light["tpot_ms"]["p50"] < heavy["tpot_ms"]["p50"]


def test_compiled_decode_pays_for_empty_slots(catalog) -> None:  # type: ignore[no-untyped-def]
    small = predict(_request(hardware="inf2.48xlarge", tp=8, mode="rate", load=0.5, max_batch=4), catalog,
                    bundled_calibration())
    big = predict(_request(hardware="inf2.48xlarge", tp=8, mode="rate", load=0.5, max_batch=64), catalog,
                  bundled_calibration())
    assert big["tpot_ms"]["p50"] > small["tpot_ms"]["p50"]  # same load, a bigger compiled batch is slower


def test_max_batch_caps_concurrent_sequences_on_gpu(catalog) -> None:  # type: ignore[no-untyped-def]
    capped = predict(_request(mode="concurrency", load=64, max_batch=8), catalog, bundled_calibration())
    free = predict(_request(mode="concurrency", load=64), catalog, bundled_calibration())
    assert capped["concurrency"] == 8 and free["concurrency"] == 64
    assert capped["ttft_ms"]["p50"] > free["ttft_ms"]["p50"]  # the other 56 users wait their turn


def test_a_lone_request_is_never_faster_than_batch_one(catalog) -> None:  # type: ignore[no-untyped-def]
    for model, hardware, tp in (("meta-llama/Llama-3.1-8B-Instruct", "p5.48xlarge", 1),
                                ("mistralai/Mixtral-8x7B-Instruct-v0.1", "p5.48xlarge", 2)):
        base = {"model": load_model(model), "hardware": hardware, "tp": tp, "input_tokens": 2048, "output_tokens": 16}
        alone = predict(_request(**base, mode="batch", load=1.0), catalog, bundled_calibration())
        trickle = predict(_request(**base, mode="rate", load=0.01), catalog, bundled_calibration())
        assert trickle["e2e_s"]["p50"] >= alone["e2e_s"]["p50"] * 0.999
        assert trickle["tpot_ms"]["p50"] >= alone["tpot_ms"]["p50"] * 0.999


@pytest.mark.parametrize("mode", ["batch", "concurrency", "rate"])
def test_one_output_token_has_no_tpot(catalog, mode: str) -> None:  # type: ignore[no-untyped-def]
    result = predict(_request(mode=mode, load=1.0, output_tokens=1), catalog, bundled_calibration())
    assert result["tpot_ms"]["p50"] is None
    assert result["e2e_s"]["p50"] * 1e3 >= result["ttft_ms"]["p50"] * 0.999


def test_compiled_static_batch_pays_for_its_compiled_size(catalog) -> None:  # type: ignore[no-untyped-def]
    exact = predict(_request(hardware="inf2.48xlarge", tp=8, load=3.0), catalog, bundled_calibration())
    padded = predict(_request(hardware="inf2.48xlarge", tp=8, load=3.0, max_batch=32), catalog,
                     bundled_calibration())
    assert padded["tpot_ms"]["p50"] > exact["tpot_ms"]["p50"]
    with pytest.raises(FleetwiseError, match="smaller than --batch"):
        predict(_request(hardware="inf2.48xlarge", tp=8, load=3.0, max_batch=2), catalog, bundled_calibration())


@pytest.mark.parametrize("load", [float("nan"), float("inf")])
def test_non_finite_rates_are_refused(catalog, load: float) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FleetwiseError, match="positive number"):
        predict(_request(mode="rate", load=load), catalog, bundled_calibration())


def test_fp8_kv_cache_cuts_long_context_decode(catalog) -> None:  # type: ignore[no-untyped-def]
    base = {"input_tokens": 8000, "output_tokens": 64, "load": 32.0}
    auto = predict(_request(**base), catalog, bundled_calibration())
    fp8 = predict(_request(**base, kv_cache_dtype="fp8"), catalog, bundled_calibration())
    assert fp8["max_sequences"] > auto["max_sequences"]
    assert fp8["breakdown"]["decode"]["memory_ms"] < auto["breakdown"]["decode"]["memory_ms"]
