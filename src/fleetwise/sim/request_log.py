"""What happened to each request of a simulated run (NaN where it has not happened)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A run of decode steps that each produced one token per sequence: (first step s, last step s, steps,
# sequences decoding). Step times grow linearly from first to last, so percentiles of inter-token latency
# are read off these without a record per token.
ItlSegment = tuple[float, float, int, float]


@dataclass
class RequestLog:
    """Per request: first token, finish, admission times, preemptions, prefix-cache hits, where it ran."""

    first_token_s: np.ndarray
    finish_s: np.ndarray
    preemptions: np.ndarray
    prefix_hit_tokens: np.ndarray
    replica: np.ndarray  # the replica that finished it (global replica number)
    requeues: np.ndarray  # times it was moved off a replica that went away (spot interruption)
    admitted_s: np.ndarray  # when a replica first began its prefill (arrival to here: queueing delay)
    dropped: dict[int, str] = field(default_factory=dict)  # request index -> reason
    itl_segments: list[ItlSegment] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int) -> RequestLog:
        """A log for n requests where nothing has happened yet."""
        return cls(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64),
                   np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64),
                   np.full(n, np.nan))
