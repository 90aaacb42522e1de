"""Hardware catalog: accelerator chips, EC2 instances and their prices, loaded from sourced data files."""

from fleetwise.catalog.catalog import DEFAULT_REGION, Catalog, load_catalog, user_prices_path, write_price_csv
from fleetwise.catalog.schema import PURCHASE_OPTIONS, Chip, Instance, Price

__all__ = [
    "DEFAULT_REGION",
    "PURCHASE_OPTIONS",
    "Catalog",
    "Chip",
    "Instance",
    "Price",
    "load_catalog",
    "user_prices_path",
    "write_price_csv",
]
