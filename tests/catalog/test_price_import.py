"""Tests for fleetwise.catalog.price_import: an offer file merged into the user's price file, with what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetwise.catalog import Catalog, load_catalog, user_prices_path
from fleetwise.catalog.aws_price_list import ImportOptions
from fleetwise.catalog.catalog import read_price_file
from fleetwise.catalog.price_import import import_offer_file
from fleetwise.errors import FleetwiseError
from tests.catalog.offer_files import offer_document, on_demand, product


def _offer_file(tmp_path: Path, doc: dict[str, object] | None = None) -> Path:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(doc if doc is not None else offer_document()))
    return path


def test_import_writes_the_user_price_file_that_every_later_catalog_reads(tmp_path: Path, catalog: Catalog) -> None:
    summary = import_offer_file(_offer_file(tmp_path), catalog, user_prices_path(), ImportOptions())
    assert summary["file"] == str(user_prices_path())
    assert summary["imported"] == 3
    assert summary["publication_date"] == "2026-11-01T00:00:00Z"
    reloaded = load_catalog()
    assert reloaded.usd_per_hour("inf2.xlarge", "us-east-1", "on-demand") == pytest.approx(0.9)
    assert reloaded.usd_per_hour("inf2.xlarge", "us-east-1", "reserved-1y") == pytest.approx(0.5)


def test_import_reports_each_price_that_differs_from_the_catalog(tmp_path: Path, catalog: Catalog) -> None:
    summary = import_offer_file(_offer_file(tmp_path), catalog, tmp_path / "prices.csv", ImportOptions())
    changes = {c["purchase"]: (c["old_usd_per_hour"], c["new_usd_per_hour"]) for c in summary["changed"]}
    assert changes["on-demand"] == (catalog.usd_per_hour("inf2.xlarge"), pytest.approx(0.9))
    assert set(changes) == {"on-demand", "reserved-1y", "reserved-3y"}


def test_an_unchanged_price_is_not_reported(tmp_path: Path, catalog: Catalog) -> None:
    doc = offer_document()
    doc["terms"]["OnDemand"]["SKU1"] = on_demand("SKU1", repr(catalog.usd_per_hour("inf2.xlarge")))
    summary = import_offer_file(_offer_file(tmp_path, doc), catalog, tmp_path / "prices.csv", ImportOptions())
    assert "on-demand" not in {c["purchase"] for c in summary["changed"]}


def test_import_keeps_the_rows_the_price_file_already_held(tmp_path: Path, catalog: Catalog) -> None:
    target = tmp_path / "prices.csv"
    target.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                      "g5.xlarge,us-east-1,spot,0.4,me,2026-10-01,\n"
                      "inf2.xlarge,us-east-1,on-demand,0.7,me,2026-10-01,\n")
    import_offer_file(_offer_file(tmp_path), catalog, target, ImportOptions())
    rows = {p.key: p.usd_per_hour for p in read_price_file(target)}
    assert rows[("g5.xlarge", "us-east-1", "spot")] == 0.4  # kept
    assert rows[("inf2.xlarge", "us-east-1", "on-demand")] == pytest.approx(0.9)  # replaced by the import
    assert len(rows) == 4


def test_only_instance_types_in_the_catalog_are_imported(tmp_path: Path, catalog: Catalog) -> None:
    doc = offer_document()
    doc["products"]["SKU9"] = product("SKU9", "m7i.large")
    doc["terms"]["OnDemand"]["SKU9"] = on_demand("SKU9", "0.1")
    target = tmp_path / "prices.csv"
    summary = import_offer_file(_offer_file(tmp_path, doc), catalog, target, ImportOptions())
    assert summary["imported"] == 3
    assert {p.instance_type for p in read_price_file(target)} == {"inf2.xlarge"}


def test_an_offer_with_nothing_for_the_catalog_is_an_error_naming_the_regions(tmp_path: Path,
                                                                               catalog: Catalog) -> None:
    target = tmp_path / "prices.csv"
    with pytest.raises(FleetwiseError, match=r"no Linux shared-tenancy prices .* in eu-west-1"):
        import_offer_file(_offer_file(tmp_path), catalog, target, ImportOptions(regions=("eu-west-1",)))
    assert not target.exists()
