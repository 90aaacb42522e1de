"""What happened to each request of a simulated run (NaN where it has not happened).

Replicas write a `RequestRecord` as the run goes: plain Python lists, which compiled code reads and writes one
request at a time several times faster than numpy arrays. The finished run hands on a `RequestLog` of arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fleetwise.sim.itl import ItlHistogram


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
    itl: ItlHistogram = field(default_factory=ItlHistogram)  # every inter-token gap, token-weighted

    @classmethod
    def empty(cls, n: int) -> RequestLog:
        """A log for n requests where nothing has happened yet."""
        return RequestRecord(n).log()


class RequestRecord:
    """The log being written during a run, field for field as `RequestLog`, in lists."""

    __slots__ = ("admitted_s", "dropped", "finish_s", "first_token_s", "itl", "preemptions",
                 "prefix_hit_tokens", "replica", "requeues")

    def __init__(self, n: int) -> None:
        self.first_token_s: list[float] = [math.nan] * n
        self.finish_s: list[float] = [math.nan] * n
        self.preemptions: list[int] = [0] * n
        self.prefix_hit_tokens: list[int] = [0] * n
        self.replica: list[int] = [-1] * n
        self.requeues: list[int] = [0] * n
        self.admitted_s: list[float] = [math.nan] * n
        self.dropped: dict[int, str] = {}
        self.itl = ItlHistogram()

    def log(self) -> RequestLog:
        """The record as arrays (the drop reasons and the ITL histogram are handed on, not copied)."""
        f64, i64 = np.float64, np.int64
        return RequestLog(np.array(self.first_token_s, dtype=f64), np.array(self.finish_s, dtype=f64),
                          np.array(self.preemptions, dtype=i64), np.array(self.prefix_hit_tokens, dtype=i64),
                          np.array(self.replica, dtype=i64), np.array(self.requeues, dtype=i64),
                          np.array(self.admitted_s, dtype=f64), self.dropped, self.itl)
