"""Request-level latency and throughput from step times: a static batch, a closed loop of users, Poisson arrivals.

Definitions follow vLLM's benchmark: TTFT from arrival to first token (queueing included), TPOT = (e2e − TTFT) /
(output − 1), throughput = output tokens per second of the whole replica. The closed-loop and Poisson answers
are steady-state approximations (continuous batching; other requests' prompts interleave with a request's
decode; Little's law; M/D/1 wait for admission); the serving simulator replaces them once it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fleetwise.perf.replica_arrays import Array, ReplicaArrays
from fleetwise.perf.step_time import StepTimes, causal_attended, columns, decode_step, mixed_step, prefill_step

DECODE_SAMPLES = 32  # contexts sampled along a request's decode to average step times (exact for linear costs)


@dataclass(frozen=True)
class ScenarioResult:
    """Per-configuration request metrics (seconds, tokens/s), plus the phase step times behind them."""

    ttft_p50_s: Array
    ttft_mean_s: Array
    tpot_p50_s: Array  # per request: (e2e - ttft) / (output - 1); NaN when a request has one output token
    tpot_mean_s: Array
    itl_p50_s: Array  # median inter-token latency: the decode step at the request's median context
    e2e_p50_s: Array
    output_tokens_per_s: Array
    requests_per_s: Array
    concurrency: Array  # sequences decoding together in steady state
    saturated: NDArray[np.bool_]  # True where the offered load exceeds what the replica can serve
    prefill: StepTimes  # one prefill step (shape (N, 1))
    decode: StepTimes  # a decode step at the mid-request context (shape (N, 1))


def _column(values: Array | float, n: int) -> Array:
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))[:, None]


def _decode_profile(r: ReplicaArrays, batch: Array, input_tokens: Array, output_tokens: Array,
                    samples: int = DECODE_SAMPLES) -> tuple[Array, StepTimes]:
    """Mean decode step time over a request's life, and the step at its median context."""
    steps = np.maximum(output_tokens - 1.0, 1.0)
    fractions = (np.arange(samples) + 0.5) / samples
    contexts = input_tokens + 1.0 + steps * fractions[None, :]
    mean = decode_step(r, batch, contexts).total_s.mean(axis=1, keepdims=True)
    median = decode_step(r, batch, input_tokens + 1.0 + steps * 0.5)
    return mean, median


def _per_request_tpot(e2e: Array, ttft: Array, o: Array) -> Array:
    """vLLM's TPOT: undefined (NaN) for a request with a single output token."""
    return np.where(o > 1.0, (e2e - ttft) / np.maximum(o - 1.0, 1.0), np.nan)


def _decode_batch(r: ReplicaArrays, active: Array, compiled_batch: Array) -> Array:
    """Sequences a decode step computes: at least one; engines with compiled shapes run every compiled slot."""
    busy = np.maximum(active, 1.0)
    return np.where(r.pads_prompts[:, None] > 0, np.maximum(busy, compiled_batch), busy)


def static_batch(r: ReplicaArrays, batch: Array | float, input_tokens: Array | float,
                 output_tokens: Array | float, compiled_batch: Array | float = 0.0) -> ScenarioResult:
    """`batch` requests started together: one prefill of them all, then decode steps until the last token."""
    n = len(r)
    b, i, o = _column(batch, n), _column(input_tokens, n), _column(output_tokens, n)
    prefill = prefill_step(r, b, i)
    ttft = prefill.total_s
    tpot_mean, median = _decode_profile(r, _decode_batch(r, b, _column(compiled_batch, n)), i, o)
    e2e = ttft + (o - 1.0) * tpot_mean
    tpot = _per_request_tpot(e2e, ttft, o)  # every request of the batch is alike: p50 = mean
    return ScenarioResult(
        ttft_p50_s=ttft[:, 0], ttft_mean_s=ttft[:, 0], tpot_p50_s=tpot[:, 0], tpot_mean_s=tpot[:, 0],
        itl_p50_s=median.total_s[:, 0], e2e_p50_s=e2e[:, 0], output_tokens_per_s=(b * o / e2e)[:, 0],
        requests_per_s=(b / e2e)[:, 0], concurrency=b[:, 0], saturated=np.zeros(n, dtype=bool), prefill=prefill,
        decode=median)


def _cycle(r: ReplicaArrays, active: Array, i: Array, o: Array, compiled_batch: Array,
           samples: int = DECODE_SAMPLES) -> tuple[Array, Array, StepTimes, StepTimes]:
    """A request's service time with `active` sequences in flight, and the engine time one prompt takes (for the
    admission wait).

    Its own prefill, then its decode steps, during which each of the other active requests is prefilled once.
    An engine with chunked prefill folds those prompts, a token budget's worth per step, into the decode steps of
    the others: each chunk costs what it adds to the step it rides on (its compute hides under the weights' and
    KV reads where the step is memory-bound); without it a prefill is a step of its own that stalls decoding.
    """
    prefill = prefill_step(r, np.ones_like(active), i)
    chunked = r.chunked_prefill[:, None] > 0
    interleaved = np.where(chunked, prefill.compute_s + prefill.communication_s, prefill.total_s)  # engine time
    added = np.where(chunked, _folded_prompt_s(r, active, i, o), prefill.total_s)  # what it adds to others' steps
    tpot_mean, median = _decode_profile(r, _decode_batch(r, active, compiled_batch), i, o, samples)
    cycle = prefill.total_s + np.maximum(active - 1.0, 0.0) * added + (o - 1.0) * tpot_mean
    return cycle, interleaved, prefill, median


def _folded_prompt_s(r: ReplicaArrays, active: Array, i: Array, o: Array) -> Array:
    """What one prompt adds to the decode steps of the `active` − 1 others: near capacity prompts queue, so each
    step carries a full token budget of prompt chunks, and a prompt costs its share of what that adds."""
    others = np.maximum(active - 1.0, 1.0)
    budget = np.maximum(r.batched_tokens[:, None] - others, 1.0)
    share = i / budget  # of a full chunk step
    context = i + 1.0 + np.maximum(o - 1.0, 1.0) / 2.0  # the others' mean context
    attended = causal_attended(columns(r), 0.0, i) / share
    mixed = mixed_step(r, others, context, budget, attended, 1.0 / share).total_s
    alone = decode_step(r, others, context).total_s
    return share * np.maximum(mixed - alone, 0.0)


def closed_loop(r: ReplicaArrays, concurrency: Array | float, input_tokens: Array | float,
                output_tokens: Array | float, max_sequences: Array | float = np.inf) -> ScenarioResult:
    """`concurrency` users each sending a new request when the previous one ends; beyond `max_sequences` (the
    engine's batch limit, or what the KV cache holds) they wait. Compiled engines run `max_sequences` slots."""
    n = len(r)
    c, i, o = _column(concurrency, n), _column(input_tokens, n), _column(output_tokens, n)
    limit = _column(max_sequences, n)
    active = np.minimum(c, limit)
    cycle, _, prefill, median = _cycle(r, active, i, o, np.where(np.isfinite(limit), limit, 0.0))
    throughput_requests = active / cycle
    e2e = c / throughput_requests  # Little's law over all users, waiting ones included
    ttft = prefill.total_s + (e2e - cycle)  # waiting for a free slot, then the own prefill
    tpot = _per_request_tpot(e2e, ttft, o)
    return ScenarioResult(
        ttft_p50_s=ttft[:, 0], ttft_mean_s=ttft[:, 0], tpot_p50_s=tpot[:, 0], tpot_mean_s=tpot[:, 0],
        itl_p50_s=median.total_s[:, 0], e2e_p50_s=e2e[:, 0], output_tokens_per_s=(throughput_requests * o)[:, 0],
        requests_per_s=throughput_requests[:, 0], concurrency=active[:, 0], saturated=(c > active)[:, 0],
        prefill=prefill, decode=median)


def poisson(r: ReplicaArrays, rate: Array | float, input_tokens: Array | float, output_tokens: Array | float,
            max_sequences: Array | float = np.inf, iterations: int = 40) -> ScenarioResult:
    """Poisson arrivals at `rate` per second: steady concurrency from Little's law, M/D/1 wait for prefill."""
    n = len(r)
    lam, i, o = _column(rate, n), _column(input_tokens, n), _column(output_tokens, n)
    cap = _column(max_sequences, n)
    compiled = np.where(np.isfinite(cap), cap, 0.0)
    cap = np.where(np.isfinite(cap), cap, 1e6)
    low, high = np.zeros_like(lam), cap.copy()
    for _ in range(iterations):  # bisection on C = rate x cycle(C); cycle grows with C
        mid = 0.5 * (low + high)
        cycle, *_ = _cycle(r, mid, i, o, compiled, samples=4)  # coarse decode average while searching
        too_few = lam * cycle > mid
        low, high = np.where(too_few, mid, low), np.where(too_few, high, mid)
    c = high
    cycle, interleaved, prefill, median = _cycle(r, c, i, o, compiled)
    saturated = lam * cycle > cap * (1.0 - 1e-6)
    busy = np.minimum(lam * interleaved, 0.999)  # share of time spent on other requests' prompts
    wait = busy * interleaved / (2.0 * (1.0 - busy))
    tpot = np.where(saturated, np.inf, _per_request_tpot(cycle + wait, prefill.total_s + wait, o))
    ttft = np.where(saturated, np.inf, prefill.total_s + wait)
    e2e = np.where(saturated, np.inf, cycle + wait)
    served = np.where(saturated, cap / cycle, lam)
    return ScenarioResult(
        ttft_p50_s=ttft[:, 0], ttft_mean_s=ttft[:, 0], tpot_p50_s=tpot[:, 0], tpot_mean_s=tpot[:, 0],
        itl_p50_s=median.total_s[:, 0], e2e_p50_s=e2e[:, 0], output_tokens_per_s=(served * o)[:, 0],
        requests_per_s=served[:, 0], concurrency=c[:, 0], saturated=saturated[:, 0], prefill=prefill,
        decode=median)


@dataclass(frozen=True)
class LoadPoint:
    """Steady state at a given number of sequences in flight: the arrival rate it serves and what requests see."""

    rate_per_s: Array
    ttft_s: Array  # own prefill + M/D/1 wait behind other prompts (mean-value)
    tpot_s: Array  # NaN for one output token
    stable: NDArray[np.bool_]  # False where prompts alone would keep the replica busy


def load_point(r: ReplicaArrays, active: Array | float, input_tokens: Array | float, output_tokens: Array | float,
               compiled_batch: Array | float = 0.0) -> LoadPoint:
    """The Poisson rate that keeps `active` sequences in flight (Little's law), with its TTFT and TPOT."""
    n = len(r)
    c, i, o = _column(active, n), _column(input_tokens, n), _column(output_tokens, n)
    cycle, interleaved, prefill, _ = _cycle(r, c, i, o, _column(compiled_batch, n), samples=8)
    rate = c / cycle
    busy = rate * interleaved
    stable = busy < 1.0
    wait = np.where(stable, busy * interleaved / (2.0 * (1.0 - np.minimum(busy, 0.999))), 0.0)
    ttft = np.where(stable, prefill.total_s + wait, np.inf)
    tpot = np.where(stable, _per_request_tpot(cycle + wait, prefill.total_s + wait, o), np.inf)
    return LoadPoint(rate[:, 0], ttft[:, 0], tpot[:, 0], stable[:, 0])


def smallest_compiled_batch(arrays: ReplicaArrays, rate: float, input_tokens: float, output_tokens: float,
                            max_sequences: int) -> int:
    """The smallest power-of-two compiled batch (up to what the KV cache holds) that keeps up with `rate`; when none
    does, the largest power of two the KV cache holds."""
    batch = 1
    while batch * 2 <= max_sequences:
        if not poisson(arrays, rate, input_tokens, output_tokens, batch).saturated[0]:
            return batch
        batch *= 2
    return batch
