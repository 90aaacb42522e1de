"""Read EC2 prices out of an AWS Price List bulk offer file (offline JSON) into catalog price rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetwise.catalog.schema import Price
from fleetwise.datafiles import validate_record
from fleetwise.errors import DataFileError, FleetwiseError

# Hours in a reserved term, for spreading an upfront fee over the term (365-day years, as AWS does).
HOURS_PER_TERM = {"1yr": 365 * 24, "3yr": 3 * 365 * 24}
RESERVED_PAYMENTS = {"no-upfront": "No Upfront", "partial-upfront": "Partial Upfront", "all-upfront": "All Upfront"}

# Older offer files name regions only by location; newer ones also carry `regionCode`.
_LOCATION_TO_REGION = {
    "US East (N. Virginia)": "us-east-1", "US East (Ohio)": "us-east-2", "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2", "EU (Ireland)": "eu-west-1", "EU (Frankfurt)": "eu-central-1",
    "EU (London)": "eu-west-2", "EU (Paris)": "eu-west-3", "EU (Stockholm)": "eu-north-1",
    "Asia Pacific (Tokyo)": "ap-northeast-1", "Asia Pacific (Seoul)": "ap-northeast-2",
    "Asia Pacific (Singapore)": "ap-southeast-1", "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Mumbai)": "ap-south-1", "Canada (Central)": "ca-central-1", "South America (Sao Paulo)": "sa-east-1",
}


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """Which offers count as 'the' price: Linux, shared tenancy, no pre-installed software."""

    regions: tuple[str, ...] = ()  # empty = every region in the file
    instance_types: tuple[str, ...] = ()  # empty = every instance type in the file
    reserved_class: str = "standard"  # standard | convertible
    reserved_payment: str = "no-upfront"  # no-upfront | partial-upfront | all-upfront

    def __post_init__(self) -> None:
        if self.reserved_class not in ("standard", "convertible"):
            raise FleetwiseError(f"--reserved-class must be standard or convertible, got {self.reserved_class!r}")
        if self.reserved_payment not in RESERVED_PAYMENTS:
            raise FleetwiseError(f"--reserved-payment must be one of {', '.join(RESERVED_PAYMENTS)}, "
                                 f"got {self.reserved_payment!r}")


def read_offer_file(path: str | Path) -> dict[str, Any]:
    """Parse an AWS Price List bulk JSON offer file, checking it is an EC2 offer."""
    p = Path(path).expanduser()
    try:
        with p.open(encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise DataFileError(str(p), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(str(p), f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(str(p), f"not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(doc, dict) or "products" not in doc or "terms" not in doc:
        raise DataFileError(str(p), "not an AWS Price List offer file (needs 'products' and 'terms')")
    if doc.get("offerCode") not in (None, "AmazonEC2"):
        raise DataFileError(str(p), f"offerCode is {doc.get('offerCode')!r}; expected AmazonEC2", field="offerCode")
    return doc


def prices_from_offer(doc: Mapping[str, Any], source: str, options: ImportOptions = ImportOptions()) -> list[Price]:
    """On-demand and 1y/3y reserved effective hourly prices for Linux shared-tenancy instances in the offer."""
    products = doc.get("products")
    if not isinstance(products, Mapping):
        raise DataFileError(source, "'products' is not an object", field="products")
    out: list[Price] = []
    for sku, product in products.items():
        try:
            out.extend(_prices_for_product(doc, source, options, str(sku), product))
        except (ValueError, TypeError, AttributeError) as exc:
            raise DataFileError(source, f"malformed offer: {exc}", entry=f"SKU {sku}") from None
    return out


def _prices_for_product(doc: Mapping[str, Any], source: str, options: ImportOptions, sku: str,
                        product: Any) -> list[Price]:
    """The prices one product (SKU) of the offer contributes: none unless it is plain Linux on a wanted type."""
    published = str(doc.get("publicationDate") or "")[:10] or None
    wanted_regions = set(options.regions)
    wanted_types = {t.lower() for t in options.instance_types}
    payment = RESERVED_PAYMENTS[options.reserved_payment]
    terms = doc.get("terms") or {}
    if not isinstance(product, Mapping):
        raise TypeError("product is not an object")
    attrs = product.get("attributes") or {}
    instance_type = str(attrs.get("instanceType", "")).lower()
    region = attrs.get("regionCode") or _LOCATION_TO_REGION.get(str(attrs.get("location", "")))
    if not instance_type or not region or not _is_plain_linux(product):
        return []
    if (wanted_regions and region not in wanted_regions) or (wanted_types and instance_type not in wanted_types):
        return []

    def row(purchase: str, usd: float, note: str) -> Price:
        return validate_record(Price, {"instance_type": instance_type, "region": region, "purchase": purchase,
                                       "usd_per_hour": usd, "source": source, "as_of": published, "note": note},
                               source, f"SKU {sku}")

    out = []
    hourly = _on_demand_hourly((terms.get("OnDemand") or {}).get(sku) or {})
    if hourly is not None:
        out.append(row("on-demand", hourly, f"AWS Price List, Linux/shared, SKU {sku}"))
    for term_length, purchase in (("1yr", "reserved-1y"), ("3yr", "reserved-3y")):
        effective = _reserved_effective_hourly((terms.get("Reserved") or {}).get(sku) or {}, term_length,
                                               options.reserved_class, payment)
        if effective is not None:
            out.append(row(purchase, effective, f"AWS Price List, {options.reserved_class} RI, {payment}, "
                                                f"effective hourly (upfront spread over {term_length}), SKU {sku}"))
    return out


def _is_plain_linux(product: Mapping[str, Any]) -> bool:
    attrs = product.get("attributes") or {}
    family = str(product.get("productFamily", ""))
    return (family.startswith("Compute Instance")
            and attrs.get("operatingSystem") == "Linux"
            and attrs.get("tenancy") == "Shared"
            and attrs.get("preInstalledSw", "NA") == "NA"
            and attrs.get("capacitystatus", "Used") == "Used"
            and attrs.get("licenseModel", "No License required") == "No License required")


def _dimensions(offers: Mapping[str, Any]) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for offer in offers.values():
        for dimension in (offer.get("priceDimensions") or {}).values():
            yield offer, dimension


def _usd(dimension: Mapping[str, Any]) -> float:
    text = (dimension.get("pricePerUnit") or {}).get("USD")
    if text is None:
        raise ValueError("price dimension without a USD price")
    return float(text)


def _on_demand_hourly(offers: Mapping[str, Any]) -> float | None:
    for _, dimension in _dimensions(offers):
        if dimension.get("unit") == "Hrs":
            return _usd(dimension)
    return None


def _reserved_effective_hourly(offers: Mapping[str, Any], term_length: str, offering_class: str,
                               payment: str) -> float | None:
    """Hourly fee plus the upfront fee spread over the term, for the matching reserved offer."""
    for offer in offers.values():
        attrs = offer.get("termAttributes") or {}
        if (attrs.get("LeaseContractLength") != term_length or attrs.get("OfferingClass") != offering_class
                or attrs.get("PurchaseOption") != payment):
            continue
        hourly = upfront = 0.0
        for dimension in (offer.get("priceDimensions") or {}).values():
            if dimension.get("unit") == "Hrs":
                hourly += _usd(dimension)
            elif dimension.get("unit") == "Quantity":
                upfront += _usd(dimension)
        return hourly + upfront / HOURS_PER_TERM[term_length]
    return None
