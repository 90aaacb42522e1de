"""Replica hardware: instance or chip × TP resolved to an engine, per-rank peak rates, and the price of a replica."""

from __future__ import annotations

import pytest

from fleetwise.catalog import Catalog
from fleetwise.dtypes import get_dtype
from fleetwise.errors import FleetwiseError, UnknownNameError
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.units import GB


def test_an_instance_is_split_into_replicas_that_share_its_price(catalog: Catalog) -> None:
    hw = resolve_hardware(catalog, "p5.48xlarge", 2)
    assert hw.instance.instance_type == "p5.48xlarge" and hw.chip.id == "h100-sxm"
    assert hw.replicas_per_instance == 4  # 8 H100s, two per replica
    assert hw.usd_per_replica_hour == pytest.approx(catalog.usd_per_hour("p5.48xlarge") / 4)


def test_default_engine_follows_the_hardware_kind(catalog: Catalog) -> None:
    assert resolve_hardware(catalog, "p5.48xlarge", 1).engine.id == "vllm"
    assert resolve_hardware(catalog, "inf2.48xlarge", 2).engine.id == "nxdi"
    assert resolve_hardware(catalog, "p5.48xlarge", 1, "trtllm").engine.id == "trtllm"


def test_a_chip_request_takes_the_cheapest_instance_per_rank_and_pays_only_its_ranks(catalog: Catalog) -> None:
    tp = 4
    hw = resolve_hardware(catalog, "l40s", tp)
    candidates = {name: catalog.usd_per_hour(name) / i.count for name, i in catalog.instances.items()
                  if i.accelerator == "l40s" and i.count >= tp}
    assert len(candidates) > 1  # the choice is a real one
    assert hw.instance.instance_type == min(candidates, key=lambda name: candidates[name])
    assert hw.usd_per_replica_hour == pytest.approx(candidates[hw.instance.instance_type] * tp)
    assert hw.price_note.startswith("chip l40s")


def test_peak_compute_uses_the_dtype_the_matmuls_run_in(catalog: Catalog) -> None:
    hw = resolve_hardware(catalog, "p5.48xlarge", 1)
    assert hw.peak_flops_per_rank(get_dtype("bf16")) == pytest.approx(hw.chip.bf16_tflops.value * 1e12)
    assert hw.peak_flops_per_rank(get_dtype("fp8")) == pytest.approx(hw.chip.fp8_tflops.value * 1e12)
    # weight-only int8 dequantises to 16-bit before the matmul
    assert hw.peak_flops_per_rank(get_dtype("int8")) == hw.peak_flops_per_rank(get_dtype("bf16"))


@pytest.mark.parametrize(("hardware", "cores_per_rank"), [("inf2.48xlarge", 1), ("trn2.48xlarge", 2)])
def test_a_neuron_rank_owns_its_cores_share_of_the_chip(catalog: Catalog, hardware: str, cores_per_rank: int) -> None:
    hw = resolve_hardware(catalog, hardware, 4)  # nxdi: one NeuronCore per rank on Inf2, two (LNC=2) on Trn2
    share = cores_per_rank / hw.chip.neuron_cores.value
    assert hw.units_per_chip_share == pytest.approx(share)
    assert hw.peak_flops_per_rank(get_dtype("bf16")) == pytest.approx(hw.chip.bf16_tflops.value * 1e12 * share)
    assert hw.memory_bytes_per_s_per_rank == pytest.approx(hw.chip.hbm_gb_per_s.value * GB * share)
    # vendors quote the link per chip and both directions together
    assert hw.link_bytes_per_s_per_rank == pytest.approx(hw.instance.interconnect_gb_per_s.value * GB / 2 * share)


def test_a_gpu_rank_gets_half_the_quoted_bidirectional_link(catalog: Catalog) -> None:
    hw = resolve_hardware(catalog, "p5.48xlarge", 8)
    assert hw.units_per_chip_share == 1.0
    assert hw.link_bytes_per_s_per_rank == pytest.approx(hw.instance.interconnect_gb_per_s.value * GB / 2)


def test_missing_chip_figures_resolve_to_none_rather_than_zero(catalog: Catalog) -> None:
    hw = resolve_hardware(catalog, "g5.12xlarge", 2)  # NVIDIA publishes no A10G TFLOPS; G5 has no NVLink figure
    assert hw.peak_flops_per_rank(get_dtype("bf16")) is None
    assert hw.link_bytes_per_s_per_rank is None
    assert hw.memory_bytes_per_s_per_rank == pytest.approx(hw.chip.hbm_gb_per_s.value * GB)


def test_a_region_without_prices_leaves_the_replica_unpriced(catalog: Catalog) -> None:
    hw = resolve_hardware(catalog, "p5.48xlarge", 1, region="xx-nowhere-1")
    assert hw.usd_per_replica_hour is None
    assert hw.price_note == "no on-demand price for p5.48xlarge in xx-nowhere-1"


def test_unknown_hardware_suggests_the_closest_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as caught:
        resolve_hardware(catalog, "h100", 1)
    assert "h100-sxm" in caught.value.suggestions


@pytest.mark.parametrize(
    ("hardware", "tp", "engine", "message"),
    [
        ("p5.48xlarge", 0, None, "--tp must be a positive integer"),
        ("p5.48xlarge", 16, None, "TP=16 needs 16 GPUs; p5.48xlarge has 8"),
        ("p5.48xlarge", 1, "nxdi", "engine nxdi runs on neuron hardware"),
        ("inf2.48xlarge", 1, "vllm", "engine vllm runs on gpu hardware"),
        ("h200", 16, None, "no catalog instance carries 16 TP ranks"),
    ],
)
def test_impossible_replicas_are_refused(catalog: Catalog, hardware: str, tp: int, engine: str | None,
                                         message: str) -> None:
    with pytest.raises(FleetwiseError, match=message):
        resolve_hardware(catalog, hardware, tp, engine)
