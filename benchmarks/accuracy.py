"""Accuracy targets of the shipped calibration, checked once by CI (not in the unit suite: the refits are slow).

Run: python benchmarks/accuracy.py. Replays every usable bundled measurement under the bundled calibration
(median absolute percentage error, target <= 15%) and refits without each source in turn (leave-one-source-out,
target <= 25%, at least four sources). Exits 1 when a target is missed.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from fleetwise.catalog import load_catalog
from fleetwise.perf import bundled_calibration
from fleetwise.perf.calibrate import absolute_percentage_errors, cross_validate, prepare_replay
from fleetwise.perf.measurements import read_measurements

IN_SAMPLE_TARGET = 0.15
HELD_OUT_TARGET = 0.25


def main() -> int:
    """Print the errors against their targets; 0 when every target holds."""
    rows, excluded = read_measurements()
    replay = prepare_replay(rows, load_catalog(include_user_prices=False))
    in_sample = float(np.median(absolute_percentage_errors(replay, bundled_calibration())))
    start = time.perf_counter()
    cv = cross_validate(replay)
    seconds = time.perf_counter() - start
    checks = [
        (f"{len(rows)} rows replayed ({len(excluded)} kept with a reason they cannot be)", len(rows) > 0),
        (f"in-sample median |error| {in_sample:.1%} (target <= {IN_SAMPLE_TARGET:.0%})", in_sample <= IN_SAMPLE_TARGET),
        (f"leave-one-source-out median |error| {cv.median:.1%} over {len(cv.by_source)} sources "
         f"(target <= {HELD_OUT_TARGET:.0%}, >= 4 sources; refits took {seconds:.1f} s)",
         cv.median <= HELD_OUT_TARGET and len(cv.by_source) >= 4),
    ]
    for label, passed in checks:
        print(f"{'ok  ' if passed else 'MISS'} {label}")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
