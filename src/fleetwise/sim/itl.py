"""Inter-token latency as a histogram, filled as replicas run: every decode gap counted into fixed log-spaced bins.

A bin spans a factor of `ITL_BIN_RATIO` (0.1%): bin b holds the gaps in [r^b, r^(b+1)) seconds. A decode stretch
of k steps whose gaps grow linearly from first to last is split exactly over the bins it spans (the steps falling
in each bin counted in closed form, not one by one), each step weighted by the sequences it gave a token. A bin
keeps its weight and the weighted sum of its gaps, so a percentile is the weighted mean of the gaps in the bin where
the cumulative weight reaches it: within 0.1% of the exact percentile of every gap, and exact when the gaps in that
bin are all equal. Memory is bounded by the span of gaps seen (about 2,300 bins per decade of gap length), however
many steps run; the histogram is shared by every replica of a run.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Final

ITL_BIN_RATIO: Final = 1.001  # relative width of a bin: the bound on a percentile's relative error
_LOG_RATIO: Final = math.log(ITL_BIN_RATIO)  # Final: compiled code reads these without a dictionary lookup
_SMALLEST_S: Final = 1e-12  # gaps are positive; anything below this (never a real step) is counted here


def _bin(gap: float) -> int:
    return math.floor(math.log(max(gap, _SMALLEST_S)) / _LOG_RATIO)


def _edge(b: int) -> float:
    """The lower edge of bin b, seconds."""
    return math.exp(b * _LOG_RATIO)


class ItlHistogram:
    """Token-weighted inter-token gaps in log-spaced bins of 0.1% (a plain class with typed lists: mypyc compiles
    it). The lists cover the bins from the shortest gap seen to the longest, grown as gaps arrive."""

    __slots__ = ("origin", "runs", "sums", "weights")

    def __init__(self) -> None:
        self.origin = 0  # the bin of weights[0]
        self.weights: list[float] = []  # tokens (steps x sequences) whose gap fell in each bin
        self.sums: list[float] = []  # gap x tokens summed over each bin, seconds
        self.runs = 0  # calls to `add`: stretches and single steps recorded

    def add(self, first: float, slope: float, steps: int, sequences: float) -> None:
        """`steps` decode steps with gaps first, first + slope, ..., each giving one token to `sequences` sequences."""
        self.runs += 1
        if steps <= 0:
            return
        last = first + slope * (steps - 1)
        if slope < 0.0:  # the same gaps, read from the shortest
            first, last, slope = last, first, -slope
        low, high = _bin(first), _bin(last)
        if low == high or slope == 0.0:
            self._put(low, steps * sequences, (first + last) * 0.5 * steps * sequences)
            return
        start = 0
        for b in range(low, high):  # steps before the next edge go to this bin (only the bins spanned are visited)
            end = min(max(math.ceil((_edge(b + 1) - first) / slope), start), steps)
            if end > start:
                count = end - start
                self._put(b, count * sequences, (first * count + slope * (start + end - 1) * count * 0.5) * sequences)
                start = end
        if start < steps:
            count = steps - start
            self._put(high, count * sequences, (first * count + slope * (start + steps - 1) * count * 0.5) * sequences)

    def _put(self, b: int, weight: float, total: float) -> None:
        i = b - self.origin
        if i < 0 or i >= len(self.weights):
            i = self._grow(b)
        self.weights[i] += weight
        self.sums[i] += total

    def _grow(self, b: int) -> int:
        """Extend the lists to cover bin b, with room beyond it (half as much again) so they grow rarely; returns
        b's place."""
        if not self.weights:
            self.origin = b - 64
            self.weights, self.sums = [0.0] * 256, [0.0] * 256
            return 64
        room = max(64, len(self.weights) // 2)
        if b < self.origin:
            more = self.origin - b + room
            self.weights, self.sums = [0.0] * more + self.weights, [0.0] * more + self.sums
            self.origin -= more
        else:
            more = b - self.origin - len(self.weights) + 1 + room
            self.weights += [0.0] * more
            self.sums += [0.0] * more
        return b - self.origin

    def __len__(self) -> int:
        """Bins held in memory (empty ones between the shortest and longest gap included)."""
        return len(self.weights)

    def bins(self) -> list[tuple[int, float, float]]:
        """(bin, tokens, gap x tokens) of every bin that counted a gap, shortest first."""
        return [(self.origin + i, w, self.sums[i]) for i, w in enumerate(self.weights) if w > 0.0]

    def total(self) -> float:
        """Tokens counted (every decode step's sequences)."""
        return sum(self.weights)

    def percentiles(self, levels: tuple[int, ...]) -> list[float] | None:
        """For each level p, the mean gap of the bin where the cumulative weight, shortest first, reaches p% of the
        total (seconds; within ITL_BIN_RATIO of the exact percentile); None when nothing was counted."""
        filled = self.bins()
        if not filled:
            return None
        cumulative: list[float] = []
        running = 0.0
        for _, weight, _ in filled:
            running += weight
            cumulative.append(running)
        answers = []
        for level in levels:
            _, weight, total = filled[min(bisect_left(cumulative, level / 100 * running), len(filled) - 1)]
            answers.append(total / weight)
        return answers
