"""Tests for fleetwise.catalog.schema: what a chip, an instance and a price must state to be accepted."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fleetwise.catalog import Catalog, Chip, Instance, Price


def _figure(value: object) -> dict[str, object]:
    return {"value": value, "source": "test", "as_of": "2026-11-25"}


def _chip(**overrides: Any) -> dict[str, Any]:
    chip: dict[str, Any] = {
        "id": "gpu-x", "name": "GPU X", "vendor": "nvidia", "kind": "gpu", "generation": "hopper",
        "compute_capability": _figure("9.0"), "bf16_tflops": _figure(989.0), "fp16_tflops": _figure(989.0),
        "fp8_tflops": _figure(1979.0), "int8_tops": _figure(1979.0), "hbm_gib": _figure(80.0),
        "hbm_gb_per_s": _figure(3350.0)}
    chip.update(overrides)
    return chip


def _instance(**overrides: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "instance_type": "x5.48xlarge", "family": "x5", "accelerator": "gpu-x", "accelerator_count": _figure(8),
        "vcpus": _figure(192), "host_memory_gib": _figure(2048.0), "network_gbps": _figure(3200.0)}
    instance.update(overrides)
    return instance


def _price(**overrides: Any) -> dict[str, Any]:
    price: dict[str, Any] = {"instance_type": "x5.48xlarge", "region": "us-east-1", "purchase": "spot",
                             "usd_per_hour": 12.5, "source": "test", "as_of": "2026-11-25"}
    price.update(overrides)
    return price


def test_chip_ids_are_stored_lower_case_without_spaces() -> None:
    assert Chip.model_validate(_chip(id=" GPU-X ")).id == "gpu-x"


@pytest.mark.parametrize(("figure", "expected"), [("8.9", (8, 9)), ("9", (9, 0)), (None, None)])
def test_compute_capability_reads_as_a_comparable_pair(figure: str | None, expected: tuple[int, int] | None) -> None:
    capability = _figure(figure) if figure else None
    assert Chip.model_validate(_chip(compute_capability=capability)).compute_capability_tuple == expected


def test_bundled_gpus_order_by_compute_capability(catalog: Catalog) -> None:
    a10g, l40s, h100 = (catalog.chip(c).compute_capability_tuple for c in ("a10g", "l40s", "h100-sxm"))
    assert a10g is not None and l40s is not None and h100 is not None
    assert a10g < (8, 9) <= l40s < h100
    assert catalog.chip("inferentia2").compute_capability_tuple is None


@pytest.mark.parametrize("hbm", [{"value": None, "note": "not published"}, _figure(0.0)])
def test_a_chip_without_known_memory_is_refused(hbm: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="hbm_gib must be a positive number"):
        Chip.model_validate(_chip(hbm_gib=hbm))


def test_a_neuron_chip_needs_its_neuron_core_count() -> None:
    neuron = {"vendor": "aws", "kind": "neuron", "generation": "neuroncore-v2", "compute_capability": None}
    with pytest.raises(ValidationError, match="neuron_cores"):
        Chip.model_validate(_chip(**neuron))
    assert Chip.model_validate(_chip(**neuron, neuron_cores=_figure(2))).neuron_cores is not None


def test_unknown_fields_are_refused_as_likely_typos() -> None:
    with pytest.raises(ValidationError, match="hbm_gbps"):
        Chip.model_validate(_chip(hbm_gbps=_figure(1.0)))


def test_an_instance_family_must_match_its_type() -> None:
    with pytest.raises(ValidationError, match="family 'x6' does not match"):
        Instance.model_validate(_instance(family="x6"))


@pytest.mark.parametrize("count", [0, None])
def test_an_instance_needs_at_least_one_accelerator(count: int | None) -> None:
    figure = _figure(count) if count is not None else {"value": None, "note": "unknown"}
    with pytest.raises(ValidationError, match="accelerator_count must be a positive integer"):
        Instance.model_validate(_instance(accelerator_count=figure))


def test_memory_per_accelerator_prefers_the_instance_listing_over_the_chip_figure() -> None:
    chip = Chip.model_validate(_chip())
    listed = Instance.model_validate(_instance(accelerator_memory_gib=_figure(640.0)))
    assert listed.memory_gib_per_accelerator(chip) == 80.0
    unlisted = Instance.model_validate(_instance())
    assert unlisted.memory_gib_per_accelerator(chip) == 80.0  # the chip's hbm_gib
    smaller = Instance.model_validate(_instance(accelerator_memory_gib=_figure(600.0)))
    assert smaller.memory_gib_per_accelerator(chip) == 75.0


def test_bundled_g5_gpus_offer_the_memory_ec2_lists_not_the_chip_datasheet(catalog: Catalog) -> None:
    g5 = catalog.instance("g5.xlarge")
    assert catalog.chip("a10g").hbm_gib.value == 24.0
    assert g5.memory_gib_per_accelerator(catalog.chip_of(g5)) == pytest.approx(22.352)


def test_a_price_is_keyed_by_instance_region_and_purchase() -> None:
    assert Price.model_validate(_price()).key == ("x5.48xlarge", "us-east-1", "spot")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"usd_per_hour": float("nan")}, "finite, non-negative"),
        ({"usd_per_hour": -0.01}, "finite, non-negative"),
        ({"source": None}, "needs a source"),
        ({"usd_per_hour": None, "note": "  "}, "needs a note"),
        ({"purchase": "monthly"}, "purchase"),
    ],
)
def test_a_price_must_be_a_sourced_non_negative_number_or_a_noted_gap(overrides: dict[str, Any],
                                                                      message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Price.model_validate(_price(**overrides))


def test_a_free_price_is_allowed() -> None:
    assert Price.model_validate(_price(usd_per_hour=0.0)).usd_per_hour == 0.0
