"""Importing an AWS Price List bulk offer file: the right offers are picked and reserved fees are amortised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetwise.catalog import load_catalog
from fleetwise.catalog.aws_price_list import ImportOptions, prices_from_offer, read_offer_file
from fleetwise.errors import DataFileError

# A miniature offer file in the AWS Price List bulk format (products + terms). The figures are test inputs
# chosen to make the arithmetic checkable, not real prices.
ON_DEMAND_SKU, WINDOWS_SKU, DEDICATED_SKU = "SKU1", "SKU2", "SKU3"


def _product(sku: str, instance_type: str, os: str = "Linux", tenancy: str = "Shared") -> dict[str, Any]:
    return {"sku": sku, "productFamily": "Compute Instance", "attributes": {
        "instanceType": instance_type, "location": "US East (N. Virginia)", "regionCode": "us-east-1",
        "operatingSystem": os, "tenancy": tenancy, "preInstalledSw": "NA", "capacitystatus": "Used",
        "licenseModel": "No License required"}}


def _on_demand(sku: str, usd: str) -> dict[str, Any]:
    return {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "priceDimensions": {
        f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}


def _reserved(sku: str, length: str, payment: str, hourly: str, upfront: str | None) -> dict[str, Any]:
    dims: dict[str, Any] = {f"{sku}.{length}.{payment}.hrs": {"unit": "Hrs", "pricePerUnit": {"USD": hourly}}}
    if upfront is not None:
        dims[f"{sku}.{length}.{payment}.fee"] = {"unit": "Quantity", "pricePerUnit": {"USD": upfront}}
    return {"priceDimensions": dims, "termAttributes": {
        "LeaseContractLength": length, "OfferingClass": "standard", "PurchaseOption": payment}}


def offer_document() -> dict[str, Any]:
    reserved = {
        f"{ON_DEMAND_SKU}.R1": _reserved(ON_DEMAND_SKU, "1yr", "No Upfront", "0.5", None),
        f"{ON_DEMAND_SKU}.R2": _reserved(ON_DEMAND_SKU, "3yr", "No Upfront", "0.25", None),
        f"{ON_DEMAND_SKU}.R3": _reserved(ON_DEMAND_SKU, "1yr", "All Upfront", "0.0", "4380"),
    }
    return {
        "formatVersion": "v1.0", "offerCode": "AmazonEC2", "publicationDate": "2026-11-01T00:00:00Z",
        "products": {
            ON_DEMAND_SKU: _product(ON_DEMAND_SKU, "inf2.xlarge"),
            WINDOWS_SKU: _product(WINDOWS_SKU, "inf2.xlarge", os="Windows"),
            DEDICATED_SKU: _product(DEDICATED_SKU, "inf2.xlarge", tenancy="Dedicated"),
        },
        "terms": {
            "OnDemand": {ON_DEMAND_SKU: _on_demand(ON_DEMAND_SKU, "0.9"), WINDOWS_SKU: _on_demand(WINDOWS_SKU, "9"),
                         DEDICATED_SKU: _on_demand(DEDICATED_SKU, "8")},
            "Reserved": {ON_DEMAND_SKU: reserved},
        },
    }


def test_linux_shared_on_demand_and_reserved_are_imported() -> None:
    prices = {p.purchase: p for p in prices_from_offer(offer_document(), "test-offer")}
    assert prices["on-demand"].usd_per_hour == pytest.approx(0.9)  # not the Windows or Dedicated offer
    assert prices["reserved-1y"].usd_per_hour == pytest.approx(0.5)
    assert prices["reserved-3y"].usd_per_hour == pytest.approx(0.25)
    assert prices["on-demand"].as_of == "2026-11-01"


def test_all_upfront_fee_is_spread_over_the_term() -> None:
    options = ImportOptions(reserved_payment="all-upfront")
    prices = {p.purchase: p for p in prices_from_offer(offer_document(), "test-offer", options)}
    assert prices["reserved-1y"].usd_per_hour == pytest.approx(4380 / 8760)
    assert "reserved-3y" not in prices  # no all-upfront 3-year offer in the file


def test_region_filter_drops_other_regions() -> None:
    assert prices_from_offer(offer_document(), "t", ImportOptions(regions=("eu-west-1",))) == []


def test_imported_prices_override_the_bundled_catalog(tmp_path: Path) -> None:
    from fleetwise.catalog import write_price_csv

    out = tmp_path / "prices.csv"
    write_price_csv(prices_from_offer(offer_document(), "test-offer"), out)
    catalog = load_catalog([out])
    assert catalog.usd_per_hour("inf2.xlarge", "us-east-1", "on-demand") == pytest.approx(0.9)
    assert catalog.usd_per_hour("inf2.xlarge", "us-east-1", "reserved-3y") == pytest.approx(0.25)


def test_not_an_offer_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "index.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataFileError, match="not an AWS Price List offer file"):
        read_offer_file(bad)
    other = tmp_path / "rds.json"
    other.write_text(json.dumps({"offerCode": "AmazonRDS", "products": {}, "terms": {}}))
    with pytest.raises(DataFileError, match="AmazonEC2"):
        read_offer_file(other)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d["terms"]["OnDemand"]["SKU1"]["SKU1.JRTCKXETXF"]["priceDimensions"][
            "SKU1.JRTCKXETXF.6YS6EN2CT7"]["pricePerUnit"].update(USD="cheap"),
        lambda d: d["terms"]["OnDemand"]["SKU1"]["SKU1.JRTCKXETXF"]["priceDimensions"][
            "SKU1.JRTCKXETXF.6YS6EN2CT7"]["pricePerUnit"].pop("USD"),
        lambda d: d["terms"]["OnDemand"]["SKU1"]["SKU1.JRTCKXETXF"]["priceDimensions"][
            "SKU1.JRTCKXETXF.6YS6EN2CT7"]["pricePerUnit"].update(USD="-1"),
        lambda d: d["products"].update(SKU9="not an object"),
    ],
)
def test_malformed_offers_name_the_sku(corrupt: Any) -> None:
    doc = offer_document()
    corrupt(doc)
    with pytest.raises(DataFileError, match="SKU"):
        prices_from_offer(doc, "test-offer")
