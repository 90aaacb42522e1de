"""Benchmark: memory fit of every bundled model over the whole catalog (all engines, TP degrees, dtypes).

Run: python benchmarks/bench_fit.py. Prints shapes evaluated per second; the planner will sweep these.
"""

from __future__ import annotations

import time

from fleetwise.catalog import load_catalog
from fleetwise.dtypes import DTYPES
from fleetwise.engines import engine_profiles
from fleetwise.fit import fit_model
from fleetwise.models import bundled_models


def main() -> None:
    """Time fit_model over every bundled model, every engine and every dtype, best of 3 runs."""
    catalog = load_catalog(include_user_prices=False)
    models = [e.architecture for e in bundled_models().values()]
    engines = list(engine_profiles())
    best = float("inf")
    shapes = 0
    for _ in range(3):
        start = time.perf_counter()
        shapes = sum(len(fit_model(m, catalog, engines=engines, dtypes=list(DTYPES))) for m in models)
        best = min(best, time.perf_counter() - start)
    print(f"{shapes} shapes ({len(models)} models x catalog x engines x TP x dtypes) in {best * 1000:.0f} ms "
          f"= {shapes / best:,.0f} shapes/s")


if __name__ == "__main__":
    main()
