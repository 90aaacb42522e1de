"""Benchmark: how long `fleetwise --version` and a first command take, whole process (best of 5).

Run: python benchmarks/bench_cli.py. Issue 11's target: `fleetwise --version` <= 0.3 s.
"""

from __future__ import annotations

import subprocess
import sys
import time

COMMANDS = [["--version"], ["models", "--json"], ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--json"]]


def main() -> None:
    """Print the best wall time of each command."""
    for args in COMMANDS:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fleetwise.cli.main", *args], check=True, capture_output=True)
            best = min(best, time.perf_counter() - start)
        print(f"fleetwise {' '.join(args)}: {best:.3f} s")


if __name__ == "__main__":
    main()
