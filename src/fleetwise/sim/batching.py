"""How an engine batches: continuous batching with chunked prefill (GPU engines), or compiled shapes (Neuron).

The scheduler and the replica ask the policy what a decode step computes and what a prompt chunk costs; the
engine profile's `compiled_shapes` fact picks the policy, so no other code branches on compiled shapes (chunked
prefill, another profile fact, decides in the scheduler how far a prompt gets per step).
"""

from __future__ import annotations

from fleetwise.perf.step_time import StepCost
from fleetwise.sim.decode_batch import DecodeBatch


class ContinuousBatching:
    """vLLM-style: every step decodes one token per running sequence and fills the rest of the token budget with
    prompt chunks (whole prompts where the engine has no chunked prefill); shapes follow the work."""

    decodes_with_prefill = True  # a step with prompt work also decodes the running sequences
    one_prompt_per_step = False
    flat_within_cap = False  # decode step time changes from step to step as contexts grow

    def __init__(self, cost: StepCost, max_seqs: int) -> None:
        self.cost = cost
        self.linear_decode = not cost.windows  # attended tokens grow by exactly seqs x layers per step

    def decode_load(self, batch: DecodeBatch, ahead: int = 0) -> tuple[float, float]:
        """(sequences decoding, attended tokens over them and all layers) `ahead` steps from now."""
        g = batch.step + ahead
        if self.linear_decode:
            return float(len(batch.offsets)), self.cost.full_layers * float(batch.offset_sum + len(batch.offsets) * g)
        attended = self.cost.attended
        return float(len(batch.offsets)), sum(attended(o + g) for o in batch.offsets.values())

    def prompt_tokens(self, start: float, end: float) -> float:
        """Tokens a prompt chunk computes."""
        return end - start

    def prompt_attended(self, start: float, end: float) -> float:
        """Attended tokens of a prompt chunk, over its tokens and all layers."""
        return self.cost.causal_attended(start, end)

    def full_batch_decode(self, seqs: float, context: float) -> tuple[float, float]:
        """(sequences, attended tokens) of a decode step of `seqs` sequences that each hold `context` tokens."""
        return seqs, seqs * self.cost.attended(context)

    def segment_cap(self, batch: DecodeBatch, steps: int) -> int:
        """Decode steps that can be priced as one segment (no cap: contexts are not bucketed)."""
        return steps


class CompiledBatch:
    """Neuron: batch and sequence shapes are compiled. A prompt is prefilled alone, whole, in a power-of-two
    bucket, while decoding waits; every decode step runs the full compiled batch over the bucket of the longest
    context."""

    decodes_with_prefill = False
    one_prompt_per_step = True
    linear_decode = False
    flat_within_cap = True  # every step of a stretch within one bucket costs the same

    def __init__(self, cost: StepCost, max_seqs: int) -> None:
        self.cost = cost
        self.slots = float(max_seqs)

    def decode_load(self, batch: DecodeBatch, ahead: int = 0) -> tuple[float, float]:
        """(compiled batch, attended tokens over it and all layers) `ahead` steps from now."""
        return self.slots, self.slots * self.cost.attended(self.cost.bucket(batch.longest() + ahead))

    def prompt_tokens(self, start: float, end: float) -> float:
        """Tokens a prompt computes: up to its bucket."""
        return self.cost.bucket(end) - start

    def prompt_attended(self, start: float, end: float) -> float:
        """Attended tokens of a prompt, up to its bucket."""
        return self.cost.causal_attended(start, self.cost.bucket(end))

    def full_batch_decode(self, seqs: float, context: float) -> tuple[float, float]:
        """(compiled batch, attended tokens) of a decode step whatever `seqs`: every slot, in the context's bucket."""
        return self.slots, self.slots * self.cost.attended(self.cost.bucket(context))

    def segment_cap(self, batch: DecodeBatch, steps: int) -> int:
        """Decode steps before the longest context crosses into the next bucket."""
        longest = batch.longest()
        return max(min(steps, int(self.cost.bucket(longest) - longest) + 1), 1)


BatchPolicy = ContinuousBatching | CompiledBatch


def batch_policy(cost: StepCost, max_seqs: int) -> BatchPolicy:
    """The policy of the engine a step model was built for."""
    return CompiledBatch(cost, max_seqs) if cost.pads else ContinuousBatching(cost, max_seqs)
