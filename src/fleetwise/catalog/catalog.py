"""Load the bundled hardware catalog, overlay user files, and answer lookups by instance, chip and price."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from fleetwise.catalog.schema import PURCHASE_OPTIONS, Chip, Instance, Price
from fleetwise.datafiles import parse_yaml, read_text_file, validate_record
from fleetwise.errors import DataFileError, FleetwiseError, UnknownNameError

PRICE_COLUMNS = ("instance_type", "region", "purchase", "usd_per_hour", "source", "as_of", "note")
DEFAULT_REGION = "us-east-1"


def fleetwise_home() -> Path:
    """Folder for user state (imported prices): $FLEETWISE_HOME, else ~/.fleetwise."""
    return Path(os.environ.get("FLEETWISE_HOME") or Path.home() / ".fleetwise")


def user_prices_path() -> Path:
    """Where `catalog import-prices` writes by default, and which every command then reads."""
    return fleetwise_home() / "prices.csv"


@dataclass(frozen=True)
class Catalog:
    """Chips, instances and prices, after every overlay has been applied."""

    chips: Mapping[str, Chip]
    instances: Mapping[str, Instance]
    prices: Mapping[tuple[str, str, str], Price]
    files: tuple[str, ...] = field(default=())  # every file read, in order

    def instance(self, instance_type: str) -> Instance:
        """The instance of that type, or an error naming the closest types."""
        found = self.instances.get(instance_type.strip().lower())
        if found is None:
            raise UnknownNameError("instance type", instance_type, self.instances)
        return found

    def chip(self, chip_id: str) -> Chip:
        """The chip with that id, or an error naming the closest ids."""
        found = self.chips.get(chip_id.strip().lower())
        if found is None:
            raise UnknownNameError("chip", chip_id, self.chips)
        return found

    def chip_of(self, instance: Instance) -> Chip:
        """The accelerator chip an instance carries."""
        return self.chips[instance.accelerator]

    def price(self, instance_type: str, region: str = DEFAULT_REGION, purchase: str = "on-demand") -> Price | None:
        """The price row for that instance, region and purchase option, if the catalog has one."""
        return self.prices.get((instance_type, region, purchase))

    def usd_per_hour(self, instance_type: str, region: str = DEFAULT_REGION,
                     purchase: str = "on-demand") -> float | None:
        """The hourly price in USD, or None when not found."""
        row = self.price(instance_type, region, purchase)
        return None if row is None else row.usd_per_hour

    def regions(self) -> list[str]:
        """Regions that have at least one price."""
        return sorted({region for _, region, _ in self.prices})

    def check_region(self, region: str) -> str:
        """The region if the catalog prices anything there, else an error naming the closest regions."""
        if region not in self.regions():
            raise UnknownNameError("region (no prices in the catalog)", region, self.regions())
        return region

    def families(self) -> list[str]:
        """Instance families in catalog order."""
        return list(dict.fromkeys(i.family for i in self.instances.values()))

    def select(self, families: Iterable[str] = (), instance_types: Iterable[str] = ()) -> list[Instance]:
        """Instances whose family or type is named (all when both are empty); unknown names are errors."""
        wanted_families = {f.strip().lower() for f in families if f.strip()}
        wanted_types = [self.instance(t).instance_type for t in instance_types if t.strip()]
        known_families = set(self.families())
        for family in wanted_families:
            if family not in known_families:
                raise UnknownNameError("instance family", family, known_families)
        if not wanted_families and not wanted_types:
            return list(self.instances.values())
        return [i for i in self.instances.values()
                if i.family in wanted_families or i.instance_type in wanted_types]


def load_catalog(extra_files: Sequence[str | Path] = (), include_user_prices: bool = True) -> Catalog:
    """The bundled catalog, then ~/.fleetwise/prices.csv if present, then each of `extra_files` in order."""
    builder = _CatalogBuilder()
    data = resources.files("fleetwise.catalog") / "data"
    for name in ("chips.yaml", "instances.yaml", "prices.csv"):
        builder.add_text((data / name).read_text(encoding="utf-8"), f"fleetwise/catalog/data/{name}")
    user = user_prices_path()
    if include_user_prices and user.is_file():
        builder.add_file(user)
    for path in extra_files:
        builder.add_file(Path(path))
    return builder.build()


class _CatalogBuilder:
    """Accumulates raw entries from several files; later entries override earlier ones field by field."""

    def __init__(self) -> None:
        self.chips: dict[str, tuple[dict[str, Any], str, Chip]] = {}
        self.instances: dict[str, tuple[dict[str, Any], str, Instance]] = {}
        self.prices: dict[tuple[str, str, str], Price] = {}
        self.files: list[str] = []

    def add_file(self, path: Path) -> None:
        self.add_text(read_text_file(path), str(path))

    def add_text(self, text: str, name: str) -> None:
        self.files.append(name)
        if name.lower().endswith(".csv"):
            self._add_prices(_read_price_csv(text, name), name)
            return
        try:
            doc = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise DataFileError(name, f"not valid YAML: {exc}") from None
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise DataFileError(name, "expected a mapping with 'chips', 'instances' and/or 'prices' lists")
        unknown = set(doc) - {"chips", "instances", "prices", "as_of", "note", "sources"}
        if unknown:
            raise DataFileError(name, f"unknown top-level key(s) {sorted(unknown)}; expected chips, instances, prices")
        for entry, index in _entries(doc, "chips", name):
            self._merge(self.chips, Chip, entry, "id", index, name)
        for entry, index in _entries(doc, "instances", name):
            self._merge(self.instances, Instance, entry, "instance_type", index, name)
        self._add_prices([(e, f"prices[{i}]") for e, i in _entries(doc, "prices", name)], name)

    def _merge(self, table: dict[str, Any], model: type[BaseModel], entry: dict[str, Any], key: str,
               index: int, name: str) -> None:
        ident = str(entry.get(key, "")).strip().lower()
        label = f"{index} ({ident})" if ident else str(index)
        if not ident:
            raise DataFileError(name, "missing required field", entry=label, field=key)
        merged = {**table[ident][0], **entry} if ident in table else dict(entry)
        merged[key] = ident
        table[ident] = (merged, name, validate_record(model, merged, name, label))

    def _add_prices(self, rows: list[tuple[dict[str, Any], str]], name: str) -> None:
        for row, label in rows:
            if isinstance(row.get("instance_type"), str):  # instance types are case-insensitive everywhere
                row = {**row, "instance_type": row["instance_type"].strip().lower()}
            price = validate_record(Price, row, name, label)
            self.prices[price.key] = price

    def build(self) -> Catalog:
        chips = {k: v[2] for k, v in self.chips.items()}
        instances = {k: v[2] for k, v in self.instances.items()}
        for ident, (_, name, instance) in self.instances.items():
            assert isinstance(instance, Instance)
            if instance.accelerator not in chips:
                known = ", ".join(sorted(chips))
                raise DataFileError(name, f"unknown chip {instance.accelerator!r} (known: {known})",
                                    entry=ident, field="accelerator")
        for (instance_type, _, _), price in self.prices.items():
            if instance_type not in instances:
                raise FleetwiseError(f"price for unknown instance type {instance_type!r} "
                                     f"(source {price.source}); add the instance to the catalog first")
        return Catalog(chips=chips, instances=instances, prices=dict(self.prices),
                       files=tuple(self.files))


def _entries(doc: dict[str, Any], key: str, name: str) -> list[tuple[dict[str, Any], int]]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise DataFileError(name, "expected a list", field=key)
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataFileError(name, "expected a mapping", entry=f"{key}[{index}]")
        out.append((item, index))
    return out


def _read_price_csv(text: str, name: str) -> list[tuple[dict[str, Any], str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("instance_type", "region", "purchase", "usd_per_hour") if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(name, f"price CSV lacks column(s) {missing}; expected {', '.join(PRICE_COLUMNS)}")
    rows = []
    for line, row in enumerate(reader, start=2):
        label = f"line {line} ({row.get('instance_type')} {row.get('region')} {row.get('purchase')})"
        value = (row.get("usd_per_hour") or "").strip()
        try:
            price = float(value) if value else None
        except ValueError:
            raise DataFileError(name, f"not a number: {value!r}", entry=label, field="usd_per_hour") from None
        if row.get("purchase") not in PURCHASE_OPTIONS:
            raise DataFileError(name, f"{row.get('purchase')!r} is not one of {', '.join(PURCHASE_OPTIONS)}",
                                entry=label, field="purchase")
        rows.append(({
            "instance_type": (row.get("instance_type") or "").strip().lower(),
            "region": (row.get("region") or "").strip(),
            "purchase": row.get("purchase"),
            "usd_per_hour": price,
            "source": (row.get("source") or "").strip() or None,
            "as_of": (row.get("as_of") or "").strip() or None,
            "note": (row.get("note") or "").strip() or None,
        }, label))
    return rows


def read_price_file(path: Path) -> list[Price]:
    """The validated rows of one price CSV file."""
    builder = _CatalogBuilder()
    builder.add_file(path)
    return list(builder.prices.values())


def write_price_csv(prices: Iterable[Price], path: Path) -> None:
    """Write price rows in the catalog's CSV format (sorted, so diffs stay readable)."""
    rows = sorted(prices, key=lambda p: p.key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise FleetwiseError(f"cannot write prices to {path}: {exc.strerror or exc}") from None
    with handle:
        writer = csv.writer(handle)
        writer.writerow(PRICE_COLUMNS)
        for p in rows:
            writer.writerow([p.instance_type, p.region, p.purchase,
                             "" if p.usd_per_hour is None else repr(p.usd_per_hour), p.source or "",
                             p.as_of or "", p.note or ""])


def instance_summary(catalog: Catalog, instance: Instance, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """One instance as a flat dict with its prices in `region` (None where not found)."""
    chip = catalog.chip_of(instance)
    prices = {purchase: catalog.usd_per_hour(instance.instance_type, region, purchase)
              for purchase in ("on-demand", "spot", "reserved-1y", "reserved-3y")}
    on_demand = prices["on-demand"]
    return {
        "instance": instance.instance_type,
        "family": instance.family,
        "accelerator": chip.id,
        "accelerator_name": chip.name,
        "accelerator_count": instance.count,
        "accelerator_memory_gib": round(instance.memory_gib_per_accelerator(chip) * instance.count, 3),
        "neuron_cores": (chip.neuron_cores.value or 0) * instance.count if chip.neuron_cores else None,
        "vcpus": instance.vcpus.value,
        "host_memory_gib": instance.host_memory_gib.value,
        "network_gbps": instance.network_gbps.value,
        "interconnect": instance.interconnect_name.value if instance.interconnect_name else None,
        "region": region,
        "usd_per_hour": prices,
        "usd_per_accelerator_hour": None if on_demand is None else on_demand / instance.count,
    }
