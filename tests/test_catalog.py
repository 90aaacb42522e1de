"""The bundled catalog loads, every figure carries provenance, and user files extend or override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetwise.catalog import PURCHASE_OPTIONS, load_catalog
from fleetwise.errors import DataFileError, UnknownNameError

REQUIRED_INSTANCES = {
    "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge", "trn1.2xlarge", "trn1.32xlarge",
    "trn1n.32xlarge", "trn2.48xlarge", "g5.xlarge", "g5.2xlarge", "g5.12xlarge", "g5.48xlarge", "g6.xlarge",
    "g6.12xlarge", "g6.48xlarge", "g6e.xlarge", "g6e.12xlarge", "g6e.48xlarge", "p4d.24xlarge", "p4de.24xlarge",
    "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge",
}
REQUIRED_CHIPS = {"inferentia2", "trainium1", "trainium2", "a10g", "l4", "l40s", "a100-40gb", "a100-80gb",
                  "h100-sxm", "h200"}


def test_bundled_catalog_has_every_required_instance_and_chip() -> None:
    catalog = load_catalog()
    assert set(catalog.instances) >= REQUIRED_INSTANCES
    assert set(catalog.chips) >= REQUIRED_CHIPS


def test_every_known_figure_names_a_source_and_date() -> None:
    catalog = load_catalog()
    records = [*catalog.chips.values(), *catalog.instances.values()]
    checked = 0
    for record in records:
        for name, value in record:
            if hasattr(value, "source") and hasattr(value, "value"):
                if value.value is not None:
                    assert value.source, f"{name} of {record} has no source"
                    assert value.as_of, f"{name} of {record} has no as_of"
                    checked += 1
                else:
                    assert value.note and value.note.strip(), f"missing {name} has no note"
    assert checked > 200
    for price in catalog.prices.values():
        if price.usd_per_hour is not None:
            assert price.source and price.as_of


def test_us_east_1_on_demand_prices_cover_the_common_instances() -> None:
    catalog = load_catalog()
    priced = {i for i in REQUIRED_INSTANCES if catalog.usd_per_hour(i, "us-east-1", "on-demand") is not None}
    # trn2.48xlarge and p5e.48xlarge had no us-east-1 price in any source read; the data says so in a note.
    assert REQUIRED_INSTANCES - priced <= {"trn2.48xlarge", "p5e.48xlarge"}
    missing = catalog.price("trn2.48xlarge", "us-east-1", "on-demand")
    assert missing is not None and missing.usd_per_hour is None and "not found" in (missing.note or "")


def test_family_filter_and_unknown_names() -> None:
    catalog = load_catalog()
    assert {i.instance_type for i in catalog.select(families=["inf2"])} == {
        "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge"}
    with pytest.raises(UnknownNameError) as excinfo:
        catalog.instance("inf2.96xlarge")
    assert "inf2.48xlarge" in excinfo.value.suggestions
    with pytest.raises(UnknownNameError):
        catalog.select(families=["inf9"])


def test_user_file_overrides_one_field_and_adds_an_instance(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text(
        """
instances:
  - instance_type: g5.xlarge
    vcpus: {value: 5, source: "my-test", as_of: "2026-11-25"}
  - instance_type: g5.4xlarge
    family: g5
    accelerator: a10g
    accelerator_count: {value: 1, source: "my-test", as_of: "2026-11-25"}
    vcpus: {value: 16, source: "my-test", as_of: "2026-11-25"}
    host_memory_gib: {value: 64, source: "my-test", as_of: "2026-11-25"}
    network_gbps: {value: 25, source: "my-test", as_of: "2026-11-25"}
prices:
  - {instance_type: g5.4xlarge, region: us-east-1, purchase: on-demand, usd_per_hour: 1.5, source: my-test,
     as_of: "2026-11-25"}
""")
    catalog = load_catalog([user])
    assert catalog.instance("g5.xlarge").vcpus.value == 5
    assert catalog.instance("g5.xlarge").count == 1  # untouched fields survive the override
    assert catalog.usd_per_hour("g5.4xlarge") == 1.5
    assert str(user) in catalog.files


@pytest.mark.parametrize(
    ("text", "entry", "field"),
    [
        ("instances:\n  - instance_type: g5.xlarge\n    vcpus: {value: lots, source: x}\n", "0 (g5.xlarge)",
         "vcpus.value"),
        ("chips:\n  - id: a10g\n    hbm_gb_per_s: {value: 600}\n", "0 (a10g)", "hbm_gb_per_s"),
        ("prices:\n  - {instance_type: g5.xlarge, region: us-east-1, purchase: weekly, usd_per_hour: 1,"
         " source: x, as_of: y}\n", "prices[0]", "purchase"),
    ],
)
def test_bad_user_file_names_file_entry_and_field(tmp_path: Path, text: str, entry: str, field: str) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(DataFileError) as excinfo:
        load_catalog([user])
    err = excinfo.value
    assert err.path == str(user)
    assert err.entry == entry
    assert err.field is not None and err.field.startswith(field)


def test_price_csv_with_a_bad_number_is_reported_by_line(tmp_path: Path) -> None:
    user = tmp_path / "prices.csv"
    user.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                    "g5.xlarge,us-east-1,spot,cheap,me,2026-11-25,\n")
    with pytest.raises(DataFileError) as excinfo:
        load_catalog([user])
    assert "line 2" in str(excinfo.value) and "usd_per_hour" in str(excinfo.value)


def test_purchase_options_are_the_documented_set() -> None:
    assert set(PURCHASE_OPTIONS) == {"on-demand", "spot", "reserved-1y", "reserved-3y", "savings-plan-1y",
                                     "savings-plan-3y"}


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_non_finite_or_negative_prices_are_rejected(tmp_path: Path, value: str) -> None:
    user = tmp_path / "prices.csv"
    user.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                    f"g5.xlarge,us-east-1,spot,{value},me,2026-11-25,\n")
    with pytest.raises(DataFileError, match="usd_per_hour"):
        load_catalog([user])


def test_a_directory_is_not_a_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="is a directory"):
        load_catalog([tmp_path])
