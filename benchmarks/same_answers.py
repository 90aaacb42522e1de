"""Check that two installs give the same answers, e.g. the compiled simulator (a regular install) and the
pure-Python one (an editable install): the same commands, the same JSON, timings aside.

Run: python benchmarks/same_answers.py PYTHON_A PYTHON_B. Exits 1 on the first difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

COMMANDS = [
    ["plan", "--json", "--no-report"],
    ["plan", "--instances", "inf2", "--json", "--no-report"],
    ["simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", "-n", "4", "--workload",
     "chat-diurnal", "--duration", "7200", "--json"],
    ["simulate", "-m", "google/gemma-3-27b-it", "-H", "p5.48xlarge", "--tp", "2", "--rate", "4", "-i", "3000", "-o",
     "300", "--duration", "300", "--json"],
    ["predict", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "inf2.48xlarge", "--tp", "8", "--rate", "1", "-i",
     "512", "-o", "128", "--json"],
    # two pools (Neuron compiled batches and spot GPUs) behind the cost-aware router
    ["simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--pool", "inf2.48xlarge:tp=8:replicas=2", "--pool",
     "p5.48xlarge:purchase=spot:spot_rate=0.5", "--router", "cost-aware", "--slo-ttft-ms", "800", "--rate", "20",
     "-i", "700", "-o", "150", "--duration", "600", "--seed", "4", "--json"],
    # autoscaling spot replicas, interrupted and replaced
    ["simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "g6e.xlarge", "--autoscale", "--max-replicas", "6",
     "--target-inflight", "8", "--startup-s", "120", "--purchase", "spot", "--spot-interruptions-per-hour", "2",
     "--workload", "chat-diurnal", "--duration", "3600", "--json"],
    # experts (MoE) and prefix affinity
    ["simulate", "-m", "Qwen/Qwen3-30B-A3B", "-H", "p5.48xlarge", "--tp", "2", "-n", "3", "--router",
     "prefix-affinity", "--workload", "chat-diurnal", "--duration", "1800", "--json"],
]
TIMINGS = {"timing_s"}


def _answer(python: str, args: list[str]) -> Any:
    out = subprocess.run([python, "-m", "fleetwise.cli.main", *args], check=True, capture_output=True, text=True)
    return _strip(json.loads(out.stdout))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def main() -> int:
    """Compare every command's answer from both interpreters."""
    first, second = sys.argv[1:3]
    for args in COMMANDS:
        same = _answer(first, args) == _answer(second, args)
        print(f"{'same' if same else 'DIFFERENT'}: fleetwise {' '.join(args)}")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
