"""How well the planner's screening (mean-value perf model) agrees with its simulator checks.

Run: python benchmarks/screening_vs_simulation.py. Plans seven questions and, for every option the simulator
checked at the peak hour, compares the screened p95 TTFT and TPOT with the simulated ones at the same replica
count (after any replicas the check added), and counts how often replicas had to be added.
"""

from __future__ import annotations

import numpy as np

from fleetwise.catalog import load_catalog
from fleetwise.plan import PlanSpec, plan

QUESTIONS = [
    PlanSpec(),
    PlanSpec(finalists=8),
    PlanSpec(model="meta-llama/Llama-3.1-70B-Instruct"),
    PlanSpec(model="Qwen/Qwen3-30B-A3B"),
    PlanSpec(instances=["inf2"]),
    PlanSpec(instances=["inf2", "g6"], dtypes=["bf16"]),
    PlanSpec(rate_per_s=100, input_tokens=1000, output_tokens=200),
]


def main() -> None:
    """Print the simulated / screened ratios (median, 10th and 90th percentiles) and the share repaired."""
    catalog = load_catalog(include_user_prices=False)
    ttft, tpot, repaired = [], [], []
    for spec in QUESTIONS:
        for option in plan(spec, catalog=catalog).options:
            checked, screened = option.verified, option.predicted
            figures = (screened.ttft_ms_p95, screened.tpot_ms_p95)
            if checked and checked.ttft_ms_p95 and checked.tpot_ms_p95 and all(figures):
                ttft.append(checked.ttft_ms_p95 / screened.ttft_ms_p95)
                tpot.append(checked.tpot_ms_p95 / screened.tpot_ms_p95)
                repaired.append(checked.replicas_added > 0)
    for label, ratios in (("TTFT", ttft), ("TPOT", tpot)):
        low, mid, high = np.percentile(ratios, [10, 50, 90])
        print(f"p95 {label} simulated / screened over {len(ratios)} options: median {mid:.2f} (p10 {low:.2f}, "
              f"p90 {high:.2f})")
    print(f"replicas added by the simulator check: {np.mean(repaired):.0%} of options")


if __name__ == "__main__":
    main()
