"""Step times for the simulator: the performance model's constants for one replica, evaluated with scalars.

The simulator prices one step at a time, mixing decode tokens and prefill chunks, so it reads the very same
constants as `fleetwise.perf.step_time` (no second timing model) and evaluates them with plain floats, which
is an order of magnitude faster than numpy for one value. Tests check both agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetwise.dtypes import ACTIVATION_BYTES
from fleetwise.perf.step_time import NEURON_MIN_BUCKET, ReplicaArrays


@dataclass(frozen=True, slots=True)
class StepCost:
    """Scalar constants of one replica's step-time model."""

    tp: float
    flops_rate: float  # achieved FLOP/s per rank
    byte_rate: float  # achieved HBM bytes/s per rank
    link_rate: float  # achieved link bytes/s per rank and direction
    hop_s: float
    overhead_s: float
    matmul_flops: float  # per token, whole replica
    lm_head_flops: float
    attention_flops: float  # per attended token per layer
    layers: float
    hidden: float
    full_layers: int
    windows: tuple[tuple[float, float], ...]  # (window size, layers with it)
    kv_bytes_per_token_layer: float  # per rank
    dense_weight_bytes: float
    expert_bytes: float
    moe_layers: float
    experts: float
    experts_per_token: float
    pads: bool  # compiled shapes: power-of-two buckets, full compiled batch every step
    chunked_prefill: bool

    @classmethod
    def from_arrays(cls, r: ReplicaArrays, index: int = 0) -> StepCost:
        """The constants of configuration `index` of a packed ReplicaArrays."""
        def f(key: str) -> float:
            return float(getattr(r, key)[index])
        windows = tuple((float(w), float(n)) for w, n in zip(r.window_size[index], r.window_layers[index],
                                                               strict=True) if n > 0)
        return cls(
            tp=f("tp"), flops_rate=f("peak_flops") * f("compute_eff"),
            byte_rate=f("memory_bandwidth") * f("memory_eff"), link_rate=f("link_bandwidth") * f("comm_eff"),
            hop_s=f("allreduce_s"), overhead_s=f("overhead_s"), matmul_flops=f("matmul_flops_per_token"),
            lm_head_flops=f("lm_head_flops_per_token"), attention_flops=f("attention_flops_per_token_layer"),
            layers=f("layers"), hidden=f("hidden"), full_layers=int(f("full_layers")), windows=windows,
            kv_bytes_per_token_layer=f("kv_bytes_per_token_layer"), dense_weight_bytes=f("dense_weight_bytes"),
            expert_bytes=f("expert_bytes"), moe_layers=f("moe_layers"), experts=f("experts"),
            experts_per_token=f("experts_per_token"), pads=f("pads_prompts") > 0,
            chunked_prefill=f("chunked_prefill") > 0)

    def bucket(self, tokens: float) -> float:
        """Length as executed: compiled engines run power-of-two buckets of at least 128 tokens."""
        if not self.pads:
            return tokens
        return max(2.0 ** math.ceil(math.log2(max(tokens, 1.0))), NEURON_MIN_BUCKET)

    def attended(self, context: float) -> float:
        """Tokens attended over all layers by one token at position `context`."""
        return self.full_layers * context + sum(n * min(w, context) for w, n in self.windows)

    def causal_attended(self, start: float, end: float) -> float:
        """Attended tokens, over all layers, of the prompt tokens at positions start+1..end (a prefill chunk)."""
        def cumulative(p: float) -> float:
            total = self.full_layers * p * (p + 1.0) / 2.0
            for w, n in self.windows:
                total += n * (p * (p + 1.0) / 2.0 if p <= w else w * (w + 1.0) / 2.0 + (p - w) * w)
            return total
        return cumulative(end) - cumulative(start)

    def decode_compute_bound(self, seqs: float, attended: float) -> bool:
        """True when a decode step of `seqs` sequences is bound by compute rather than memory."""
        compute = (seqs * self.matmul_flops + attended * self.attention_flops) / self.tp / self.flops_rate
        touched = self.experts * (1.0 - (1.0 - self.experts_per_token / self.experts) ** seqs) if self.experts else 0.0
        memory = (self.dense_weight_bytes + self.moe_layers * touched * self.expert_bytes
                  + attended * self.kv_bytes_per_token_layer) / self.byte_rate
        return compute > memory

    def step_s(self, decode_seqs: float, decode_attended: float, prefill_tokens: float, prefill_attended: float,
               prefill_last_tokens: float) -> float:
        """One step that decodes `decode_seqs` sequences and prefills `prefill_tokens` prompt tokens.

        decode_attended / prefill_attended: attended tokens summed over layers and tokens; prefill_last_tokens:
        prompts whose last token is in this step (only those compute logits).
        """
        tokens = decode_seqs + prefill_tokens
        if tokens <= 0:
            return 0.0
        flops = (tokens * self.matmul_flops - (prefill_tokens - prefill_last_tokens) * self.lm_head_flops
                 + (decode_attended + prefill_attended) * self.attention_flops)
        compute = flops / self.tp / self.flops_rate
        touched = 0.0
        if self.experts > 0:
            touched = self.experts * (1.0 - (1.0 - self.experts_per_token / self.experts) ** tokens)
        moved = (self.dense_weight_bytes + self.moe_layers * touched * self.expert_bytes
                 + (decode_attended + prefill_tokens * self.layers) * self.kv_bytes_per_token_layer)
        memory = moved / self.byte_rate
        comm = 0.0
        if self.tp > 1:
            transfer = 2.0 * (self.tp - 1.0) / self.tp * tokens * self.hidden * ACTIVATION_BYTES / self.link_rate
            comm = 2.0 * self.layers * (2.0 * (self.tp - 1.0) * self.hop_s + transfer)
        return max(compute, memory) + comm + self.overhead_s
