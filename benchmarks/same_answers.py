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
