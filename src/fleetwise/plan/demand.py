"""The load a plan must carry: the workload (scaled for what-ifs), its hourly rates, and request-size buckets.

Rates and lengths are measured on a generated window at the peak hour's rate (the same requests the simulator
verifies with); the other hours scale that rate by the workload's hourly profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetwise.errors import FleetwiseError
from fleetwise.models.architecture import ModelArchitecture
from fleetwise.plan.spec import PlanSpec
from fleetwise.workload.library import resolve_workload
from fleetwise.workload.requests import Requests, generate
from fleetwise.workload.spec import Arrivals, Lengths, Workload

HOURS = 24
# Peak-hour traffic drawn for lengths and simulated for verification: about PEAK_REQUESTS requests (enough for
# stable p95s, fast enough to be interactive), in a window of PEAK_WINDOW_S seconds at most and at least.
PEAK_REQUESTS = 4000
PEAK_WINDOW_S = (120.0, 3600.0)
MAX_WARM_UP_S = 3600.0  # at most an hour of conversations drawn ahead of a window
BUCKET_QUANTILES = (0.5, 0.9)  # prompt and output split at these quantiles: up to 3 x 3 buckets (Melange-style)


@dataclass(frozen=True)
class Buckets:
    """Request-size classes: each one's share of requests and its mean prompt and output lengths."""

    share: np.ndarray  # (B,) sums to 1
    prompt_tokens: np.ndarray  # (B,) mean
    output_tokens: np.ndarray  # (B,) mean
    labels: tuple[str, ...]
    of_request: np.ndarray  # bucket index of every sampled request
    prompt_edges: np.ndarray
    output_edges: np.ndarray
    codes: np.ndarray  # (B,) prompt class x output class code of each bucket

    def __len__(self) -> int:
        return int(self.share.shape[0])

    def classify(self, requests: Requests) -> np.ndarray:
        """Bucket index of each request by the same length edges (a class unseen in the sample: the nearest)."""
        code = _code(requests, self.prompt_edges, self.output_edges)
        position = np.clip(np.searchsorted(self.codes, code), 0, len(self.codes) - 1)
        below = np.clip(position - 1, 0, len(self.codes) - 1)
        closer = np.abs(self.codes[below] - code) < np.abs(self.codes[position] - code)
        return np.where(closer, below, position)


@dataclass(frozen=True)
class Demand:
    """Requests per second in each hour of the day, the peak window's requests, and their size buckets."""

    workload: Workload
    hourly_rate: np.ndarray  # (24,) requests/s
    peak_requests: Requests  # a window of the peak hour's arrivals
    peak_window_s: float
    buckets: Buckets
    context_tokens: int  # the longest prompt + output the model must hold (capped at its context)
    too_long_share: float  # requests beyond the model's context: dropped by any deployment

    @property
    def peak_rate(self) -> float:
        """Requests per second in the busiest hour."""
        return float(self.hourly_rate.max())

    @property
    def mean_output_tokens(self) -> float:
        """Mean output tokens per request."""
        return float(np.mean(self.peak_requests.output_tokens))

    @property
    def bucket_rates(self) -> np.ndarray:
        """Requests per second of each bucket in each hour, shape (24, B)."""
        return np.asarray(self.hourly_rate[:, None] * self.buckets.share[None, :], dtype=np.float64)

    def arrivals_per_s(self, hour: int) -> float:
        """The workload's arrival rate (conversations, for multi-turn workloads) in `hour`."""
        profile = self.workload.arrivals.hourly_profile
        return self.workload.arrivals.rate_per_s * (profile[hour] if profile is not None else 1.0)


def plan_workload(spec: PlanSpec) -> Workload:
    """The workload a plan carries: the named one or a flat Poisson stream, with the what-if scales applied."""
    if spec.rate_per_s is not None:
        assert spec.input_tokens is not None and spec.output_tokens is not None  # PlanSpec checks
        base = Workload(name=f"poisson-{spec.rate_per_s:g}rps", duration_s=3600.0,
                        arrivals=Arrivals(rate_per_s=spec.rate_per_s),
                        prompt_tokens=Lengths(mean=spec.input_tokens),
                        output_tokens=Lengths(mean=spec.output_tokens))
    else:
        assert spec.workload is not None
        base = resolve_workload(spec.workload)
    data = base.model_dump()
    data["duration_s"] = min(base.duration_s, 3600.0)  # windows (and warm-ups) of an hour or less are drawn
    data["arrivals"]["rate_per_s"] *= spec.traffic_scale
    if spec.prompt_scale != 1.0:
        data["prompt_tokens"] = _scaled(base.prompt_tokens, spec.prompt_scale)
        if base.shared_prefixes is not None:
            data["shared_prefixes"]["tokens"] = max(1, round(base.shared_prefixes.tokens * spec.prompt_scale))
    return Workload.model_validate(data)


def _scaled(lengths: Lengths, factor: float) -> dict[str, object]:
    data = lengths.model_dump()
    for key in ("mean", "std"):
        if data[key] is not None:
            data[key] *= factor
    if data["values"] is not None:
        data["values"] = [v * factor for v in data["values"]]
    data["minimum"] = max(1, round(lengths.minimum * factor))
    data["maximum"] = max(data["minimum"], round(lengths.maximum * factor))
    return data


def build_demand(spec: PlanSpec, model: ModelArchitecture) -> Demand:
    """Hourly rates, the peak window's requests and their buckets for `spec`'s workload."""
    workload = plan_workload(spec)
    profile = np.asarray(workload.arrivals.hourly_profile or [1.0] * HOURS, dtype=np.float64)
    peak_multiplier = float(profile.max())
    peak_arrivals = workload.arrivals.rate_per_s * peak_multiplier
    shortest, longest = PEAK_WINDOW_S
    seconds = min(max(PEAK_REQUESTS / peak_arrivals, shortest), longest)
    drawn = draw_window(workload, peak_arrivals, seconds, workload.seed)
    context = drawn.prompt_tokens + drawn.output_tokens
    too_long = context > model.max_position_embeddings
    if len(drawn) and too_long.mean() >= 0.5:
        raise FleetwiseError(f"{too_long.mean():.0%} of the workload's requests need more than {model.name}'s "
                             f"{model.max_position_embeddings:,}-token context (prompt + output, longest "
                             f"{int(context.max()):,}); shorten them or choose a longer-context model")
    requests = drawn.select(~too_long)  # what any deployment can serve; the rest is reported as dropped
    if len(requests) < 2:
        raise FleetwiseError(f"the workload's peak hour has {len(requests)} request(s) in {seconds:g} s of traffic "
                             "drawn: too few to size a fleet (raise the rate; one replica of the smallest fitting "
                             "shape serves it)")
    peak_rate = len(requests) / seconds  # measured: conversations add turns beyond the arrival rate
    served = requests.prompt_tokens + requests.output_tokens
    return Demand(workload=workload, hourly_rate=peak_rate * profile / peak_multiplier, peak_requests=requests,
                  peak_window_s=seconds, buckets=size_buckets(requests), context_tokens=int(served.max()),
                  too_long_share=float(too_long.mean()))


def warm_up_s(workload: Workload) -> float:
    """Seconds of conversations to draw before a window so later turns are already arriving (0 without sessions)."""
    sessions = workload.sessions
    if sessions is None:
        return 0.0
    turns = sessions.turns.mean if sessions.turns.mean is not None else float(np.mean(sessions.turns.values or [1]))
    return float(min(max(turns - 1.0, 0.0) * sessions.think_time_s, MAX_WARM_UP_S))


def draw_window(workload: Workload, rate_per_s: float, seconds: float, seed: int) -> Requests:
    """`seconds` of the workload's traffic at a steady `rate_per_s` (arrivals), starting at time zero.

    Multi-turn workloads are drawn with a warm-up first (conversations already under way), which is dropped, so
    the window carries the steady mix of first and later turns."""
    warm = warm_up_s(workload)
    window = workload.replace(duration_s=warm + seconds, seed=seed,
                              arrivals={**workload.arrivals.model_dump(), "hourly_profile": None,
                                        "rate_per_s": rate_per_s})
    drawn = generate(window)
    return drawn.select(drawn.arrival_s >= warm, shift_s=warm) if warm > 0 else drawn


def size_buckets(requests: Requests) -> Buckets:
    """Split requests at the prompt and output quantiles; empty classes are left out."""
    prompts, outputs = requests.prompt_tokens, requests.output_tokens
    prompt_edges = np.unique(np.quantile(prompts, BUCKET_QUANTILES))
    output_edges = np.unique(np.quantile(outputs, BUCKET_QUANTILES))
    used, of_request = np.unique(_code(requests, prompt_edges, output_edges), return_inverse=True)
    share = np.bincount(of_request) / len(requests)
    mean_prompt = np.bincount(of_request, weights=prompts) / np.bincount(of_request)
    mean_output = np.bincount(of_request, weights=outputs) / np.bincount(of_request)
    labels = tuple(f"prompt {_range(prompts[of_request == b])}, output {_range(outputs[of_request == b])}"
                   for b in range(len(used)))
    return Buckets(share=share, prompt_tokens=mean_prompt, output_tokens=mean_output, labels=labels,
                   of_request=of_request, prompt_edges=prompt_edges, output_edges=output_edges, codes=used)


def _code(requests: Requests, prompt_edges: np.ndarray, output_edges: np.ndarray) -> np.ndarray:
    prompt_class = np.searchsorted(prompt_edges, requests.prompt_tokens, side="left")
    output_class = np.searchsorted(output_edges, requests.output_tokens, side="left")
    return np.asarray(prompt_class * (len(output_edges) + 1) + output_class, dtype=np.int64)


def _range(values: np.ndarray) -> str:
    low, high = int(values.min()), int(values.max())
    return f"{low}" if low == high else f"{low}-{high}"
