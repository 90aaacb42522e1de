"""A replica's scheduler: waiting queue, admission, chunked prefill, KV blocks and preemption.

It follows vLLM's V1 scheduler (vllm/v1/core/sched/scheduler.py, `Scheduler.schedule`, release v0.8.3, read
2026-11-29): each step first serves the running requests (one decode token each, then the rest of the running
prompts' chunks), allocating the KV blocks each needs; when a running request cannot get them, they come from
the most recently admitted running request: a decoding one is preempted (recompute: it gives back its blocks and
waits at the head of the queue, its prompt and the tokens it generated to be recomputed), a prompt part-way
through its prefill gives back only its last blocks and waits with the rest (vLLM keeps a preempted request's
computed blocks in its prefix cache and hits them again), and a prompt that is itself the newest waits. Then, only
if that step preempted nobody, waiting requests are admitted in arrival order while sequence slots and the token
budget (`max_batched_tokens`) last, each with the KV blocks of the whole chunk it is scheduled: a request whose
chunk does not fit waits, and nothing behind it is admitted. Whole blocks of a shared prefix, and a
conversation's context after each turn, stay in the prefix cache.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from fleetwise.sim.batching import BatchPolicy
from fleetwise.sim.block_manager import BlockManager
from fleetwise.sim.decode_batch import DecodeBatch
from fleetwise.sim.request_log import RequestRecord
from fleetwise.workload.requests import Requests

Chunk = tuple[int, int, int]  # (request, first prompt token computed, end)


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """Scheduler limits of one replica, from the memory fit and the engine's profile (engines.yaml)."""

    kv_blocks: int  # KV-cache blocks per replica
    block_tokens: int  # tokens per KV block
    max_seqs: int  # sequence slots (vLLM max_num_seqs; the compiled batch on Neuron)
    max_batched_tokens: int  # token budget per step (vLLM max_num_batched_tokens)
    prefix_caching: bool


class Scheduler:
    """Which requests run, how far each prompt gets this step, and who is preempted when blocks run out."""

    __slots__ = ("admitted", "batch", "blocks", "index", "log", "output_tokens", "policy", "preempted_in_step",
                 "prefilling", "prefix_id", "prefix_tokens", "prompt_tokens", "session_id", "settings", "target",
                 "waiting")

    def __init__(self, index: int, settings: ReplicaSettings, requests: Requests, log: RequestRecord,
                 policy: BatchPolicy) -> None:
        self.index = index
        self.settings = settings
        columns = requests.columns  # the request figures as lists, held here: compiled, one attribute read each
        self.prompt_tokens = columns.prompt_tokens
        self.output_tokens = columns.output_tokens
        self.prefix_id = columns.prefix_id
        self.prefix_tokens = columns.prefix_tokens
        self.session_id = columns.session_id
        self.log = log
        self.policy = policy
        self.blocks = BlockManager(settings.kv_blocks, settings.block_tokens)
        self.batch = DecodeBatch(settings.block_tokens)
        self.waiting: deque[int] = deque()
        self.target: dict[int, int] = {}  # prompt tokens to (re)compute per admitted or waiting request
        self.prefilling: dict[int, int] = {}  # admitted, prompt tokens computed so far
        self.admitted: dict[int, None] = {}  # running requests in admission order (preempt from the end)
        self.preempted_in_step = False  # a step that preempted admits nobody (vLLM: `if not preempted_reqs`)

    @property
    def outstanding(self) -> int:
        """Requests queued or running."""
        return len(self.waiting) + len(self.prefilling) + len(self.batch.offsets)

    def enqueue(self, request: int) -> None:
        """Queue a request; one whose prompt and output can never fit the whole KV cache is dropped."""
        self.log.replica[request] = self.index
        total = self.prompt_tokens[request] + self.output_tokens[request]
        if self.blocks.blocks(total) > self.settings.kv_blocks:
            self.log.dropped[request] = "prompt + output exceed the replica's whole KV cache"
            return
        self.target[request] = self.prompt_tokens[request]
        self.waiting.append(request)

    def can_schedule(self) -> bool:
        """True when the next step has prompt work: a partial prefill, or a waiting request whose first chunk
        gets its KV blocks after the running sequences have grown theirs."""
        if self.prefilling:
            oldest = next(iter(self.prefilling))
            if len(self.prefilling) > 1 or next(reversed(self.admitted)) != oldest:
                return True  # it can take blocks from newer requests
            request, start, entry = oldest, self.prefilling[oldest], -1  # the newest: it waits for free blocks
        elif not self.waiting or len(self.batch.offsets) >= self.settings.max_seqs:
            return False
        else:
            request = self.waiting[0]
            start, entry = self._cached_start(request)
        budget = self.budget()
        if budget <= 0:
            return False
        need = self._chunk_blocks(request, start, budget)
        if self.policy.decodes_with_prefill:
            need += max(self.batch.new_blocks(1), 0)
        blocks = self.blocks
        free = blocks.free()
        if free >= need:
            return True
        evictable = blocks.evictable()
        if entry >= 0 and not blocks.users.get(entry):
            evictable -= blocks.cache[entry]  # the entry it would use is pinned, not evicted
        return free + evictable >= need

    def budget(self) -> int:
        """Prompt tokens a step may compute: the token budget less one per decoding sequence (chunked prefill)."""
        decoding = len(self.batch.offsets) if self.policy.cost.chunked_prefill else 0
        return self.settings.max_batched_tokens - decoding

    def _cached_start(self, request: int) -> tuple[int, int]:
        """(prompt tokens a prefix-cache hit would skip, the cached entry hit or -1), without pinning it."""
        prefix = self.prefix_id[request]
        if not self.settings.prefix_caching or prefix < 0 or prefix not in self.blocks.cache:
            return 0, -1
        return self.blocks.hit_tokens(prefix, self.target[request]), prefix

    def _chunk_end(self, request: int, start: int, budget: int) -> int:
        """Where this step's chunk of a prompt ends: the whole prompt, or the token budget's worth (chunked)."""
        target = self.target[request]
        return min(target, start + budget) if self.policy.cost.chunked_prefill else target

    def _chunk_blocks(self, request: int, start: int, budget: int) -> int:
        """New KV blocks a chunk starting at `start` needs (blocks before `start` are held already)."""
        return self.blocks.blocks(self._chunk_end(request, start, budget)) - self.blocks.blocks(start)

    # ---- one step with prompt work ------------------------------------------------------------------

    def start_step(self, now: float) -> None:
        """Begin a step with prompt work: the decoding sequences get the block for their next token first."""
        self.preempted_in_step = False
        if self.batch.offsets and self.policy.decodes_with_prefill:
            self.grow_decode_blocks(1, now)

    def chunks(self, budget: int, now: float) -> list[Chunk]:
        """Prompt chunks for this step: running prefills first (preempting when their blocks run out), then, if
        nobody was preempted, admissions while slots, budget and blocks for each whole chunk last."""
        chunks: list[Chunk] = []
        for request in list(self.prefilling):
            if budget <= 0:
                break
            if request not in self.prefilling:
                continue  # preempted to make room for an older prompt's chunk
            start = self.prefilling[request]
            end = self._chunk_end(request, start, budget)
            if not self._allocate_running(request, start, end, now):
                break  # it preempted itself: nothing newer is left running
            chunks.append((request, start, end))
            budget -= end - start
        if self.preempted_in_step:
            return chunks
        one_prompt = self.policy.one_prompt_per_step
        while (budget > 0 and self.waiting and len(self.prefilling) + len(self.batch.offsets) < self.settings.max_seqs
               and not (one_prompt and chunks)):
            request = self.waiting[0]
            admitted = self._admit(request, budget, now)
            if admitted is None:
                break
            start = admitted
            self.waiting.popleft()
            if math.isnan(self.log.admitted_s[request]):
                self.log.admitted_s[request] = now
            self.prefilling[request] = start
            self.admitted[request] = None
            end = self._chunk_end(request, start, budget)
            chunks.append((request, start, end))
            budget -= end - start
        return chunks

    def _allocate_running(self, request: int, start: int, end: int, now: float) -> bool:
        """Blocks for a running prompt's chunk, preempting the newest running requests until they fit; False if
        the request itself had to go."""
        blocks = self.blocks
        need = blocks.blocks(end) - blocks.blocks(start)
        while need > 0 and not blocks.make_room(need, now):
            if next(reversed(self.admitted)) == request:
                self.preempted_in_step = True  # it waits, keeping what it computed, and nobody overtakes it
                return False
            self.free_from_newest(need - max(blocks.free(), 0))
        blocks.used += max(need, 0)
        return True

    def _admit(self, request: int, budget: int, now: float) -> int | None:
        """Where an admitted request's prefill starts (after a cached prefix), with the blocks of its whole first
        chunk allocated; None if they cannot be (it waits)."""
        start, prefix = self._cached_start(request)
        if prefix >= 0:
            self.blocks.pin(request, prefix)
        need = self._chunk_blocks(request, start, budget)
        if not self.blocks.make_room(need, now):
            self.blocks.unpin(request)
            return None
        self.blocks.used += need
        if prefix >= 0:
            self.blocks.cache.move_to_end(prefix)
            self.blocks.shared[request] = start // self.settings.block_tokens
            # once per request: a re-admission after preemption or a requeue is not a new hit
            served = min(start, self.prefix_tokens[request])
            self.log.prefix_hit_tokens[request] = max(self.log.prefix_hit_tokens[request], served)
        return start

    def complete_chunks(self, chunks: list[Chunk], now: float) -> list[int]:
        """Record the step's progress; prompts that finished produced their first token. Returns requests that
        finished outright (one output token)."""
        done = []
        for request, _, end in chunks:
            self.prefilling[request] = end
            if end >= self.target[request] and self._prefill_done(request, now):
                done.append(request)
        return done

    def _prefill_done(self, request: int, now: float) -> bool:
        """The step that computed a prompt's last token also produced the first output token; True if that was
        the last one."""
        del self.prefilling[request]
        if math.isnan(self.log.first_token_s[request]):
            self.log.first_token_s[request] = now
        prefix = self.prefix_id[request]
        target = self.target[request]
        if prefix >= 0 and self.settings.prefix_caching and prefix not in self.blocks.cache:
            # only whole blocks are shared; they pass from this request to the cache
            self.blocks.cache_prefix(request, prefix, min(self.prefix_tokens[request], target), now)
        generated = target - self.prompt_tokens[request]
        remaining = self.output_tokens[request] - 1 - generated
        if remaining <= 0:
            self.retire(request, target, now)
            return True
        self.batch.add(request, target + 1, remaining)
        return False

    def unstick(self) -> None:
        """No prompt got a block and nothing decodes: free blocks by preempting the newest running request; if it
        is the only one, it cannot be served here and is dropped, so the replica always makes progress."""
        if self.preempted_in_step:
            return  # this step freed blocks already; the next one admits
        if len(self.admitted) > 1 or self.batch.offsets:
            self.preempt_newest()
            return
        if not self.admitted:
            request = self.waiting.popleft()
            self.log.dropped[request] = "its prompt does not fit beside the cached prefixes in use"
            return
        request, _ = self.admitted.popitem()
        self.blocks.release(request, self.prefilling.pop(request))
        self.blocks.unpin(request)
        self.target.pop(request, None)
        self.log.dropped[request] = "its prompt does not fit the free KV blocks"

    # ---- decode blocks and preemption ---------------------------------------------------------------

    def grow_decode_blocks(self, steps: int, now: float) -> None:
        """Allocate the blocks decoding sequences need for `steps` more tokens, preempting when none are left."""
        batch, blocks = self.batch, self.blocks
        while batch.offsets:
            need = batch.new_blocks(steps)
            if need <= 0 or blocks.make_room(need, now):
                blocks.used += max(need, 0)
                return
            self.free_from_newest(need - max(blocks.free(), 0))

    def free_from_newest(self, shortfall: int) -> None:
        """Free blocks from the most recently admitted running request. A prompt part-way through its prefill
        gives back only its last `shortfall` blocks and resumes from what it keeps: vLLM keeps a preempted
        request's computed blocks in its prefix cache, evicts them last block first, and hits the rest when the
        request is admitted again. Anything else is preempted whole (recomputed later)."""
        request = next(reversed(self.admitted))
        computed = self.prefilling.get(request)
        if computed is None:
            self.preempt_newest()
            return
        held = self.blocks.blocks(computed)
        if shortfall >= held - self.blocks.shared.get(request, 0):
            self.preempt_newest()
            return
        self.prefilling[request] = (held - shortfall) * self.settings.block_tokens
        self.blocks.used -= shortfall
        self.preempted_in_step = True

    def preempt_newest(self) -> None:
        """Recompute preemption: the most recently admitted running request gives back its blocks and waits."""
        request, _ = self.admitted.popitem()
        self.preempted_in_step = True
        if request in self.batch.offsets:
            context = self.batch.remove(request)
            self.batch.drop_finish(request)
            self.target[request] = context - 1  # its prompt plus what it generated is recomputed
            self.blocks.release(request, context - 1)
        else:
            self.blocks.release(request, self.prefilling.pop(request))
        self.blocks.unpin(request)
        self.log.preemptions[request] += 1
        self.waiting.appendleft(request)

    # ---- finishing and going away -------------------------------------------------------------------

    def retire(self, request: int, stored_tokens: int, now: float) -> None:
        """A finished request gives back its blocks; in a conversation, its context stays cached for the next turn."""
        session = self.session_id[request]
        if session >= 0 and self.settings.prefix_caching:
            self.blocks.cache_conversation(request, session, stored_tokens, now)
        self.blocks.release(request, stored_tokens)
        self.log.finish_s[request] = now
        del self.admitted[request]
        self.blocks.unpin(request)
        self.target.pop(request, None)

    def retire_finished(self, now: float) -> list[int]:
        """Retire every decoding request whose last step has run; returns them."""
        done = self.batch.finished()
        for request in done:
            self.retire(request, self.batch.remove(request) - 1, now)
        return done

    def evict(self) -> list[int]:
        """Give up every request held here (the replica is going away): they restart elsewhere, from scratch."""
        held = [*self.waiting, *self.prefilling, *self.batch.offsets]
        for request in held:
            self.target[request] = self.prompt_tokens[request]
            self.blocks.unpin(request)
        self.waiting.clear()
        self.prefilling.clear()
        self.batch.clear()
        self.admitted.clear()
        self.blocks.shared.clear()
        self.blocks.used = 0
        return held
