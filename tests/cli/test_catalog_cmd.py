"""`fleetwise catalog` (list, show, chips, import-prices): the catalog's own figures, overlays and user prices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.catalog import Catalog, load_catalog
from fleetwise.catalog.catalog import instance_summary

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]


def _sourced(record: Any) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in record if hasattr(value, "source") and hasattr(value, "value")]


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_list_json_is_the_catalogs_summary_of_the_family(run: Run, catalog: Catalog,
                                                         as_printed: Callable[[Any], Any], region: str) -> None:
    payload = run("catalog", "--family", "inf2", "--region", region, "--json").json()
    expected = [instance_summary(catalog, i, region) for i in catalog.select(["inf2"], [])]
    assert payload["region"] == region
    assert payload["instances"] == as_printed(expected)
    assert {r["family"] for r in payload["instances"]} == {"inf2"}
    assert payload["files"] == list(catalog.files)


def test_price_per_accelerator_hour_is_the_instance_price_over_its_accelerators(run: Run) -> None:
    rows = run("catalog", "--family", "inf2", "--family", "p5", "--json").json()["instances"]
    priced = [r for r in rows if r["usd_per_hour"]["on-demand"] is not None]
    assert any(r["accelerator_count"] > 1 for r in priced)
    for r in priced:
        assert r["usd_per_accelerator_hour"] == pytest.approx(r["usd_per_hour"]["on-demand"] / r["accelerator_count"],
                                                              rel=1e-3)


def test_list_table_shows_each_selected_instance_and_its_prices(run: Run, catalog: Catalog) -> None:
    shown = run("catalog", "--family", "inf2", "--instance", "p5.48xlarge").ok()
    expected = [instance_summary(catalog, i) for i in catalog.select(["inf2"], ["p5.48xlarge"])]
    rows = shown.table_rows()  # instance, accelerator, acc. GiB, vCPU, host GiB, on-demand, spot, RI 1y, RI 3y, …
    assert [row[0] for row in rows] == [r["instance"] for r in expected]
    for row, r in zip(rows, expected, strict=True):
        for cell, purchase in zip(row[5:9], ("on-demand", "spot", "reserved-1y", "reserved-3y"), strict=True):
            price = r["usd_per_hour"][purchase]
            assert cell == ("n/a" if price is None else f"{price:,.3f}"), (r["instance"], purchase)
    assert "us-east-1" in shown.out


def test_show_json_gives_every_figure_with_its_source(run: Run, catalog: Catalog,
                                                      as_printed: Callable[[Any], Any]) -> None:
    payload = run("catalog", "show", "p5.48xlarge", "--json").json()
    instance = catalog.instance("p5.48xlarge")
    chip = catalog.chip_of(instance)
    assert payload["instance"] == as_printed(instance.model_dump())
    assert payload["chip"] == as_printed(chip.model_dump())
    assert payload["chip"]["id"] == chip.id
    assert {(p["purchase"], p["region"]) for p in payload["prices"]} == {
        (p.purchase, p.region) for p in catalog.prices.values() if p.instance_type == "p5.48xlarge"}
    sourced = [name for name, value in _sourced(instance) if value.value is not None]
    assert sourced and all(payload["instance"][name]["source"] for name in sourced)


def test_show_table_lists_each_sourced_field_and_price(run: Run, catalog: Catalog) -> None:
    rows = run("catalog", "show", "inf2.xlarge").ok().table_rows()  # field, value, source, as of, note
    instance = catalog.instance("inf2.xlarge")
    values = {row[0]: row[1] for row in rows}
    for name, figure in _sourced(instance) + _sourced(catalog.chip_of(instance)):
        assert values[name] == ("not found" if figure.value is None else str(figure.value)), name
    for price in (p for p in catalog.prices.values() if p.instance_type == "inf2.xlarge"):
        assert f"{price.purchase} ({price.region})" in values


def test_chips_lists_every_chip_in_the_catalog(run: Run, catalog: Catalog) -> None:
    assert [c["id"] for c in run("catalog", "chips", "--json").json()["chips"]] == list(catalog.chips)
    assert [row[0] for row in run("catalog", "chips").ok().table_rows()] == list(catalog.chips)


@pytest.mark.parametrize("sub", [("show", "p5.48xlarge"), ("chips",)], ids=["show", "chips"])
def test_json_on_the_group_applies_to_its_subcommand(run: Run, sub: tuple[str, ...]) -> None:
    assert run("catalog", "--json", *sub).json()


def _price_csv(tmp_path: Path, usd: float) -> Path:
    override = tmp_path / "prices.csv"
    override.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                        f"g5.xlarge,us-east-1,on-demand,{usd},my negotiated rate,2026-11-25,\n")
    return override


def test_user_catalog_file_overrides_a_price(run: Run, catalog: Catalog, tmp_path: Path) -> None:
    usd = round(catalog.usd_per_hour("g5.xlarge", "us-east-1", "on-demand") / 2, 4)
    override = _price_csv(tmp_path, usd)
    payload = run("catalog", "--instance", "g5.xlarge", "--catalog", override, "--json").json()
    assert payload["instances"][0]["usd_per_hour"]["on-demand"] == usd
    assert str(override) in payload["files"]


def test_catalog_file_before_a_subcommand_applies_to_it(run: Run, catalog: Catalog, tmp_path: Path) -> None:
    usd = round(catalog.usd_per_hour("g5.xlarge", "us-east-1", "on-demand") / 2, 4)
    payload = run("catalog", "--catalog", _price_csv(tmp_path, usd), "show", "g5.xlarge", "--json").json()
    on_demand = [p for p in payload["prices"] if (p["purchase"], p["region"]) == ("on-demand", "us-east-1")]
    assert [p["usd_per_hour"] for p in on_demand] == [usd]


def test_bad_catalog_file_is_reported_with_file_entry_and_field(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("instances:\n  - instance_type: g5.xlarge\n    vcpus: {value: many, source: me}\n")
    run("catalog", "--catalog", bad).user_error(str(bad), "g5.xlarge", "vcpus")


def test_import_prices_writes_the_user_price_file_that_every_command_reads(
        run: Run, catalog: Catalog, isolated_home: Path, offer_file: Path, offer_prices: dict[str, float]) -> None:
    summary = run("catalog", "import-prices", offer_file, "--json").json()
    assert summary["imported"] == len(offer_prices)
    assert summary["file"] == str(isolated_home / "prices.csv") and (isolated_home / "prices.csv").is_file()
    assert summary["changed"]
    for change in summary["changed"]:
        assert change["old_usd_per_hour"] == catalog.usd_per_hour(change["instance"], change["region"],
                                                                  change["purchase"])
        assert change["new_usd_per_hour"] == pytest.approx(offer_prices[change["purchase"]])
    assert load_catalog().usd_per_hour("inf2.xlarge", "us-east-1", "on-demand") == pytest.approx(
        offer_prices["on-demand"])
    listed = run("catalog", "--instance", "inf2.xlarge", "--json").json()["instances"][0]["usd_per_hour"]
    for purchase, usd in offer_prices.items():
        assert listed[purchase] == pytest.approx(usd)
    assert listed["spot"] == catalog.usd_per_hour("inf2.xlarge", "us-east-1", "spot")  # not in the offer: kept
    fit = run("fit", "meta-llama/Llama-3.1-8B-Instruct", "--instance", "inf2.xlarge", "--json").json()["results"]
    assert fit and all(r["usd_per_hour"] == pytest.approx(offer_prices["on-demand"]) for r in fit)


def test_import_prices_table_says_what_changed(run: Run, tmp_path: Path, offer_file: Path,
                                               offer_prices: dict[str, float]) -> None:
    target = tmp_path / "mine.csv"
    shown = run("catalog", "import-prices", offer_file, "-o", target).ok()
    assert f"Imported {len(offer_prices)} prices" in shown.out and str(target) in shown.out
    changed = shown.table_rows()  # instance, region, purchase, was, now
    assert changed and {row[2] for row in changed} <= set(offer_prices)
    assert target.is_file()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--family", "p9"), ("unknown instance family 'p9'",)),
        (("--instance", "p5.99xlarge"), ("p5.99xlarge", "closest: p5.48xlarge")),
        (("--region", "mars-1"), ("unknown region", "mars-1")),
        (("--catalog", "/no/such/catalog.yaml"), ("/no/such/catalog.yaml",)),
        (("show", "inf3.xlarge"), ("inf3.xlarge", "closest: inf2.xlarge")),
        (("import-prices", "/no/such/index.json"), ("/no/such/index.json",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_user_mistakes_exit_2_with_one_line_naming_them(run: Run, args: tuple[str, ...],
                                                         expected: tuple[str, ...]) -> None:
    run("catalog", *args).user_error(*expected)


def test_catalog_folder_instead_of_file_is_one_line(run: Run, tmp_path: Path) -> None:
    run("catalog", "--catalog", tmp_path).user_error(str(tmp_path), "directory")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--region", "eu-west-1"), ("no Linux shared-tenancy prices", "eu-west-1")),
        (("--reserved-payment", "lots"), ("--reserved-payment", "lots")),
        (("--reserved-class", "cheap"), ("--reserved-class", "cheap")),
    ],
    ids=["region-not-in-file", "payment", "class"],
)
def test_import_prices_refuses_bad_options_in_one_line(run: Run, offer_file: Path, options: tuple[str, ...],
                                                       expected: tuple[str, ...]) -> None:
    run("catalog", "import-prices", offer_file, *options).user_error(*expected)


def test_import_prices_refuses_a_file_that_is_not_an_offer(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "index.json"
    bad.write_text("instance,price\n")
    run("catalog", "import-prices", bad).user_error(str(bad), "JSON")


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_import_prices_output_that_cannot_be_written_is_one_line(run: Run, tmp_path: Path, offer_file: Path,
                                                                 where: str) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path if where == "a folder" else tmp_path / "afile" / "prices.csv"
    run("catalog", "import-prices", offer_file, "-o", target).user_error(str(target))
