"""Deployment shapes: refused with fit's reason, unpredictable without chip figures, and the sequence cap they run."""

from __future__ import annotations

import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.engines.profile import get_engine
from fleetwise.errors import FleetwiseError
from fleetwise.fit.memory import fit_one
from fleetwise.models import load_model
from fleetwise.perf import CalibrationTable, resolve_shape
from fleetwise.perf.scenarios import poisson, smallest_compiled_batch
from fleetwise.perf.shape import Load, UnpredictableError

LLAMA_8B = load_model("meta-llama/Llama-3.1-8B-Instruct")
LLAMA_70B = load_model("meta-llama/Llama-3.1-70B-Instruct")


def test_a_shape_that_does_not_fit_is_refused_with_fits_reason(catalog: Catalog,
                                                              calibration: CalibrationTable) -> None:
    fit = fit_one(LLAMA_70B, catalog, catalog.instances["p5.48xlarge"], get_engine("vllm"), 1, get_dtype("bf16"), 1024)
    assert not fit.fits and fit.reason
    with pytest.raises(FleetwiseError) as caught:
        resolve_shape(LLAMA_70B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=1024)
    assert str(caught.value) == f"p5.48xlarge TP=1 bf16: {fit.reason}"


def test_a_measured_shape_can_skip_the_memory_check(catalog: Catalog, calibration: CalibrationTable) -> None:
    shape = resolve_shape(LLAMA_70B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=1024,
                          check_fit=False)
    assert not shape.fit.fits
    assert len(shape.arrays) == 1  # still priced by the step model


def test_a_chip_without_published_tflops_is_unpredictable(catalog: Catalog, calibration: CalibrationTable) -> None:
    with pytest.raises(UnpredictableError, match="NVIDIA A10G: bf16 TFLOPS not found in the catalog"):
        resolve_shape(LLAMA_8B, catalog, calibration, "g5.12xlarge", 1, "bf16", context_tokens=2048)
    assert issubclass(UnpredictableError, FleetwiseError)  # the CLI reports it like any refusal


def test_vllm_runs_its_default_max_num_seqs(catalog: Catalog, calibration: CalibrationTable) -> None:
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=2048)
    assert shape.max_seqs == get_engine("vllm").max_num_seqs.value == 128  # engines.yaml
    assert shape.fit.max_sequences > 128  # the engine's cap, not the KV cache, binds here


def test_an_engine_without_a_default_cap_runs_what_the_kv_cache_holds(catalog: Catalog,
                                                                     calibration: CalibrationTable) -> None:
    assert get_engine("trtllm").sequence_limit is None
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", "trtllm", context_tokens=2048)
    assert shape.max_seqs == shape.fit.max_sequences


def test_an_explicit_sequence_cap_wins(catalog: Catalog, calibration: CalibrationTable) -> None:
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=2048, max_seqs=7)
    assert shape.max_seqs == 7
    assert shape.with_max_seqs(3).max_seqs == 3 and shape.max_seqs == 7
    with pytest.raises(FleetwiseError, match="at least 1"):
        shape.with_max_seqs(0)
    with pytest.raises(FleetwiseError, match="--max-seqs must be at least 1"):
        resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=2048, max_seqs=0)


def test_a_compiled_batch_is_sized_for_the_load(catalog: Catalog, calibration: CalibrationTable) -> None:
    unsized = resolve_shape(LLAMA_8B, catalog, calibration, "inf2.48xlarge", 2, "bf16", context_tokens=1024)
    assert unsized.compiled and unsized.max_seqs == unsized.fit.max_sequences  # NxDI has no default cap
    sizes = []
    for rate in (0.5, 2.0):
        load = Load(rate, 512, 512)
        shape = resolve_shape(LLAMA_8B, catalog, calibration, "inf2.48xlarge", 2, "bf16", context_tokens=1024,
                              load=load)
        batch = shape.max_seqs
        assert batch == smallest_compiled_batch(unsized.arrays, rate, 512, 512, unsized.fit.max_sequences)
        assert batch & (batch - 1) == 0 and batch < shape.fit.max_sequences  # a power of two that keeps up...
        assert not poisson(shape.arrays, rate, 512, 512, batch).saturated[0]
        assert poisson(shape.arrays, rate, 512, 512, batch // 2).saturated[0]  # ...and half of it does not
        sizes.append(batch)
    assert sizes[0] < sizes[1]
    pinned = resolve_shape(LLAMA_8B, catalog, calibration, "inf2.48xlarge", 2, "bf16", context_tokens=1024,
                           load=Load(2.0, 512, 512), max_seqs=4)
    assert pinned.max_seqs == 4  # an explicit compiled batch is not resized


def test_a_load_does_not_resize_a_gpu_engine(catalog: Catalog, calibration: CalibrationTable) -> None:
    shape = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 1, "bf16", context_tokens=1024,
                          load=Load(0.1, 512, 512))
    assert not shape.compiled and shape.max_seqs == 128


def test_efficiencies_come_from_the_calibration_and_say_whether_measured(catalog: Catalog,
                                                                         calibration: CalibrationTable) -> None:
    measured = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 2, "bf16", "trtllm", context_tokens=2048)
    borrowed = resolve_shape(LLAMA_8B, catalog, calibration, "p5.48xlarge", 2, "bf16", "vllm", context_tokens=2048)
    assert measured.calibrated and not borrowed.calibrated
    assert measured.efficiency == calibration.lookup("trtllm", "h100-sxm", "gpu")
    assert borrowed.efficiency == calibration.lookup("vllm", "h100-sxm", "gpu")
    assert measured.name == "p5.48xlarge trtllm TP=2 bf16" and measured.tp == 2 and measured.engine.id == "trtllm"
    assert measured.config.efficiency == measured.efficiency and measured.config.kv_cache_dtype == "auto"
