"""Import prices from an AWS Price List offer file into the user's price file, keeping what it already held."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fleetwise.catalog.aws_price_list import ImportOptions, prices_from_offer, read_offer_file
from fleetwise.catalog.catalog import Catalog, read_price_file, write_price_csv
from fleetwise.catalog.schema import Price
from fleetwise.errors import FleetwiseError


def import_offer_file(offer_file: Path, catalog: Catalog, target: Path, options: ImportOptions) -> dict[str, Any]:
    """Read the offer file's prices for the catalog's instances, merge them into `target` (a price CSV), and say
    what was imported and which prices differ from the catalog's."""
    doc = read_offer_file(offer_file)
    options = replace(options, instance_types=tuple(catalog.instances))
    imported = prices_from_offer(doc, f"AWS Price List bulk file {offer_file.name}", options)
    if not imported:
        raise FleetwiseError(f"{offer_file}: no Linux shared-tenancy prices for the catalog's instances"
                             + (f" in {', '.join(options.regions)}" if options.regions else ""))
    existing: dict[tuple[str, str, str], Price] = {}
    if target.is_file():
        existing = {p.key: p for p in read_price_file(target)}
    changes: list[dict[str, Any]] = []
    for price in imported:
        before = catalog.prices.get(price.key)
        old = before.usd_per_hour if before else None
        if old != price.usd_per_hour:
            changes.append({"instance": price.instance_type, "region": price.region, "purchase": price.purchase,
                            "old_usd_per_hour": old, "new_usd_per_hour": price.usd_per_hour})
        existing[price.key] = price
    write_price_csv(existing.values(), target)
    return {"file": str(target), "imported": len(imported), "changed": changes,
            "publication_date": doc.get("publicationDate")}
