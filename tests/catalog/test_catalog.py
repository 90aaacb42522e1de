"""Tests for fleetwise.catalog.catalog: the bundled catalog, lookups, user overlays and the price CSV format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetwise.catalog import Catalog, load_catalog, user_prices_path, write_price_csv
from fleetwise.catalog.catalog import instance_summary, read_price_file
from fleetwise.catalog.schema import Price
from fleetwise.errors import DataFileError, FleetwiseError, UnknownNameError
from fleetwise.sourced import Sourced

REQUIRED_INSTANCES = {
    "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge", "trn1.2xlarge", "trn1.32xlarge",
    "trn1n.32xlarge", "trn2.48xlarge", "g5.xlarge", "g5.2xlarge", "g5.12xlarge", "g5.48xlarge", "g6.xlarge",
    "g6.12xlarge", "g6.48xlarge", "g6e.xlarge", "g6e.12xlarge", "g6e.48xlarge", "p4d.24xlarge", "p4de.24xlarge",
    "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge",
}
REQUIRED_CHIPS = {"inferentia2", "trainium1", "trainium2", "a10g", "l4", "l40s", "a100-40gb", "a100-80gb",
                  "h100-sxm", "h200"}
PRICE_HEADER = "instance_type,region,purchase,usd_per_hour,source,as_of,note\n"


def _price_csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(PRICE_HEADER + "".join(f"{row}\n" for row in rows))
    return path


# ---- the bundled catalog ------------------------------------------------------------------------------------


def test_bundled_catalog_holds_exactly_the_documented_instances_and_chips(catalog: Catalog) -> None:
    assert set(catalog.instances) == REQUIRED_INSTANCES
    assert set(catalog.chips) == REQUIRED_CHIPS


def test_every_bundled_figure_names_a_source_and_date_or_says_why_it_is_missing(catalog: Catalog) -> None:
    unsourced, checked = [], 0
    for record in [*catalog.chips.values(), *catalog.instances.values()]:
        for name, value in record:
            if not isinstance(value, Sourced):
                continue
            checked += 1
            if value.value is not None and not (value.source and value.as_of):
                unsourced.append(f"{record!r}.{name}")
            if value.value is None and not (value.note or "").strip():
                unsourced.append(f"{record!r}.{name} (missing, no note)")
    assert unsourced == []
    # each chip has 6 mandatory sourced figures and each instance 4: the walk saw at least those
    assert checked >= 6 * len(catalog.chips) + 4 * len(catalog.instances)
    unsourced_prices = [p.key for p in catalog.prices.values() if p.usd_per_hour is not None
                        and not (p.source and p.as_of)]
    assert unsourced_prices == []


def test_us_east_1_on_demand_prices_cover_every_instance_but_two_documented_gaps(catalog: Catalog) -> None:
    unpriced = {i for i in REQUIRED_INSTANCES if catalog.usd_per_hour(i, "us-east-1", "on-demand") is None}
    # trn2.48xlarge and p5e.48xlarge had no us-east-1 price in any source read; the data says so in a note.
    assert unpriced == {"trn2.48xlarge", "p5e.48xlarge"}
    missing = catalog.price("trn2.48xlarge", "us-east-1", "on-demand")
    assert missing is not None and missing.usd_per_hour is None and "not found" in (missing.note or "")


def test_a_price_not_in_the_catalog_is_none_rather_than_an_error(catalog: Catalog) -> None:
    assert catalog.price("g5.xlarge", "ap-south-1", "on-demand") is None
    assert catalog.usd_per_hour("g5.xlarge", "ap-south-1", "on-demand") is None


def test_default_price_lookup_is_us_east_1_on_demand(catalog: Catalog) -> None:
    assert catalog.usd_per_hour("g5.xlarge") == catalog.usd_per_hour("g5.xlarge", "us-east-1", "on-demand") == 1.006


# ---- lookups ------------------------------------------------------------------------------------------------


def test_instance_and_chip_lookups_ignore_case_and_surrounding_spaces(catalog: Catalog) -> None:
    assert catalog.instance(" G5.XLarge ").instance_type == "g5.xlarge"
    assert catalog.chip("H100-SXM").id == "h100-sxm"
    assert catalog.chip_of(catalog.instance("p5.48xlarge")).id == "h100-sxm"


def test_unknown_instance_and_chip_suggest_the_closest_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as instance_error:
        catalog.instance("inf2.96xlarge")
    assert "inf2.48xlarge" in instance_error.value.suggestions
    with pytest.raises(UnknownNameError) as chip_error:
        catalog.chip("inferentia3")
    assert chip_error.value.suggestions[0] == "inferentia2"


def test_select_by_family_by_type_or_everything(catalog: Catalog) -> None:
    assert {i.instance_type for i in catalog.select(families=["inf2"])} == {
        "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge"}
    assert [i.instance_type for i in catalog.select(families=["P5EN"], instance_types=["g5.xlarge"])] == [
        "g5.xlarge", "p5en.48xlarge"]  # catalog order, not the order asked
    assert len(catalog.select()) == len(REQUIRED_INSTANCES)


def test_select_refuses_an_unknown_family_or_instance(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="instance family 'inf9'"):
        catalog.select(families=["inf9"])
    with pytest.raises(UnknownNameError, match="instance type"):
        catalog.select(instance_types=["g7.xlarge"])


def test_families_keep_catalog_order(catalog: Catalog) -> None:
    assert catalog.families() == ["inf2", "trn1", "trn1n", "trn2", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e",
                                  "p5en"]


def test_regions_are_those_with_a_price_and_others_are_refused(catalog: Catalog) -> None:
    assert catalog.regions() == ["eu-west-1", "us-east-1", "us-west-2"]
    assert catalog.check_region("us-west-2") == "us-west-2"
    with pytest.raises(UnknownNameError) as excinfo:
        catalog.check_region("us-west-3")
    assert "us-west-2" in excinfo.value.suggestions
    with pytest.raises(UnknownNameError):
        catalog.check_region("mars-1")


def test_instance_summary_totals_the_accelerators_and_prices_one_accelerator_hour(catalog: Catalog) -> None:
    summary = instance_summary(catalog, catalog.instance("inf2.48xlarge"))
    assert summary["accelerator_count"] == 12
    assert summary["accelerator_memory_gib"] == 384.0
    assert summary["neuron_cores"] == 24  # 12 Inferentia2 chips x 2 NeuronCores
    assert summary["usd_per_accelerator_hour"] == pytest.approx(12.98127 / 12)
    gpu = instance_summary(catalog, catalog.instance("p5.48xlarge"), "us-east-1")
    assert gpu["neuron_cores"] is None and gpu["accelerator_memory_gib"] == 640.0


def test_instance_summary_of_an_unpriced_instance_has_no_accelerator_hour_price(catalog: Catalog) -> None:
    summary = instance_summary(catalog, catalog.instance("trn2.48xlarge"))
    assert summary["usd_per_hour"]["on-demand"] is None
    assert summary["usd_per_accelerator_hour"] is None


# ---- user files ---------------------------------------------------------------------------------------------


def test_user_file_overrides_one_field_and_adds_an_instance_with_its_price(tmp_path: Path) -> None:
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
    catalog = load_catalog([user], include_user_prices=False)
    assert catalog.instance("g5.xlarge").vcpus.value == 5
    assert catalog.instance("g5.xlarge").count == 1  # untouched fields survive the override
    assert catalog.instance("g5.xlarge").host_memory_gib.value == 16
    assert catalog.usd_per_hour("g5.4xlarge") == 1.5
    assert catalog.files[-1] == str(user)


def test_later_files_override_earlier_ones(tmp_path: Path) -> None:
    first = _price_csv(tmp_path, "g5.xlarge,us-east-1,on-demand,2.0,a,2026-11-25,")
    second = tmp_path / "second.csv"
    second.write_text(PRICE_HEADER + "g5.xlarge,us-east-1,on-demand,3.0,b,2026-11-26,\n")
    catalog = load_catalog([first, second], include_user_prices=False)
    assert catalog.usd_per_hour("g5.xlarge") == 3.0
    assert catalog.files[-2:] == (str(first), str(second))


@pytest.mark.parametrize(
    ("text", "entry", "field"),
    [
        ("instances:\n  - instance_type: g5.xlarge\n    vcpus: {value: lots, source: x}\n", "0 (g5.xlarge)",
         "vcpus.value"),
        ("chips:\n  - id: a10g\n    hbm_gb_per_s: {value: 600}\n", "0 (a10g)", "hbm_gb_per_s"),
        ("prices:\n  - {instance_type: g5.xlarge, region: us-east-1, purchase: weekly, usd_per_hour: 1,"
         " source: x, as_of: y}\n", "prices[0]", "purchase"),
        ("instances:\n  - family: g5\n", "0", "instance_type"),
        ("instances:\n  - instance_type: g5.xlarge\n    accelerator: tpu\n", "g5.xlarge", "accelerator"),
    ],
)
def test_bad_user_file_names_file_entry_and_field(tmp_path: Path, text: str, entry: str, field: str) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(DataFileError) as excinfo:
        load_catalog([user], include_user_prices=False)
    err = excinfo.value
    assert err.path == str(user)
    assert err.entry == entry
    assert err.field is not None and err.field.startswith(field)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("instances: [oops\n", "not valid YAML"),
        ("- g5.xlarge\n", "expected a mapping"),
        ("machines: []\n", "unknown top-level key(s) ['machines']"),
        ("chips: {id: a10g}\n", "expected a list"),
        ("chips:\n  - a10g\n", "expected a mapping"),
    ],
)
def test_malformed_yaml_catalog_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(DataFileError, match=re.escape(message)):
        load_catalog([user], include_user_prices=False)


def test_an_empty_yaml_file_changes_nothing(tmp_path: Path, catalog: Catalog) -> None:
    user = tmp_path / "empty.yaml"
    user.write_text("# nothing yet\n")
    assert load_catalog([user], include_user_prices=False).prices == catalog.prices


def test_a_price_for_an_instance_the_catalog_lacks_is_refused(tmp_path: Path) -> None:
    user = _price_csv(tmp_path, "g7.xlarge,us-east-1,on-demand,1.0,me,2026-11-25,")
    with pytest.raises(FleetwiseError, match=r"unknown instance type 'g7\.xlarge'"):
        load_catalog([user], include_user_prices=False)


def test_a_yaml_price_names_its_instance_case_insensitively_like_the_instance_entries(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text(
        """
instances:
  - instance_type: G5.4xlarge
    family: g5
    accelerator: a10g
    accelerator_count: {value: 1, source: "my-test", as_of: "2026-11-25"}
    vcpus: {value: 16, source: "my-test", as_of: "2026-11-25"}
    host_memory_gib: {value: 64, source: "my-test", as_of: "2026-11-25"}
    network_gbps: {value: 25, source: "my-test", as_of: "2026-11-25"}
prices:
  - {instance_type: G5.4xlarge, region: us-east-1, purchase: on-demand, usd_per_hour: 1.5, source: my-test,
     as_of: "2026-11-25"}
""")
    assert load_catalog([user], include_user_prices=False).usd_per_hour("g5.4xlarge") == 1.5


def test_a_directory_is_not_a_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="is a directory"):
        load_catalog([tmp_path], include_user_prices=False)


# ---- the price CSV format -----------------------------------------------------------------------------------


@pytest.mark.parametrize("purchase", ["on-demand", "spot", "reserved-1y", "reserved-3y", "savings-plan-1y",
                                      "savings-plan-3y"])
def test_a_price_csv_accepts_every_documented_purchase_option(tmp_path: Path, purchase: str) -> None:
    user = _price_csv(tmp_path, f"G5.xlarge,eu-west-1,{purchase},0.5,me,2026-11-25,")
    assert load_catalog([user], include_user_prices=False).usd_per_hour("g5.xlarge", "eu-west-1", purchase) == 0.5


def test_a_price_csv_with_an_unknown_purchase_option_names_the_line(tmp_path: Path) -> None:
    user = _price_csv(tmp_path, "g5.xlarge,us-east-1,on-demand,1,me,2026-11-25,",
                      "g5.xlarge,us-east-1,weekly,1,me,2026-11-25,")
    with pytest.raises(DataFileError, match="weekly") as excinfo:
        load_catalog([user], include_user_prices=False)
    assert excinfo.value.entry is not None and excinfo.value.entry.startswith("line 3")
    assert excinfo.value.field == "purchase"


def test_a_price_csv_with_a_bad_number_is_reported_by_line(tmp_path: Path) -> None:
    user = _price_csv(tmp_path, "g5.xlarge,us-east-1,spot,cheap,me,2026-11-25,")
    with pytest.raises(DataFileError) as excinfo:
        load_catalog([user], include_user_prices=False)
    assert "line 2" in str(excinfo.value) and "usd_per_hour" in str(excinfo.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_non_finite_or_negative_prices_are_rejected(tmp_path: Path, value: str) -> None:
    user = _price_csv(tmp_path, f"g5.xlarge,us-east-1,spot,{value},me,2026-11-25,")
    with pytest.raises(DataFileError, match="usd_per_hour"):
        load_catalog([user], include_user_prices=False)


def test_a_price_csv_missing_a_required_column_says_which(tmp_path: Path) -> None:
    user = tmp_path / "prices.csv"
    user.write_text("instance_type,region,usd_per_hour\ng5.xlarge,us-east-1,1\n")
    with pytest.raises(DataFileError, match=r"lacks column\(s\) \['purchase'\]"):
        load_catalog([user], include_user_prices=False)


def test_an_empty_price_is_a_missing_price_that_needs_a_note(tmp_path: Path) -> None:
    noted = _price_csv(tmp_path, "g5.xlarge,us-east-1,spot,,me,2026-11-25,not listed today")
    price = load_catalog([noted], include_user_prices=False).price("g5.xlarge", "us-east-1", "spot")
    assert price is not None and price.usd_per_hour is None and price.note == "not listed today"
    bare = _price_csv(tmp_path, "g5.xlarge,us-east-1,spot,,me,2026-11-25,")
    with pytest.raises(DataFileError, match="needs a note"):
        load_catalog([bare], include_user_prices=False)


def test_written_price_csv_reads_back_sorted_and_identical(tmp_path: Path) -> None:
    prices = [
        Price(instance_type="p5.48xlarge", region="us-east-1", purchase="spot", usd_per_hour=0.1 + 0.2,
              source="me", as_of="2026-11-25", note="a, quoted note"),
        Price(instance_type="g5.xlarge", region="us-east-1", purchase="on-demand", usd_per_hour=None,
              source=None, as_of=None, note="not found"),
    ]
    out = tmp_path / "nested" / "prices.csv"
    write_price_csv(prices, out)
    assert read_price_file(out) == sorted(prices, key=lambda p: p.key)  # 0.30000000000000004 survives exactly
    assert out.read_text().splitlines()[0] == PRICE_HEADER.strip()


# ---- the user's imported prices -----------------------------------------------------------------------------


def test_user_prices_live_in_fleetwise_home(isolated_home: Path) -> None:
    assert user_prices_path() == isolated_home / "prices.csv"


def test_imported_user_prices_are_read_unless_excluded(isolated_home: Path) -> None:
    isolated_home.mkdir()
    (isolated_home / "prices.csv").write_text(PRICE_HEADER + "g5.xlarge,us-east-1,on-demand,0.5,me,2026-11-25,\n")
    assert load_catalog().usd_per_hour("g5.xlarge") == 0.5
    assert load_catalog(include_user_prices=False).usd_per_hour("g5.xlarge") == 1.006
