"""Tests for fleetwise.catalog.aws_price_list: the right offers are picked and reserved fees are amortised."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetwise.catalog import load_catalog, write_price_csv
from fleetwise.catalog.aws_price_list import ImportOptions, prices_from_offer, read_offer_file
from fleetwise.errors import DataFileError, FleetwiseError
from tests.catalog.offer_files import offer_document, on_demand, product

HOURS_PER_YEAR = 8760


def _by_purchase(doc: dict[str, Any], options: ImportOptions = ImportOptions()) -> dict[str, float | None]:
    return {p.purchase: p.usd_per_hour for p in prices_from_offer(doc, "test-offer", options)}


def test_linux_shared_on_demand_and_standard_no_upfront_reserved_are_imported() -> None:
    prices = prices_from_offer(offer_document(), "test-offer")
    assert {p.purchase: p.usd_per_hour for p in prices} == {
        "on-demand": pytest.approx(0.9),  # not the Windows (9) or Dedicated (8) offer
        "reserved-1y": pytest.approx(0.5),  # not the convertible one (0.6) or the upfront ones
        "reserved-3y": pytest.approx(0.25),
    }
    assert {(p.instance_type, p.region, p.source, p.as_of) for p in prices} == {
        ("inf2.xlarge", "us-east-1", "test-offer", "2026-11-01")}


def test_all_upfront_fee_is_spread_over_the_term() -> None:
    prices = _by_purchase(offer_document(), ImportOptions(reserved_payment="all-upfront"))
    assert prices["reserved-1y"] == pytest.approx(2628 / HOURS_PER_YEAR)
    assert "reserved-3y" not in prices  # no all-upfront 3-year offer in the file


def test_partial_upfront_adds_the_fee_spread_over_its_term_to_the_hourly_fee() -> None:
    prices = _by_purchase(offer_document(), ImportOptions(reserved_payment="partial-upfront"))
    assert prices["reserved-1y"] == pytest.approx(0.1 + 876 / HOURS_PER_YEAR)
    assert prices["reserved-3y"] == pytest.approx(0.05 + 2628 / (3 * HOURS_PER_YEAR))


def test_convertible_reserved_class_picks_the_convertible_offer() -> None:
    assert _by_purchase(offer_document(), ImportOptions(reserved_class="convertible"))["reserved-1y"] == \
        pytest.approx(0.6)


def test_region_filter_drops_other_regions() -> None:
    assert prices_from_offer(offer_document(), "t", ImportOptions(regions=("eu-west-1",))) == []
    assert len(prices_from_offer(offer_document(), "t", ImportOptions(regions=("us-east-1",)))) == 3


def test_instance_type_filter_ignores_case_and_drops_other_types() -> None:
    doc = offer_document()
    doc["products"]["SKU9"] = product("SKU9", "g5.xlarge")
    doc["terms"]["OnDemand"]["SKU9"] = on_demand("SKU9", "1.006")
    only_g5 = prices_from_offer(doc, "t", ImportOptions(instance_types=("G5.XLARGE",)))
    assert [(p.instance_type, p.purchase, p.usd_per_hour) for p in only_g5] == [("g5.xlarge", "on-demand", 1.006)]


def test_older_offer_files_without_region_codes_map_the_location_name() -> None:
    doc = offer_document()
    doc["products"]["SKU1"] = product("SKU1", "inf2.xlarge", region=None)
    assert {p.region for p in prices_from_offer(doc, "t")} == {"us-east-1"}


def test_a_product_in_an_unknown_location_without_region_code_is_skipped() -> None:
    doc = offer_document()
    doc["products"]["SKU1"] = product("SKU1", "inf2.xlarge", region=None)
    doc["products"]["SKU1"]["attributes"]["location"] = "Moon Base (Tranquility)"
    assert prices_from_offer(doc, "t") == []


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("preInstalledSw", "SQL Web"), ("capacitystatus", "UnusedCapacityReservation"),
     ("licenseModel", "Bring your own license")],
)
def test_offers_with_software_reservations_or_licences_are_not_plain_linux(attribute: str, value: str) -> None:
    doc = offer_document()
    doc["products"]["SKU1"]["attributes"][attribute] = value
    assert prices_from_offer(doc, "t") == []


def test_imported_prices_override_the_bundled_catalog(tmp_path: Path) -> None:
    out = tmp_path / "prices.csv"
    write_price_csv(prices_from_offer(offer_document(), "test-offer"), out)
    catalog = load_catalog([out], include_user_prices=False)
    assert catalog.usd_per_hour("inf2.xlarge", "us-east-1", "on-demand") == pytest.approx(0.9)
    assert catalog.usd_per_hour("inf2.xlarge", "us-east-1", "reserved-3y") == pytest.approx(0.25)


@pytest.mark.parametrize(("option", "value"), [("reserved_class", "flexible"), ("reserved_payment", "monthly")])
def test_unknown_reserved_options_are_user_errors(option: str, value: str) -> None:
    with pytest.raises(FleetwiseError, match=value):
        ImportOptions(**{option: value})


def test_an_offer_file_reads_back_as_its_document(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(offer_document()))
    assert read_offer_file(path) == offer_document()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"hello": 1}), "not an AWS Price List offer file"),
        (json.dumps({"offerCode": "AmazonRDS", "products": {}, "terms": {}}), "AmazonEC2"),
        ("{not json", "not valid JSON"),
    ],
)
def test_not_an_ec2_offer_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "index.json"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message):
        read_offer_file(path)


def test_a_missing_offer_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_offer_file(tmp_path / "index.json")


def _on_demand_usd(doc: dict[str, Any]) -> dict[str, Any]:
    price: dict[str, Any] = doc["terms"]["OnDemand"]["SKU1"]["SKU1.JRTCKXETXF"]["priceDimensions"][
        "SKU1.JRTCKXETXF.6YS6EN2CT7"]["pricePerUnit"]
    return price


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: _on_demand_usd(d).update(USD="cheap"),
        lambda d: _on_demand_usd(d).pop("USD"),
        lambda d: _on_demand_usd(d).update(USD="-1"),
        lambda d: d["products"].update(SKU1="not an object"),
    ],
    ids=["not-a-number", "no-usd", "negative", "product-not-an-object"],
)
def test_malformed_offers_name_the_sku(corrupt: Callable[[dict[str, Any]], object]) -> None:
    doc = offer_document()
    corrupt(doc)
    with pytest.raises(DataFileError) as excinfo:
        prices_from_offer(doc, "test-offer")
    assert excinfo.value.entry == "SKU SKU1"


def test_products_that_are_not_an_object_are_a_clear_error() -> None:
    with pytest.raises(DataFileError, match="'products' is not an object"):
        prices_from_offer({"products": [], "terms": {}}, "test-offer")
