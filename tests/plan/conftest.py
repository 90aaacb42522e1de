"""Planner fixtures: one default plan (Llama-3.1-8B on chat-diurnal, verified) shared by every planner module."""

from __future__ import annotations

import pytest

from fleetwise.catalog import Catalog
from fleetwise.plan import PlanSpec, plan
from fleetwise.plan.result import PlanResult


@pytest.fixture(scope="session")
def default_plan(catalog: Catalog) -> PlanResult:
    """plan(PlanSpec()) on the bundled catalog: built once (~2 s), read by many tests, changed by none.

    The catalog is passed in because a session fixture is set up before the per-test FLEETWISE_HOME isolation."""
    return plan(PlanSpec(), catalog=catalog)
