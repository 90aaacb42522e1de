"""A miniature AWS Price List bulk offer (products + terms) for the price-import tests. The figures are test inputs
chosen to make the arithmetic checkable, not real prices."""

from __future__ import annotations

from typing import Any

ON_DEMAND_SKU, WINDOWS_SKU, DEDICATED_SKU = "SKU1", "SKU2", "SKU3"


def product(sku: str, instance_type: str, os: str = "Linux", tenancy: str = "Shared",
            region: str | None = "us-east-1") -> dict[str, Any]:
    """One Compute Instance product; `region=None` leaves out regionCode, as older offer files do."""
    attributes = {"instanceType": instance_type, "location": "US East (N. Virginia)", "operatingSystem": os,
                  "tenancy": tenancy, "preInstalledSw": "NA", "capacitystatus": "Used",
                  "licenseModel": "No License required"}
    if region is not None:
        attributes["regionCode"] = region
    return {"sku": sku, "productFamily": "Compute Instance", "attributes": attributes}


def on_demand(sku: str, usd: str) -> dict[str, Any]:
    """The on-demand term of one SKU: one hourly price dimension."""
    return {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "priceDimensions": {
        f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}


def reserved(sku: str, length: str, payment: str, hourly: str, upfront: str | None,
             offering_class: str = "standard") -> dict[str, Any]:
    """One reserved offer: an hourly fee and, optionally, an upfront fee."""
    dims: dict[str, Any] = {f"{sku}.{length}.{payment}.hrs": {"unit": "Hrs", "pricePerUnit": {"USD": hourly}}}
    if upfront is not None:
        dims[f"{sku}.{length}.{payment}.fee"] = {"unit": "Quantity", "pricePerUnit": {"USD": upfront}}
    return {"priceDimensions": dims, "termAttributes": {
        "LeaseContractLength": length, "OfferingClass": offering_class, "PurchaseOption": payment}}


def offer_document() -> dict[str, Any]:
    """inf2.xlarge in us-east-1: Linux/shared on-demand 0.9 $/h (Windows 9, Dedicated 8), standard reserved
    1y no-upfront 0.5, 3y no-upfront 0.25, 1y all-upfront 2628 $, 1y partial-upfront 0.1 $/h + 876 $,
    3y partial-upfront 0.05 $/h + 2628 $, and a convertible 1y no-upfront 0.6."""
    sku = ON_DEMAND_SKU
    offers = {
        f"{sku}.R1": reserved(sku, "1yr", "No Upfront", "0.5", None),
        f"{sku}.R2": reserved(sku, "3yr", "No Upfront", "0.25", None),
        f"{sku}.R3": reserved(sku, "1yr", "All Upfront", "0.0", "2628"),
        f"{sku}.R4": reserved(sku, "1yr", "Partial Upfront", "0.1", "876"),
        f"{sku}.R5": reserved(sku, "1yr", "No Upfront", "0.6", None, offering_class="convertible"),
        f"{sku}.R6": reserved(sku, "3yr", "Partial Upfront", "0.05", "2628"),
    }
    return {
        "formatVersion": "v1.0", "offerCode": "AmazonEC2", "publicationDate": "2026-11-01T00:00:00Z",
        "products": {
            sku: product(sku, "inf2.xlarge"),
            WINDOWS_SKU: product(WINDOWS_SKU, "inf2.xlarge", os="Windows"),
            DEDICATED_SKU: product(DEDICATED_SKU, "inf2.xlarge", tenancy="Dedicated"),
        },
        "terms": {
            "OnDemand": {sku: on_demand(sku, "0.9"), WINDOWS_SKU: on_demand(WINDOWS_SKU, "9"),
                         DEDICATED_SKU: on_demand(DEDICATED_SKU, "8")},
            "Reserved": {sku: offers},
        },
    }
