"""Step-time model: how long one step of a replica takes, from first principles, written once.

A step costs the larger of its compute time (matmul + attention FLOPs at the achieved share of peak) and its
memory time (weights, touched experts and KV cache streamed at the achieved share of bandwidth), plus
tensor-parallel all-reduces over the link, plus a fixed per-step overhead.

Every formula here takes `StepConstants` whose fields are either floats (one configuration: what the simulator
asks, step by step, through `StepCost`) or numpy columns of shape (N, 1) that broadcast against per-configuration
batch arrays (thousands of configurations at once: `prefill_step`, `decode_step`). Both paths run the same
expressions; only the elementwise max/min helpers dispatch on the argument type, and `bucketed` writes its one
expression with numpy for arrays and with `math` for a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fleetwise.dtypes import ACTIVATION_BYTES
from fleetwise.perf.replica_arrays import MAX_WINDOW_GROUPS, Array, ReplicaArrays

NEURON_MIN_BUCKET = 128  # NxDI / transformers-neuronx auto-buckets are powers of two from 128 (engines.yaml)
Num = Any  # a float (one configuration) or a float64 array broadcasting over configurations


@dataclass(frozen=True, slots=True)
class StepConstants:
    """The step model's constants of one configuration (floats) or of many ((N, 1) columns)."""

    tp: Num
    flops_rate: Num  # achieved FLOP/s per rank
    byte_rate: Num  # achieved HBM bytes/s per rank
    link_rate: Num  # achieved link bytes/s per rank and direction (inf at TP=1)
    hop_s: Num  # latency of one hop of a ring all-reduce
    overhead_s: Num
    matmul_flops: Num  # per token, whole replica
    lm_head_flops: Num
    attention_flops: Num  # per attended token per layer
    layers: Num
    hidden: Num
    full_layers: Num
    windows: tuple[tuple[Num, Num], ...]  # (window size, layers with it)
    kv_bytes_per_token_layer: Num  # per rank
    dense_weight_bytes: Num
    expert_bytes: Num
    moe_layers: Num
    experts: Num
    expert_share: Num  # routed experts a token activates, as a share of all (0 for dense models)
    pads: Num  # true where prompts and contexts run in compiled power-of-two buckets (Neuron)
    chunked_prefill: Num  # true where the engine folds prompt chunks into decode steps


def _derive(get: Callable[[str], Num], windows: tuple[tuple[Num, Num], ...]) -> StepConstants:
    return StepConstants(
        tp=get("tp"), flops_rate=get("peak_flops") * get("compute_eff"),
        byte_rate=get("memory_bandwidth") * get("memory_eff"), link_rate=get("link_bandwidth") * get("comm_eff"),
        hop_s=get("allreduce_s"), overhead_s=get("overhead_s"), matmul_flops=get("matmul_flops_per_token"),
        lm_head_flops=get("lm_head_flops_per_token"), attention_flops=get("attention_flops_per_token_layer"),
        layers=get("layers"), hidden=get("hidden"), full_layers=get("full_layers"), windows=windows,
        kv_bytes_per_token_layer=get("kv_bytes_per_token_layer"), dense_weight_bytes=get("dense_weight_bytes"),
        expert_bytes=get("expert_bytes"), moe_layers=get("moe_layers"), experts=get("experts"),
        expert_share=get("experts_per_token") / _larger(get("experts"), 1.0), pads=get("pads_prompts"),
        chunked_prefill=get("chunked_prefill"))


def columns(r: ReplicaArrays) -> StepConstants:
    """The constants of every configuration as (N, 1) columns."""
    windows = tuple((r.window_size[:, g:g + 1], r.window_layers[:, g:g + 1]) for g in range(MAX_WINDOW_GROUPS))
    return _derive(lambda key: getattr(r, key)[:, None], windows)


def row(r: ReplicaArrays, index: int = 0) -> StepConstants:
    """The constants of configuration `index` as floats (windows without layers left out)."""
    windows = tuple((float(w), float(n)) for w, n in zip(r.window_size[index], r.window_layers[index], strict=True)
                    if n > 0)
    constants = _derive(lambda key: float(getattr(r, key)[index]), windows)
    return replace(constants, full_layers=int(constants.full_layers), pads=constants.pads > 0,
                   chunked_prefill=constants.chunked_prefill > 0)


# ---- elementwise helpers: the only places where floats and arrays take different code ---------------------

def _larger(a: Num, b: Num) -> Num:
    return np.maximum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else max(a, b)


def _smaller(a: Num, b: Num) -> Num:
    return np.minimum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else min(a, b)


# ---- the model ----------------------------------------------------------------------------------------

def bucketed(c: StepConstants, tokens: Num) -> Num:
    """Sequence length as executed: Neuron runs compiled power-of-two buckets of at least 128 tokens (the same
    expression in numpy for many configurations and in `math` for one)."""
    if isinstance(c.pads, np.ndarray):
        length = np.asarray(tokens, dtype=np.float64)
        bucket = np.maximum(2.0 ** np.ceil(np.log2(np.maximum(length, 1.0))), NEURON_MIN_BUCKET)
        return np.where(c.pads > 0, bucket, length)
    if not c.pads:
        return tokens
    return max(2.0 ** math.ceil(math.log2(max(tokens, 1.0))), NEURON_MIN_BUCKET)


def attended_tokens(c: StepConstants, context: Num) -> Num:
    """Tokens attended across all layers by one token at position `context` (windows cap their layers)."""
    return c.full_layers * context + sum(n * _smaller(w, context) for w, n in c.windows)


def causal_attended(c: StepConstants, start: Num, end: Num) -> Num:
    """Attended tokens, over all layers, of the prompt tokens at positions start+1..end (a causal prefill chunk)."""
    return _cumulative_attended(c, end) - _cumulative_attended(c, start)


def _cumulative_attended(c: StepConstants, p: Num) -> Num:
    total = c.full_layers * p * (p + 1.0) / 2.0
    for w, n in c.windows:
        capped = _smaller(p, w)  # positions past the window attend to the window only
        total = total + n * (capped * (capped + 1.0) / 2.0 + (p - capped) * w)
    return total


def step_parts(c: StepConstants, decode_seqs: Num, decode_attended: Num, prefill_tokens: Num,
               prefill_attended: Num, prefill_last: Num) -> tuple[Num, Num, Num, Num]:
    """(compute, memory, communication, overhead) seconds of one step that decodes `decode_seqs` sequences and
    prefills `prefill_tokens` prompt tokens.

    decode_attended / prefill_attended: attended tokens summed over tokens and layers; prefill_last: prompts whose
    last token is in this step (only those compute logits). Communication is two ring all-reduces of the hidden
    states per layer (after attention and after the MLP), each 2(tp-1) hops of fixed latency plus the ring's share
    of the bytes over the link; it vanishes at TP=1, where the link rate is infinite.
    """
    tokens = decode_seqs + prefill_tokens
    flops = (tokens * c.matmul_flops - (prefill_tokens - prefill_last) * c.lm_head_flops
             + (decode_attended + prefill_attended) * c.attention_flops)
    compute = flops / c.tp / c.flops_rate
    experts_touched = c.experts * (1.0 - (1.0 - c.expert_share) ** tokens)  # distinct experts per MoE layer,
    moved = (c.dense_weight_bytes + c.moe_layers * experts_touched * c.expert_bytes  # under uniform routing
             + (decode_attended + prefill_tokens * c.layers) * c.kv_bytes_per_token_layer)
    memory = moved / c.byte_rate
    transfer = 2.0 * (c.tp - 1.0) / c.tp * tokens * c.hidden * ACTIVATION_BYTES / c.link_rate
    communication = 2.0 * c.layers * (2.0 * (c.tp - 1.0) * c.hop_s + transfer)
    return compute, memory, communication, c.overhead_s


def total_s(parts: tuple[Num, Num, Num, Num]) -> Num:
    """Step time: compute and memory overlap, communication and overhead add."""
    compute, memory, communication, overhead = parts
    return _larger(compute, memory) + communication + overhead


# ---- many configurations at once ------------------------------------------------------------------------

@dataclass(frozen=True)
class StepTimes:
    """Seconds per step and what they are made of; arrays shaped like the batch arguments."""

    compute_s: Array
    memory_s: Array
    communication_s: Array
    overhead_s: Array

    @property
    def total_s(self) -> Array:
        """Step time: compute and memory overlap, communication and overhead add."""
        return np.asarray(total_s((self.compute_s, self.memory_s, self.communication_s, self.overhead_s)),
                          dtype=np.float64)


def _step_times(parts: tuple[Num, Num, Num, Num], shape: tuple[int, ...]) -> StepTimes:
    return StepTimes(*(np.broadcast_to(np.asarray(p, dtype=np.float64), shape) for p in parts))


def prefill_step(r: ReplicaArrays, batch: Array | float, prompt_tokens: Array | float) -> StepTimes:
    """One step that prefills `batch` prompts of `prompt_tokens` each (no cached prefix)."""
    c = columns(r)
    batch = np.asarray(batch, dtype=np.float64)
    prompt = bucketed(c, prompt_tokens)
    tokens = batch * prompt
    parts = step_parts(c, 0.0, 0.0, tokens, batch * causal_attended(c, 0.0, prompt), batch)
    return _step_times(parts, np.broadcast_shapes(np.shape(tokens), (len(r), 1)))


def decode_step(r: ReplicaArrays, batch: Array | float, context_tokens: Array | float) -> StepTimes:
    """One decode step for `batch` sequences that each hold `context_tokens` tokens."""
    c = columns(r)
    batch = np.asarray(batch, dtype=np.float64)
    attended = attended_tokens(c, bucketed(c, context_tokens))
    parts = step_parts(c, batch, batch * attended, 0.0, 0.0, 0.0)
    return _step_times(parts, np.broadcast_shapes(np.shape(batch), np.shape(attended), (len(r), 1)))


def mixed_step(r: ReplicaArrays, batch: Array | float, context_tokens: Array | float, chunk_tokens: Array | float,
               chunk_attended: Array | float, chunk_last: Array | float) -> StepTimes:
    """One step that decodes `batch` sequences of `context_tokens` each and prefills a prompt chunk (chunked
    prefill): `chunk_attended` attended tokens over its tokens and layers, `chunk_last` prompts ending in it."""
    c = columns(r)
    batch = np.asarray(batch, dtype=np.float64)
    attended = attended_tokens(c, bucketed(c, context_tokens))
    parts = step_parts(c, batch, batch * attended, chunk_tokens, chunk_attended, chunk_last)
    return _step_times(parts, np.broadcast_shapes(np.shape(batch), np.shape(attended), np.shape(chunk_tokens),
                                                  (len(r), 1)))


# ---- one configuration, step by step: the simulator's predictor ----------------------------------------------

AFFINE_REFERENCE = float(2 ** 30)  # how far each argument is moved to read a slope (a power of two: exact division)


class AffineStep:
    """`step_parts` as affine functions of the step's five arguments (decode sequences, decode attended, prefill
    tokens, prefill attended, prompts ending): read off the formula by evaluating it, not written again.

    Every part is affine in those arguments except through the experts a step touches, which depend on its token
    count: for a model without experts one form holds everywhere; for one with experts a form holds at the token
    count it was read at, moving only the arguments that leave that count alone.
    """

    __slots__ = ("compute", "memory", "other")

    def __init__(self, constants: StepConstants, base: tuple[float, float, float, float, float],
                 moved: tuple[int, ...]) -> None:
        at_base = step_parts(constants, *base)
        forms = [[float(at_base[part])] + [0.0] * 5 for part in range(3)]
        forms[2][0] += float(at_base[3])  # the overhead joins communication: neither overlaps anything
        for index in moved:
            point = list(base)
            point[index] += AFFINE_REFERENCE
            at_point = step_parts(constants, *point)
            for part in range(3):
                slope = float(at_point[part] - at_base[part]) / AFFINE_REFERENCE
                forms[part][index + 1] = slope
                forms[part][0] -= slope * base[index]
        self.compute: tuple[float, ...] = tuple(forms[0])
        self.memory: tuple[float, ...] = tuple(forms[1])
        self.other: tuple[float, ...] = tuple(forms[2])

    def seconds(self, decode_seqs: float, decode_attended: float, prefill_tokens: float, prefill_attended: float,
                prefill_last: float) -> tuple[float, bool]:
        """(step seconds, compute-bound) at these arguments."""
        c, m, o = self.compute, self.memory, self.other
        compute = (c[0] + c[1] * decode_seqs + c[2] * decode_attended + c[3] * prefill_tokens
                   + c[4] * prefill_attended + c[5] * prefill_last)
        memory = (m[0] + m[1] * decode_seqs + m[2] * decode_attended + m[3] * prefill_tokens
                  + m[4] * prefill_attended + m[5] * prefill_last)
        other = (o[0] + o[1] * decode_seqs + o[2] * decode_attended + o[3] * prefill_tokens
                 + o[4] * prefill_attended + o[5] * prefill_last)
        return max(compute, memory) + other, compute > memory


class StepCost:
    """Step times of one replica for the simulator: the model above on one configuration's float constants.

    The simulator prices one step at a time (a mix of decode tokens and prefill chunks); floats are an order of
    magnitude faster than numpy for one value, and the formulas are the same functions `prefill_step` and
    `decode_step` use (tests check both paths agree).
    """

    __slots__ = ("_attended", "_buckets", "_cumulative", "_decode_forms", "_everywhere", "chunked_prefill",
                 "constants", "full_layers", "pads", "windows")
    CACHE_LIMIT = 1 << 16  # memoised lengths per table (bounded: a long run sees many contexts)

    def __init__(self, constants: StepConstants) -> None:
        self.constants = constants
        self.pads: bool = bool(constants.pads)
        self.chunked_prefill: bool = bool(constants.chunked_prefill)
        self.full_layers: int = int(constants.full_layers)
        self.windows: tuple[tuple[float, float], ...] = constants.windows
        self._buckets: dict[float, float] = {}  # memoised bucket and attended-token figures: the simulator asks
        self._attended: dict[float, float] = {}  # for the same lengths over and over
        self._cumulative: dict[float, float] = {}
        # the step model as affine forms (exact; see AffineStep): one for every step of a model without experts,
        # else one per decode batch size, with prompt steps priced by the formula itself
        self._everywhere: AffineStep | None = None
        if not constants.experts:
            self._everywhere = AffineStep(constants, (0.0, 0.0, 0.0, 0.0, 0.0), (0, 1, 2, 3, 4))
        self._decode_forms: dict[float, AffineStep] = {}

    @classmethod
    def from_arrays(cls, r: ReplicaArrays, index: int = 0) -> StepCost:
        """The predictor for configuration `index` of packed arrays."""
        return cls(row(r, index))

    def step_s(self, decode_seqs: float, decode_attended: float, prefill_tokens: float, prefill_attended: float,
               prefill_last: float) -> float:
        """One step that decodes `decode_seqs` sequences and prefills `prefill_tokens` prompt tokens (see
        `step_parts`); an empty step takes no time."""
        if decode_seqs + prefill_tokens <= 0:
            return 0.0
        if self._everywhere is not None:
            return self._everywhere.seconds(decode_seqs, decode_attended, prefill_tokens, prefill_attended,
                                            prefill_last)[0]
        if prefill_tokens == 0:
            return self.decode_s(decode_seqs, decode_attended)[0]
        return float(total_s(step_parts(self.constants, decode_seqs, decode_attended, prefill_tokens,
                                        prefill_attended, prefill_last)))

    def decode_s(self, seqs: float, attended: float) -> tuple[float, bool]:
        """A decode step of `seqs` sequences attending to `attended` tokens: (seconds, compute-bound)."""
        form = self._everywhere
        if form is None:
            form = self._decode_forms.get(seqs)
            if form is None:
                if len(self._decode_forms) >= self.CACHE_LIMIT:
                    self._decode_forms.clear()
                form = self._decode_forms[seqs] = AffineStep(self.constants, (seqs, 0.0, 0.0, 0.0, 0.0), (1,))
        return form.seconds(seqs, attended, 0.0, 0.0, 0.0)

    def bucket(self, tokens: float) -> float:
        """Length as executed (compiled engines: power-of-two buckets of at least 128 tokens)."""
        value = self._buckets.get(tokens)
        if value is None:
            value = bucketed(self.constants, tokens)
            self._remember(self._buckets, tokens, value)
        return value

    def attended(self, context: float) -> float:
        """Tokens attended over all layers by one token at position `context`."""
        value = self._attended.get(context)
        if value is None:
            value = attended_tokens(self.constants, context)
            self._remember(self._attended, context, value)
        return value

    def _remember(self, table: dict[float, float], key: float, value: float) -> None:
        if len(table) >= self.CACHE_LIMIT:
            table.clear()
        table[key] = value

    def causal_attended(self, start: float, end: float) -> float:
        """Attended tokens, over all layers, of the prompt tokens at positions start+1..end."""
        return self._cumulative_attended(end) - self._cumulative_attended(start)

    def _cumulative_attended(self, position: float) -> float:
        value = self._cumulative.get(position)
        if value is None:
            value = float(_cumulative_attended(self.constants, position))
            self._remember(self._cumulative, position, value)
        return value
