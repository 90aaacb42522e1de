"""Benchmark: batched performance predictions per second (the planner sweeps thousands of configurations).

Run: python benchmarks/bench_predict.py. Builds every fitting (model, instance, engine, TP, dtype) shape for a
set of bundled models, repeats them with several batch sizes, and times (a) packing them into arrays and (b) one
vectorised static-batch prediction (TTFT, TPOT, E2E, throughput) for all of them.
"""

from __future__ import annotations

import time

import numpy as np

from fleetwise.catalog import load_catalog
from fleetwise.dtypes import get_dtype
from fleetwise.fit import fit_model
from fleetwise.models import load_model
from fleetwise.perf import bundled_calibration
from fleetwise.perf.hardware import resolve_hardware
from fleetwise.perf.replica_arrays import ReplicaConfig, build_arrays
from fleetwise.perf.scenarios import closed_loop, poisson, static_batch

MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-30B-A3B",
          "mistralai/Mixtral-8x7B-Instruct-v0.1", "google/gemma-2-27b-it", "openai/gpt-oss-120b"]
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def main() -> None:
    """Print configurations per second for array packing and for the vectorised prediction, best of 5."""
    catalog = load_catalog(include_user_prices=False)
    calibration = bundled_calibration()
    configs: list[ReplicaConfig] = []
    for name in MODELS:
        model = load_model(name)
        for row in fit_model(model, catalog, engines=["vllm", "trtllm", "nxdi"], dtypes=["bf16", "fp8", "int8"]):
            if not row.fits:
                continue
            hw = resolve_hardware(catalog, row.instance, row.tp, row.engine)
            if hw.peak_flops_per_rank(get_dtype(row.dtype)) is None:
                continue  # e.g. A10G: TFLOPS not found in the catalog
            eff = calibration.lookup(hw.engine.id, hw.chip.id, hw.chip.kind)
            configs.append(ReplicaConfig(model, hw, get_dtype(row.dtype), eff))
    configs = configs * len(BATCHES)
    batches = np.repeat(np.array(BATCHES, dtype=np.float64), len(configs) // len(BATCHES))
    best_build = best_predict = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        arrays = build_arrays(configs)
        built = time.perf_counter()
        result = static_batch(arrays, batches, 1024.0, 256.0)
        done = time.perf_counter()
        best_build, best_predict = min(best_build, built - start), min(best_predict, done - built)
    n = len(configs)
    assert np.isfinite(result.tpot_p50_s).all()
    print(f"{n} configurations: pack {n / best_build:,.0f}/s, static batch {n / best_predict:,.0f}/s, "
          f"pack + static batch {n / (best_build + best_predict):,.0f}/s")
    for name, scenario in (("closed loop", closed_loop), ("Poisson", poisson)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            scenario(arrays, batches, 1024.0, 256.0, 512.0)
            best = min(best, time.perf_counter() - start)
        print(f"  {name}: {n / best:,.0f}/s (pack + {name}: {n / (best_build + best):,.0f}/s)")


if __name__ == "__main__":
    main()
