"""The inter-token latency histogram: every gap counted, percentiles within a bin's width of exact, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleetwise.sim.itl import ITL_BIN_RATIO, ItlHistogram, _bin, _edge
from fleetwise.sim.metrics import PERCENTILES
from tests.sim.builders import Run, exact_percentiles


def _filled(runs: list[Run]) -> ItlHistogram:
    itl = ItlHistogram()
    for run in runs:
        itl.add(*run)
    return itl


def _random_runs(rng: np.random.Generator, n: int) -> list[Run]:
    runs = []
    for _ in range(n):
        steps = int(rng.integers(1, 9)) if rng.random() < 0.3 else int(rng.integers(1, 3000))
        first = float(rng.uniform(0.004, 0.06))
        slope = float(rng.uniform(0.0, 2e-5)) if rng.random() < 0.7 else 0.0  # some flat stretches
        if rng.random() < 0.05:
            first, slope = first + slope * (steps - 1), -slope  # the same gaps given longest first
        runs.append((first, slope, steps, float(rng.integers(1, 128))))
    return runs


@pytest.mark.parametrize("seed", range(12))
def test_percentiles_are_within_a_bin_of_the_exact_ones_of_every_gap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    runs = _random_runs(rng, int(rng.integers(1, 300)))
    got = _filled(runs).percentiles(PERCENTILES)
    assert got is not None
    for value, exact in zip(got, exact_percentiles(runs), strict=True):
        assert abs(value - exact) <= (ITL_BIN_RATIO - 1) * exact * (1 + 1e-9)


def test_every_step_is_counted_once_with_its_sequences() -> None:
    runs = _random_runs(np.random.default_rng(5), 200)
    itl = _filled(runs)
    assert itl.total() == pytest.approx(sum(steps * sequences for _, _, steps, sequences in runs), rel=1e-12)
    assert itl.runs == len(runs)
    for b, weight, total in itl.bins():  # a bin's mean gap lies within it
        assert _edge(b) * (1 - 1e-9) <= total / weight < _edge(b + 1) * (1 + 1e-9)


def test_a_stretch_is_split_over_the_bins_it_spans_as_its_steps_fall() -> None:
    first, slope, steps = 0.010, 1e-6, 500  # 10.0 to 10.499 ms: about 49 bins
    itl = _filled([(first, slope, steps, 3.0)])
    gaps = first + slope * np.arange(steps)
    per_bin: dict[int, float] = {}
    for gap in gaps.tolist():
        per_bin[_bin(gap)] = per_bin.get(_bin(gap), 0.0) + 3.0
    counted = {b: weight for b, weight, _ in itl.bins()}
    assert counted.keys() == per_bin.keys()
    assert counted == pytest.approx(per_bin)


def test_equal_gaps_give_exact_percentiles() -> None:
    itl = _filled([(0.010, 0.0, 100, 9.0), (0.050, 0.0, 100, 1.0), (0.020, 0.0, 1, 1.0)])
    assert itl.percentiles((50, 90, 99)) == pytest.approx([0.010, 0.020, 0.050], rel=1e-14)  # 900 of 1001 < 90%
    assert ItlHistogram().percentiles(PERCENTILES) is None


def test_memory_is_bounded_by_the_bins_however_many_steps_run() -> None:
    rng = np.random.default_rng(1)
    itl = ItlHistogram()
    for first in rng.uniform(0.001, 0.099, 20_000).tolist():  # gaps within two decades, 1 to 100 ms
        itl.add(first, 1e-7, int(rng.integers(1, 10_000)), 8.0)
    itl.add(0.001, 1e-14, 10**12, 1.0)  # a trillion steps (1 to 11 ms): a visit per bin spanned, not per step
    bound = 2 * math.ceil(math.log(100) / math.log(ITL_BIN_RATIO))  # two decades, and room to grow
    assert len(itl) <= bound and len(itl.sums) == len(itl)
