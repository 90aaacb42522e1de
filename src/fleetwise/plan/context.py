"""What every stage of a plan reads: the question, the model, the demand, the catalog and the calibration."""

from __future__ import annotations

from dataclasses import dataclass

from fleetwise.catalog.catalog import Catalog
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.perf.efficiency import CalibrationTable
from fleetwise.plan.demand import Demand
from fleetwise.plan.spec import PlanSpec


@dataclass(frozen=True)
class PlanContext:
    """The fixed inputs of one plan."""

    spec: PlanSpec
    model: ModelArchitecture
    demand: Demand
    catalog: Catalog
    calibration: CalibrationTable
