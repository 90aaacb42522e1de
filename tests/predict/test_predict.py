"""predict(): one replica's latency, throughput and cost under a batch, a user count or a rate, and its refusals."""

from __future__ import annotations

import pytest

from fleetwise.catalog import Catalog
from fleetwise.errors import FleetwiseError, UnknownNameError
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable, resolve_shape
from fleetwise.perf.scenarios import closed_loop, static_batch
from fleetwise.predict import Prediction, PredictRequest, predict

LLAMA_8B = load_model("meta-llama/Llama-3.1-8B-Instruct")


def _request(**overrides: object) -> PredictRequest:
    values: dict[str, object] = dict(model=LLAMA_8B, hardware="p5.48xlarge", tp=1, dtype="bf16", engine=None,
                                     mode="batch", load=1.0, input_tokens=512, output_tokens=128)
    values.update(overrides)
    return PredictRequest(**values)  # type: ignore[arg-type]


def _neuron(**overrides: object) -> PredictRequest:
    return _request(**{"hardware": "inf2.48xlarge", "tp": 8, **overrides})


def test_the_json_document_has_the_documented_keys(catalog: Catalog, calibration: CalibrationTable) -> None:
    result = predict(_request(), catalog, calibration)
    assert isinstance(result, Prediction)
    doc = result.to_json()
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_s", "output_tokens_per_s", "requests_per_s", "concurrency",
                "saturated", "max_sequences", "batch_limit", "usd_per_million_output_tokens", "breakdown",
                "efficiency", "notes"):
        assert key in doc, key
    assert set(doc["ttft_ms"]) == {"p50", "mean"} and set(doc["e2e_s"]) == {"p50"}
    assert doc["ttft_ms"]["p50"] == result.ttft_ms.p50 and doc["tpot_ms"]["mean"] == result.tpot_ms.mean
    assert doc["breakdown"]["decode"]["bound"] == result.breakdown.decode.bound
    assert result.breakdown.decode.bound in ("compute", "memory", "communication", "overhead")


def test_cost_per_million_tokens_is_the_replicas_share_of_the_instance(catalog: Catalog,
                                                                       calibration: CalibrationTable) -> None:
    result = predict(_request(load=8.0), catalog, calibration)
    price = catalog.usd_per_hour("p5.48xlarge") / 8  # one of eight GPUs
    assert result.usd_per_hour == pytest.approx(price, abs=1e-5)
    assert result.usd_per_million_output_tokens == pytest.approx(
        price / (result.output_tokens_per_s * 3600) * 1e6, rel=1e-3)


def test_a_static_batch_is_the_perf_models_answer(catalog: Catalog, calibration: CalibrationTable) -> None:
    result = predict(_request(load=8.0, tp=2), catalog, calibration)
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 2, "bf16", context_tokens=640)
    expected = static_batch(shape.arrays, 8, 512, 128)
    assert result.ttft_ms.p50 == pytest.approx(float(expected.ttft_p50_s[0]) * 1e3, abs=1e-4)
    assert result.tpot_ms.p50 == pytest.approx(float(expected.tpot_p50_s[0]) * 1e3, abs=1e-4)
    assert result.e2e_s.p50 == pytest.approx(float(expected.e2e_p50_s[0]), abs=1e-6)
    assert result.output_tokens_per_s == pytest.approx(float(expected.output_tokens_per_s[0]), abs=1e-3)
    assert result.batch_limit == 8 and result.concurrency == 8 and not result.saturated
    assert result.breakdown.decode.memory_ms == pytest.approx(float(expected.decode.memory_s[0, 0]) * 1e3, abs=1e-4)
    assert (result.efficiency.compute, result.efficiency.overhead_ms) == (shape.efficiency.compute,
                                                                          shape.efficiency.overhead_ms)


def test_an_unmeasured_engine_and_chip_say_their_efficiencies_are_borrowed(catalog: Catalog,
                                                                           calibration: CalibrationTable) -> None:
    borrowed = predict(_request(engine="vllm"), catalog, calibration)
    measured = predict(_request(engine="trtllm"), catalog, calibration)
    assert not borrowed.efficiency.calibrated_for_this_engine_and_chip
    assert measured.efficiency.calibrated_for_this_engine_and_chip
    assert any("borrowed" in note for note in borrowed.notes)
    assert not any("borrowed" in note for note in measured.notes)
    assert measured.efficiency.calibration == calibration.path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": load_model("Qwen/Qwen2.5-7B-Instruct"), "tp": 8}, "does not divide 28 attention heads"),
        ({"dtype": "fp8", "hardware": "p4d.24xlarge"}, "compute capability"),
        ({"load": 100000.0}, "does not fit the KV cache"),
        ({"hardware": "inf2.xlarge", "dtype": "int4"}, "does not run int4"),
        ({"hardware": "h100"}, "closest"),
        ({"input_tokens": 0}, "at least 1"),
        ({"output_tokens": 0}, "at least 1"),
        ({"load": 2.5}, "--batch must be a whole number"),
        ({"mode": "concurrency", "load": 100_001.0}, "more users than one replica can be simulated"),
        ({"max_seqs": 0}, "--max-batch must be at least 1"),
        ({"mode": "rate", "load": 1.0, "max_seqs": 100_000}, "--max-batch 100000 does not fit the KV cache"),
        ({"region": "xx-nowhere-1"}, "region"),
        ({"hardware": "g5.12xlarge"}, "A10G: bf16 TFLOPS not found"),
    ],
)
def test_bad_requests_get_the_reasons_fit_gives(catalog: Catalog, calibration: CalibrationTable,
                                                overrides: dict[str, object], message: str) -> None:
    with pytest.raises(FleetwiseError, match=message):
        predict(_request(**overrides), catalog, calibration)


def test_an_unknown_region_suggests_priced_ones(catalog: Catalog, calibration: CalibrationTable) -> None:
    with pytest.raises(UnknownNameError) as caught:
        predict(_request(region="us-east-7"), catalog, calibration)
    assert "us-east-1" in caught.value.suggestions


@pytest.mark.parametrize("load", [float("nan"), float("inf"), 0.0, -1.0])
def test_rates_must_be_positive_and_finite(catalog: Catalog, calibration: CalibrationTable, load: float) -> None:
    with pytest.raises(FleetwiseError, match="--rate must be a positive number"):
        predict(_request(mode="rate", load=load), catalog, calibration)


def test_neuron_rate_compiles_the_smallest_batch_that_keeps_up(catalog: Catalog,
                                                               calibration: CalibrationTable) -> None:
    light = predict(_neuron(mode="rate", load=0.5), catalog, calibration)
    heavy = predict(_neuron(mode="rate", load=3.0), catalog, calibration)
    assert light.batch_limit < heavy.batch_limit
    assert light.batch_limit & (light.batch_limit - 1) == 0  # a power of two
    assert heavy.batch_limit & (heavy.batch_limit - 1) == 0
    assert not light.saturated and not heavy.saturated
    assert light.tpot_ms.p50 < heavy.tpot_ms.p50
    assert any("power-of-two buckets" in note for note in light.notes)


def test_compiled_decode_pays_for_empty_slots(catalog: Catalog, calibration: CalibrationTable) -> None:
    small = predict(_neuron(mode="rate", load=0.5, max_seqs=4), catalog, calibration)
    big = predict(_neuron(mode="rate", load=0.5, max_seqs=64), catalog, calibration)
    assert (small.batch_limit, big.batch_limit) == (4, 64)
    assert big.tpot_ms.p50 > small.tpot_ms.p50  # same load, a bigger compiled batch is slower


def test_compiled_static_batch_pays_for_its_compiled_size(catalog: Catalog, calibration: CalibrationTable) -> None:
    exact = predict(_neuron(load=3.0), catalog, calibration)
    padded = predict(_neuron(load=3.0, max_seqs=32), catalog, calibration)
    assert (exact.batch_limit, padded.batch_limit) == (3, 32)
    assert padded.tpot_ms.p50 > exact.tpot_ms.p50
    with pytest.raises(FleetwiseError, match="smaller than --batch"):
        predict(_neuron(load=3.0, max_seqs=2), catalog, calibration)


def test_max_seqs_caps_concurrent_sequences_on_gpu(catalog: Catalog, calibration: CalibrationTable) -> None:
    capped = predict(_request(mode="concurrency", load=64, max_seqs=8), catalog, calibration)
    free = predict(_request(mode="concurrency", load=64), catalog, calibration)
    assert capped.concurrency == 8 and free.concurrency == 64
    assert capped.saturated and not free.saturated
    assert capped.ttft_ms.p50 > free.ttft_ms.p50  # the other 56 users wait their turn
    assert any("wait for a free slot" in note for note in capped.notes)


def test_an_overloaded_rate_is_saturated_without_finite_latency(catalog: Catalog,
                                                                calibration: CalibrationTable) -> None:
    result = predict(_request(mode="rate", load=1000.0), catalog, calibration)
    assert result.saturated
    assert result.ttft_ms.p50 is None and result.tpot_ms.p50 is None and result.e2e_s.p50 is None
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=640)
    full = closed_loop(shape.arrays, result.batch_limit, 512, 128, max_sequences=result.batch_limit)
    assert result.requests_per_s == pytest.approx(float(full.requests_per_s[0]), rel=1e-3)  # all slots busy
    assert any("grows without bound" in note for note in result.notes)


def test_a_request_arriving_alone_takes_as_long_as_a_batch_of_one(catalog: Catalog,
                                                                    calibration: CalibrationTable) -> None:
    for model, tp in (("meta-llama/Llama-3.1-8B-Instruct", 1), ("mistralai/Mixtral-8x7B-Instruct-v0.1", 2)):
        base = {"model": load_model(model), "tp": tp, "input_tokens": 2048, "output_tokens": 16}
        alone = predict(_request(**base, mode="batch", load=1.0), catalog, calibration)
        trickle = predict(_request(**base, mode="rate", load=0.01), catalog, calibration)  # the simulator's answer
        assert trickle.ttft_ms.p50 == pytest.approx(alone.ttft_ms.p50, rel=1e-3), model
        assert trickle.tpot_ms.p50 == pytest.approx(alone.tpot_ms.p50, rel=1e-3), model
        assert trickle.e2e_s.p50 == pytest.approx(alone.e2e_s.p50, rel=1e-3), model


@pytest.mark.parametrize("mode", ["batch", "concurrency", "rate"])
def test_one_output_token_has_no_tpot(catalog: Catalog, calibration: CalibrationTable, mode: str) -> None:
    result = predict(_request(mode=mode, load=1.0, output_tokens=1), catalog, calibration)
    assert result.tpot_ms.p50 is None and result.tpot_ms.mean is None
    assert result.e2e_s.p50 * 1e3 == pytest.approx(result.ttft_ms.p50, abs=2e-3)  # the first token is the last
    assert any("TPOT is undefined" in note for note in result.notes)


def test_fp8_kv_cache_cuts_long_context_decode(catalog: Catalog, calibration: CalibrationTable) -> None:
    base = {"input_tokens": 8000, "output_tokens": 64, "load": 32.0}
    auto = predict(_request(**base), catalog, calibration)
    fp8 = predict(_request(**base, kv_cache_dtype="fp8"), catalog, calibration)
    assert fp8.max_sequences > auto.max_sequences
    assert fp8.breakdown.decode.memory_ms < auto.breakdown.decode.memory_ms
    assert fp8.kv_cache_dtype == "fp8"


def test_a_chip_request_is_priced_for_its_ranks_only(catalog: Catalog, calibration: CalibrationTable) -> None:
    result = predict(_request(hardware="h100-sxm", tp=2), catalog, calibration)
    assert result.instance == "p5.48xlarge" and result.accelerator == "h100-sxm"
    assert result.usd_per_hour == pytest.approx(catalog.usd_per_hour("p5.48xlarge") * 2 / 8, abs=1e-5)


def test_a_compiled_batch_larger_than_the_kv_cache_is_refused_in_batch_mode(catalog: Catalog,
                                                                            calibration: CalibrationTable) -> None:
    with pytest.raises(FleetwiseError, match="does not fit the KV cache"):
        predict(_neuron(mode="concurrency", load=3.0, max_seqs=100_000), catalog, calibration)  # refused here...
    with pytest.raises(FleetwiseError, match="does not fit the KV cache"):
        predict(_neuron(load=3.0, max_seqs=100_000), catalog, calibration)  # ...and should be here
