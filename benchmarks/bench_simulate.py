"""Benchmark: simulated requests per second, one core, a single pool of continuous-batching replicas.

Run: python benchmarks/bench_simulate.py. Replays six hours of the bundled chat-diurnal workload (shared system
prompts, lognormal lengths) through Llama-3.1-8B on two p5.48xlarge GPU replicas, with each router.
"""

from __future__ import annotations

import time

from fleetwise.catalog import load_catalog
from fleetwise.models import load_model
from fleetwise.perf import bundled_calibration
from fleetwise.sim import PoolSpec, run_pool
from fleetwise.workload import generate, resolve_workload


def main() -> None:
    """Print simulated requests per second for each router, best of 3 runs."""
    catalog, calibration = load_catalog(include_user_prices=False), bundled_calibration()
    requests = generate(resolve_workload("chat-diurnal").model_copy(update={"duration_s": 6 * 3600.0}))
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    for router in ("round-robin", "least-outstanding"):
        spec = PoolSpec(model, "p5.48xlarge", 1, "bf16", None, replicas=2)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            run_pool(spec, requests, catalog, calibration, router)  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - start)
        print(f"{router}: {len(requests):,} requests in {best:.2f} s = {len(requests) / best:,.0f} requests/s")


if __name__ == "__main__":
    main()
