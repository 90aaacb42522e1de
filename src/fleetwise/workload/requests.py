"""Requests as arrays: arrival time, prompt and output tokens, shared prefix; generated from a Workload."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from fleetwise.workload.spec import Arrivals, Lengths, SharedPrefixes, Workload

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class RequestColumns:
    """A request stream's per-request figures as Python lists: one request at a time, these read faster than numpy
    arrays (the simulator's scheduler reads them millions of times)."""

    prompt_tokens: list[int]
    output_tokens: list[int]
    prefix_id: list[int]
    prefix_tokens: list[int]
    session_id: list[int]


@dataclass(frozen=True)
class Requests:
    """A request stream, sorted by arrival; prefix_id is -1 where a request shares no prefix."""

    arrival_s: FloatArray
    prompt_tokens: IntArray
    output_tokens: IntArray
    prefix_id: IntArray
    prefix_tokens: IntArray  # leading prompt tokens shared with other requests of the same prefix_id
    # conversation a request belongs to (-1: none); its whole context is cached under this id for the next turn
    session_id: IntArray | None = None

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if self.session_id is None:
            object.__setattr__(self, "session_id", np.full(n, -1, dtype=np.int64))
        arrays = (self.prompt_tokens, self.output_tokens, self.prefix_id, self.prefix_tokens, self.session_id)
        if any(len(a) != n for a in arrays if a is not None):
            raise ValueError("request arrays differ in length")
        if n and (np.any(self.prefix_tokens < 0) or np.any(self.prefix_tokens >= np.maximum(self.prompt_tokens, 1))):
            raise ValueError("a shared prefix must be shorter than its prompt")
        if np.any((self.prefix_id >= 0) != (self.prefix_tokens > 0)):
            raise ValueError("prefix_id and prefix_tokens must be given together")
        sessions = self.sessions
        system = self.prefix_id[(self.prefix_id >= 0) & (self.prefix_id != sessions)]
        if np.intersect1d(system, sessions[sessions >= 0]).size:
            raise ValueError("a system-prompt prefix_id may not also be a session_id")

    @cached_property
    def columns(self) -> RequestColumns:
        """The per-request figures as lists (made once; the arrays are not to be changed afterwards)."""
        return RequestColumns(self.prompt_tokens.tolist(), self.output_tokens.tolist(), self.prefix_id.tolist(),
                              self.prefix_tokens.tolist(), self.sessions.tolist())

    @property
    def sessions(self) -> IntArray:
        """Conversation id per request (-1 for none)."""
        assert self.session_id is not None
        return self.session_id

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def head(self, seconds: float) -> Requests:
        """The requests that arrive within the first `seconds`."""
        keep = self.arrival_s < self.arrival_s[0] + seconds if len(self) else self.arrival_s < seconds
        return self.select(keep)

    def select(self, keep: np.ndarray, shift_s: float = 0.0) -> Requests:
        """The requests where `keep` is true, arrivals moved `shift_s` earlier."""
        return Requests(self.arrival_s[keep] - shift_s, self.prompt_tokens[keep], self.output_tokens[keep],
                        self.prefix_id[keep], self.prefix_tokens[keep], self.sessions[keep])

    @property
    def duration_s(self) -> float:
        """Time from the first to the last arrival."""
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0

    def summary(self) -> dict[str, float | int]:
        """Count, rate and length percentiles: what a user checks first."""
        if not len(self):
            return {"requests": 0}
        p = np.percentile
        return {
            "requests": len(self), "duration_s": round(self.duration_s, 3),
            "mean_rate_per_s": round(len(self) / self.duration_s, 4) if self.duration_s > 0 else 0.0,
            "prompt_tokens_p50": int(p(self.prompt_tokens, 50)), "prompt_tokens_p99": int(p(self.prompt_tokens, 99)),
            "output_tokens_p50": int(p(self.output_tokens, 50)), "output_tokens_p99": int(p(self.output_tokens, 99)),
            "shared_prefix_share": round(float(np.mean(self.prefix_id >= 0)), 4),
        }


def generate(workload: Workload) -> Requests:
    """Draw the workload's requests; the same workload (seed included) always gives the same requests."""
    rng = np.random.default_rng(workload.seed)
    arrivals = _arrival_times(workload.arrivals, workload.duration_s, rng)
    n = len(arrivals)
    prompts = _lengths(workload.prompt_tokens, n, rng)
    outputs = _lengths(workload.output_tokens, n, rng)
    prefix_id = np.full(n, -1, dtype=np.int64)
    prefix_tokens = np.zeros(n, dtype=np.int64)
    if workload.shared_prefixes is not None and n:
        prefix_id, prefix_tokens = _prefixes(workload.shared_prefixes, n, rng)
        prompts = np.maximum(prompts, prefix_tokens + 1)  # every prompt has at least one token of its own
    first_turns = Requests(arrivals, prompts, outputs, prefix_id, prefix_tokens)
    if workload.sessions is None or not n:
        return first_turns
    return _conversations(first_turns, workload, rng)


def _conversations(first: Requests, workload: Workload, rng: np.random.Generator) -> Requests:
    """Expand each first turn into a conversation; later turns re-send the context and reuse its KV cache."""
    spec = workload.sessions
    assert spec is not None
    base = (workload.shared_prefixes.count if workload.shared_prefixes else 0)  # keep ids apart from prefixes
    turns = _lengths(spec.turns, len(first), rng)
    columns: list[list[float]] = [[], [], [], [], [], []]
    for conversation in range(len(first)):
        arrival = float(first.arrival_s[conversation])
        prompt, output = int(first.prompt_tokens[conversation]), int(first.output_tokens[conversation])
        prefix, shared = int(first.prefix_id[conversation]), int(first.prefix_tokens[conversation])
        for turn in range(int(turns[conversation])):
            if turn:
                context = prompt + output
                arrival += float(rng.exponential(spec.think_time_s))
                prompt = context + int(_lengths(spec.user_tokens, 1, rng)[0])
                output = int(_lengths(workload.output_tokens, 1, rng)[0])
                prefix, shared = base + conversation, context
            if arrival >= workload.duration_s:
                break
            for column, value in zip(columns, (arrival, prompt, output, prefix, shared, base + conversation),
                                     strict=True):
                column.append(value)
    order = np.argsort(np.asarray(columns[0]), kind="stable")
    arrays = [np.asarray(c)[order] for c in columns]
    return Requests(arrays[0].astype(np.float64), *(a.astype(np.int64) for a in arrays[1:]))


def _arrival_times(spec: Arrivals, duration_s: float, rng: np.random.Generator) -> FloatArray:
    """Arrival times in [0, duration); an hourly profile thins a process run at the peak rate."""
    profile = np.asarray(spec.hourly_profile or [1.0] * 24, dtype=np.float64)
    peak = spec.rate_per_s * float(profile.max())
    times = _homogeneous(spec, peak, duration_s, rng)
    if spec.hourly_profile is not None:
        hour = (times // SECONDS_PER_HOUR).astype(np.int64) % 24
        times = times[rng.random(len(times)) < profile[hour] / profile.max()]
    return times


def _homogeneous(spec: Arrivals, rate: float, duration_s: float, rng: np.random.Generator) -> FloatArray:
    if spec.process == "constant":
        return np.arange(0.0, duration_s, 1.0 / rate)
    expected = rate * duration_s
    chunks: list[FloatArray] = []
    start = 0.0
    while start < duration_s:
        size = int(expected * 1.1 + 10 * np.sqrt(expected) + 16)
        if spec.process == "poisson":
            gaps = rng.exponential(1.0 / rate, size)
        else:  # gamma gaps with the requested coefficient of variation and mean 1/rate
            shape = 1.0 / spec.burstiness_cv**2
            gaps = rng.gamma(shape, 1.0 / (rate * shape), size)
        times = start + np.cumsum(gaps)
        chunks.append(times[times < duration_s])
        start = float(times[-1])
        expected = rate * max(duration_s - start, 0.0)
    return np.concatenate(chunks) if chunks else np.zeros(0)


def _lengths(spec: Lengths, n: int, rng: np.random.Generator) -> IntArray:
    if spec.distribution == "fixed":
        raw = np.full(n, float(spec.mean or 1.0))
    elif spec.distribution == "normal":
        raw = rng.normal(float(spec.mean or 1.0), spec.std, n)
    elif spec.distribution == "lognormal":  # parameterised by the mean and std of the lengths themselves
        mean = float(spec.mean or 1.0)
        sigma2 = np.log1p((spec.std / mean) ** 2)
        raw = rng.lognormal(np.log(mean) - sigma2 / 2.0, np.sqrt(sigma2), n)
    else:
        raw = rng.choice(np.asarray(spec.values, dtype=np.float64), n)
    return np.asarray(np.clip(np.rint(raw), spec.minimum, spec.maximum), dtype=np.int64)


def _prefixes(spec: SharedPrefixes, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    weights = np.ones(spec.count) if spec.popularity == "uniform" else 1.0 / np.arange(1, spec.count + 1)
    ids = rng.choice(spec.count, n, p=weights / weights.sum()).astype(np.int64)
    shared = rng.random(n) < spec.share_of_requests
    ids = np.where(shared, ids, -1)
    return ids, np.where(shared, spec.tokens, 0).astype(np.int64)
