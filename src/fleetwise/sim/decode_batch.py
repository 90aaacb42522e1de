"""The sequences a replica is decoding, tracked so that many decode steps can be priced and counted at once.

Every decode step adds one token to every sequence, so a sequence is stored as its context minus the step
counter (`offsets`): contexts advance without touching each sequence. Offsets are also counted by residue
modulo the KV block size, which gives the blocks the batch needs for the next k steps without a loop over
sequences, and their sum gives the attended tokens of full-attention models in closed form.
"""

from __future__ import annotations

import heapq

from fleetwise.sim.block_manager import BlockManager


class DecodeBatch:
    """Decoding sequences: contexts relative to the step counter, block needs by residue, finish steps."""

    __slots__ = ("_max_offset", "block_tokens", "finish_at", "offset_sum", "offsets", "residues", "step")

    def __init__(self, block_tokens: int) -> None:
        self.block_tokens = block_tokens
        self.step = 0  # decode steps run so far
        self.offsets: dict[int, int] = {}  # request -> context minus `step`
        self.offset_sum = 0
        self.residues = [0] * block_tokens  # offsets counted by residue mod block size
        self.finish_at: list[tuple[int, int]] = []  # heap of (step at which it finishes, request)
        self._max_offset: int | None = None  # the largest offset, kept while it is known

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, request: int, context: int, remaining: int) -> None:
        """Start decoding a request that holds `context` tokens and has `remaining` steps to run."""
        offset = context - self.step
        self.offsets[request] = offset
        if self._max_offset is not None and offset > self._max_offset:
            self._max_offset = offset
        self.offset_sum += offset
        self.residues[offset % self.block_tokens] += 1
        heapq.heappush(self.finish_at, (self.step + remaining, request))

    def remove(self, request: int) -> int:
        """Stop tracking a request (finished or preempted); returns its current context."""
        offset = self.offsets.pop(request)
        if offset == self._max_offset:
            self._max_offset = None
        self.offset_sum -= offset
        self.residues[offset % self.block_tokens] -= 1
        return offset + self.step

    def drop_finish(self, request: int) -> None:
        """Forget a preempted request's finish step."""
        self.finish_at = [(s, r) for s, r in self.finish_at if r != request]
        heapq.heapify(self.finish_at)

    def steps_to_next_finish(self) -> int:
        """Decode steps until the next sequence finishes."""
        return self.finish_at[0][0] - self.step

    def finished(self) -> list[int]:
        """Requests whose last step has run, removed from the finish heap (their contexts still tracked)."""
        done = []
        while self.finish_at and self.finish_at[0][0] <= self.step:
            done.append(heapq.heappop(self.finish_at)[1])
        return done

    def longest(self) -> int:
        """The longest context being decoded."""
        if self._max_offset is None:
            self._max_offset = max(self.offsets.values())
        return self._max_offset + self.step

    def new_blocks(self, steps: int) -> int:
        """Blocks the batch needs to grow by `steps` tokens per sequence.

        A sequence of context c holds KV for s = c - 1 tokens; `steps` more need ((s - 1) mod B + steps) // B new
        blocks of B tokens, so counting offsets by residue gives the total without visiting every sequence.
        """
        bt = self.block_tokens
        whole, rest = divmod(steps, bt)
        need = len(self.offsets) * whole
        if rest:  # sequences whose residue lies in a cyclic window of `rest` residues cross one more boundary
            start = (bt - rest - (self.step - 2)) % bt
            end = start + rest
            counts = self.residues
            need += sum(counts[start:end]) if end <= bt else sum(counts[start:]) + sum(counts[:end - bt])
        return need

    def steps_before_shortage(self, horizon: int, blocks: BlockManager) -> int:
        """Decode steps (up to `horizon`) before some sequence needs a block the replica cannot free."""
        free = blocks.free()
        if free >= len(self.offsets) * (horizon // self.block_tokens + 1):
            return horizon  # even the worst case fits: no need to count exactly
        needed = self.new_blocks(horizon)
        if free >= needed:
            return horizon
        free += blocks.evictable()
        if free >= needed:
            return horizon
        low, high = 1, horizon
        while low < high:  # largest k whose growth fits
            mid = (low + high + 1) // 2
            if self.new_blocks(mid) <= free:
                low = mid
            else:
                high = mid - 1
        return low if self.new_blocks(low) <= free else 0

    def clear(self) -> None:
        """Forget every sequence (the replica went away)."""
        self.offsets.clear()
        self._max_offset = None
        self.offset_sum = 0
        self.residues = [0] * self.block_tokens
        self.finish_at.clear()
