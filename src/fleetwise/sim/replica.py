"""One serving replica under continuous batching: admission, chunked prefill, paged KV with preemption, prefix cache.

The replica follows vLLM's scheduler in outline: every step decodes one token for each running sequence and
spends the rest of the token budget on prompt chunks (waiting requests are admitted in arrival order while
sequence slots and KV blocks last); a sequence that needs a KV block when none is free preempts the most
recently admitted sequence, which is recomputed later. Engines with compiled shapes (Neuron) prefill one whole
prompt per step, apart from decoding, and every decode step runs the full compiled batch.

Steps with no scheduling decision to make (only decoding, nothing admissible) are fast-forwarded in one go up to
the next completion, the next block shortage or the caller's time limit: that is what makes the simulator fast.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fleetwise.perf.step_time import StepCost
from fleetwise.workload.requests import Requests


@dataclass
class RequestLog:
    """What happened to each request (NaN where it has not happened)."""

    first_token_s: np.ndarray
    finish_s: np.ndarray
    preemptions: np.ndarray
    prefix_hit_tokens: np.ndarray
    replica: np.ndarray  # the replica that finished it (global replica number)
    requeues: np.ndarray  # times it was moved off a replica that went away (spot interruption)
    admitted_s: np.ndarray  # when a replica first began its prefill (arrival to here: queueing delay)
    dropped: dict[int, str] = field(default_factory=dict)  # request index -> reason
    # decode steps as (first step s, last step s, steps, sequences decoding): inter-token latencies
    itl_segments: list[tuple[float, float, int, float]] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int) -> RequestLog:
        """A log for n requests where nothing has happened yet."""
        return cls(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64),
                   np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64),
                   np.full(n, np.nan))


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """Scheduler limits of one replica."""

    kv_blocks: int  # KV-cache blocks per replica (from the memory fit)
    block_tokens: int = 16  # tokens per KV block (vLLM's default block size)
    max_seqs: int = 256  # sequence slots (vLLM max_num_seqs; the compiled batch on Neuron)
    max_batched_tokens: int = 2048  # token budget per step (vLLM max_num_batched_tokens)
    prefix_caching: bool = True


class ReplicaSim:
    """A replica's queue, running batch and KV blocks, advanced in simulated time."""

    def __init__(self, index: int, cost: StepCost, settings: ReplicaSettings, requests: Requests,
                 log: RequestLog) -> None:
        self.index = index
        self.cost = cost
        self.settings = settings
        self.req = requests
        self.log = log
        self.clock = 0.0
        self.waiting: deque[int] = deque()
        self.target: dict[int, int] = {}  # prompt tokens to (re)compute per admitted or waiting request
        self.prefilling: dict[int, int] = {}  # admitted, prompt tokens computed so far
        self.offset: dict[int, int] = {}  # decoding: context - step counter
        self.finish_step: list[tuple[int, int]] = []  # heap of (step counter at which it finishes, request)
        self.admitted_order: list[int] = []  # running requests, oldest first (preempt from the end)
        self.step_counter = 0
        self.used_blocks = 0  # blocks held by running sequences (cached prefixes counted separately)
        self.shared: dict[int, int] = {}  # leading blocks a request uses but does not own (cached prefix)
        self.cached_blocks = 0  # blocks held by the prefix cache
        self.offset_sum = 0  # sum of decoding offsets: attended tokens follow without a loop
        self.residues = [0] * settings.block_tokens  # decoding offsets counted by residue mod block size
        self.prefix_cache: OrderedDict[int, int] = OrderedDict()  # prefix id -> blocks, least recent first
        self.covers: dict[int, int] = {}  # prefix id -> prompt tokens a hit skips
        self.prefix_users: dict[int, int] = {}  # running requests using each cached entry (not evictable)
        self.pinned: dict[int, int] = {}  # request -> the cached entry it uses
        self.busy_s = 0.0
        self.active_block_seconds = 0.0  # integral over time of blocks held by running sequences
        self._cached_integral = (0.0, 0.0)  # (block-seconds held by the prefix cache, time of the last change)
        self.steps = 0
        self.on_finish: Callable[[int, float], None] | None = None  # e.g. a closed-loop user sending the next one
        self.stall_s = 0.0  # prefill-only time decoding sequences waited through since their last token

    # ---- interface used by the fleet --------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Requests queued or running here."""
        return len(self.waiting) + len(self.prefilling) + len(self.offset)

    def enqueue(self, request: int) -> None:
        """Accept a request that arrived now (the clock must have been advanced to its arrival)."""
        self.log.replica[request] = self.index
        total = int(self.req.prompt_tokens[request] + self.req.output_tokens[request])
        if self._blocks(total) > self.settings.kv_blocks:
            self.log.dropped[request] = "prompt + output exceed the replica's whole KV cache"
            return
        self.target[request] = int(self.req.prompt_tokens[request])
        self.waiting.append(request)

    def evict(self) -> list[int]:
        """Give up every request held here (the replica is going away): they restart elsewhere, from scratch."""
        held = [*self.waiting, *self.prefilling, *self.offset]
        for request in held:
            self.target[request] = int(self.req.prompt_tokens[request])
            self._unpin(request)
        self.waiting.clear()
        self.prefilling.clear()
        self.offset.clear()
        self.finish_step.clear()
        self.admitted_order.clear()
        self.shared.clear()
        self.offset_sum = 0
        self.residues = [0] * self.settings.block_tokens
        self.used_blocks = 0
        return held

    def drain_all(self) -> None:
        """Run until everything held here has finished; what can never be scheduled is dropped, with why."""
        while self.outstanding:
            if not self.offset and not self.prefilling and not self.can_schedule():
                for request in self.waiting:
                    self.log.dropped[request] = "never schedulable: the KV cache cannot hold it"
                self.waiting.clear()
                return
            self.advance_to(self.clock + 3600.0)

    def advance_to(self, limit: float) -> None:
        """Run steps until the clock reaches `limit` (or the replica runs out of work and idles there)."""
        while self.clock < limit:
            if self.can_schedule():
                self._scheduled_step()
            elif self.offset:
                self._fast_forward(limit)
            else:
                self.clock = limit  # idle

    # ---- helpers ------------------------------------------------------------------------------------

    def _blocks(self, tokens: float) -> int:
        return math.ceil(tokens / self.settings.block_tokens)

    def _free_blocks(self) -> int:
        return self.settings.kv_blocks - self.used_blocks - self.cached_blocks

    def _running(self) -> int:
        return len(self.prefilling) + len(self.offset)

    def can_schedule(self) -> bool:
        """True when this step has prompt work: a partial prefill, or an admissible waiting request."""
        if self.prefilling:
            return True
        if not self.waiting or self._running() >= self.settings.max_seqs:
            return False
        first = self.waiting[0]
        need = 1 if self.cost.chunked_prefill else self._blocks(self.target[first])
        free = self._free_blocks()
        return free >= need or free + self._evictable_blocks() >= need

    def _evictable_blocks(self) -> int:
        return sum(b for p, b in self.prefix_cache.items() if not self.prefix_users.get(p))

    def _make_room(self, blocks: int) -> bool:
        """Evict unused cached prefixes (least recent first) until `blocks` are free."""
        if self._free_blocks() >= blocks:
            return True
        for prefix in list(self.prefix_cache):
            if self._free_blocks() >= blocks:
                break
            if not self.prefix_users.get(prefix):
                self._cache_blocks(-self.prefix_cache.pop(prefix))
                self.covers.pop(prefix, None)
        return self._free_blocks() >= blocks

    def _decode_context_sum(self) -> tuple[float, float]:
        """(sequences decoding, attended tokens summed over them and over layers) at the current step."""
        if self.cost.pads:  # compiled batch, attention over the bucket of the longest context
            longest = max(self.offset.values()) + self.step_counter
            slots = float(self.settings.max_seqs)
            return slots, slots * self.cost.attended(self.cost.bucket(longest))
        g = self.step_counter
        if not self.cost.windows:
            return float(len(self.offset)), self.cost.full_layers * float(self.offset_sum + len(self.offset) * g)
        return float(len(self.offset)), sum(self.cost.attended(o + g) for o in self.offset.values())

    # ---- one scheduled step (prompt work present) ------------------------------------------------------

    def _scheduled_step(self) -> None:
        s = self.settings
        decode_seqs, decode_attended = self._decode_context_sum() if self.offset else (0.0, 0.0)
        if self.cost.pads:
            decode_seqs, decode_attended = 0.0, 0.0  # Neuron: a prefill step does not decode
        if decode_seqs:
            self._grow_decode_blocks()
            decode_seqs, decode_attended = self._decode_context_sum()  # preemption may have shrunk the batch
        budget = s.max_batched_tokens - (len(self.offset) if self.cost.chunked_prefill else 0)
        chunks: list[tuple[int, int, int]] = []  # (request, start, end)
        for request in list(self.prefilling):
            if budget <= 0:
                break
            start = self.prefilling[request]
            end = self._chunk_end(request, start, budget)
            if end > start:
                chunks.append((request, start, end))
                budget -= end - start
        while budget > 0 and self.waiting and self._running() < s.max_seqs and not (self.cost.pads and chunks):
            request = self.waiting[0]
            admitted = self._admit_start(request)
            if admitted is None:
                break
            self.waiting.popleft()
            if math.isnan(self.log.admitted_s[request]):
                self.log.admitted_s[request] = self.clock
            self.prefilling[request] = admitted
            self.admitted_order.append(request)
            start = admitted
            end = self._chunk_end(request, start, budget)
            if end <= start:
                break
            chunks.append((request, start, end))
            budget -= end - start
        if not chunks and not decode_seqs:
            self._unstick()
            return
        prefill_tokens = sum(self.cost.bucket(e) - s0 if self.cost.pads else e - s0 for _, s0, e in chunks)
        attended = sum(self.cost.causal_attended(s0, self.cost.bucket(e) if self.cost.pads else e)
                       for _, s0, e in chunks)
        last = sum(1 for r, _, e in chunks if e >= self.target[r])
        dt = self.cost.step_s(decode_seqs, decode_attended, prefill_tokens, attended, last)
        if decode_seqs:
            self.log.itl_segments.append((dt + self.stall_s, dt + self.stall_s, 1, float(len(self.offset))))
            self.stall_s = 0.0
        elif self.offset:
            self.stall_s += dt  # sequences waiting to decode feel this prompt's time in their next gap
        self._tick(dt)
        if decode_seqs and not self.cost.pads:
            self.step_counter += 1
        for request, _, end in chunks:
            self.prefilling[request] = end
            if end >= self.target[request]:
                self._prefill_done(request)
        self._complete_due()

    def _unstick(self) -> None:
        """No prompt got a block and nothing decodes: free blocks by preempting the newest running request; if it
        is the only one, it cannot be served here and is dropped, so the replica always makes progress."""
        if len(self.admitted_order) > 1 or self.offset:
            self._preempt_newest()
            return
        if not self.admitted_order:
            request = self.waiting.popleft()
            self.log.dropped[request] = "its prompt does not fit beside the cached prefixes in use"
            return
        request = self.admitted_order.pop()
        self._release(request, self.prefilling.pop(request))
        self._unpin(request)
        self.target.pop(request, None)
        self.log.dropped[request] = "its prompt does not fit the free KV blocks"

    def _admit_start(self, request: int) -> int | None:
        """Where an admitted request's prefill starts (after a cached prefix), or None if no block is free."""
        bt = self.settings.block_tokens
        start = 0
        prefix = int(self.req.prefix_id[request])
        hit = self.settings.prefix_caching and prefix >= 0 and prefix in self.prefix_cache
        if hit:
            self._pin(request, prefix)  # keep the entry while room is made for the rest
            start = min(self.covers[prefix], self.target[request] - 1) // bt * bt  # whole blocks only
        need = 1 if self.cost.chunked_prefill else self._blocks(self.target[request] - start)
        if not self._make_room(need):
            self._unpin(request)
            return None
        if hit:
            self.prefix_cache.move_to_end(prefix)
            self.shared[request] = start // bt
            # once per request: a re-admission after preemption or a requeue is not a new hit
            served = min(start, int(self.req.prefix_tokens[request]))
            self.log.prefix_hit_tokens[request] = max(int(self.log.prefix_hit_tokens[request]), served)
        return start

    def _pin(self, request: int, prefix: int) -> None:
        self.pinned[request] = prefix
        self.prefix_users[prefix] = self.prefix_users.get(prefix, 0) + 1

    def _unpin(self, request: int) -> None:
        prefix = self.pinned.pop(request, None)
        if prefix is not None:
            self.prefix_users[prefix] -= 1

    def _chunk_end(self, request: int, start: int, budget: int) -> int:
        """How far this step gets with the request's prompt, allocating the blocks the chunk needs."""
        target = self.target[request]
        end = target if not self.cost.chunked_prefill else min(target, start + budget)
        have = self._blocks(start)
        need = self._blocks(end) - have
        if need > 0 and not self._make_room(need):
            end = min(end, (have + max(self._free_blocks(), 0)) * self.settings.block_tokens)
            need = max(self._blocks(end) - have, 0)
        self.used_blocks += max(need, 0)
        return max(end, start)

    def _prefill_done(self, request: int) -> None:
        """The step that computed a prompt's last token also produced the first output token."""
        del self.prefilling[request]
        if math.isnan(self.log.first_token_s[request]):
            self.log.first_token_s[request] = self.clock
        prefix = int(self.req.prefix_id[request])
        if prefix >= 0 and self.settings.prefix_caching and prefix not in self.prefix_cache:
            # only whole blocks are shared; they pass from this request to the cache
            shared_tokens = min(int(self.req.prefix_tokens[request]), self.target[request])
            blocks = shared_tokens // self.settings.block_tokens - self.shared.get(request, 0)
            if blocks > 0 and request not in self.pinned:
                self.prefix_cache[prefix] = blocks
                self.covers[prefix] = blocks * self.settings.block_tokens
                self._cache_blocks(blocks)
                self.shared[request] = self.shared.get(request, 0) + blocks
                self.used_blocks -= blocks
                self._pin(request, prefix)  # its own KV now lives in the entry
        generated = self.target[request] - int(self.req.prompt_tokens[request])
        remaining = int(self.req.output_tokens[request]) - 1 - generated
        if remaining <= 0:
            self._retire(request, self.target[request])
            return
        self._add_decoding(request, self.target[request] + 1 - self.step_counter)
        heapq.heappush(self.finish_step, (self.step_counter + remaining, request))

    # ---- decode-only fast-forward --------------------------------------------------------------------

    def _fast_forward(self, limit: float) -> None:
        """Decode k steps at once: up to the next completion, block shortage, or the time limit."""
        next_done = self.finish_step[0][0] - self.step_counter
        k = max(min(next_done, self._steps_before_block_shortage(next_done)), 1)
        if self.cost.pads:
            longest = max(self.offset.values()) + self.step_counter
            k = max(min(k, int(self.cost.bucket(longest) - longest) + 1), 1)
        if self.cost.windows or self.cost.pads:
            first, last, bends = self._decode_step_s(0), self._decode_step_s(k - 1), True
        else:  # full attention: attended tokens grow by exactly seqs x layers per step
            seqs, attended = self._decode_context_sum()
            later = attended + seqs * (k - 1) * self.cost.full_layers
            first = self.cost.step_s(seqs, attended, 0.0, 0.0, 0.0)
            last = self.cost.step_s(seqs, later, 0.0, 0.0, 0.0)
            bends = self.cost.decode_compute_bound(seqs, attended) != self.cost.decode_compute_bound(seqs, later)
        while k > 8 and bends:  # linear in context except at window edges and compute/memory crossovers
            middle = self._decode_step_s((k - 1) // 2)
            if abs(middle - (first + (last - first) * ((k - 1) // 2) / (k - 1))) <= 0.005 * middle:
                break
            k = (k - 1) // 2 + 1  # keep the half before the bend; the rest is priced next time
            last = middle
        slope = (last - first) / (k - 1) if k > 1 else 0.0
        k = min(k, self._steps_within(limit - self.clock, first, slope, k))
        self._grow_decode_blocks(k)
        total = k * first + slope * k * (k - 1) / 2.0
        sequences = float(len(self.offset))
        if self.stall_s:  # prompts run on their own (Neuron) delayed the first of these tokens
            self.log.itl_segments.append((first + self.stall_s, first + self.stall_s, 1, sequences))
            if k > 1:
                self.log.itl_segments.append((first + slope, first + slope * (k - 1), k - 1, sequences))
            self.stall_s = 0.0
        else:
            self.log.itl_segments.append((first, first + slope * (k - 1), k, sequences))
        self._tick(total, steps=k)
        self.step_counter += k
        self._complete_due()

    def _decode_step_s(self, ahead: int) -> float:
        self.step_counter += ahead
        seqs, attended = self._decode_context_sum()
        self.step_counter -= ahead
        return self.cost.step_s(seqs, attended, 0.0, 0.0, 0.0)

    @staticmethod
    def _steps_within(window: float, first: float, slope: float, k: int) -> int:
        """How many steps of linearly growing duration fit before the window closes (at least one)."""
        if window <= 0:
            return 1
        if slope <= 1e-15:
            return max(1, min(k, math.ceil(window / first)))
        # k*first + slope*k*(k-1)/2 >= window  ->  smallest such k
        a, b = slope / 2.0, first - slope / 2.0
        root = (-b + math.sqrt(b * b + 4.0 * a * window)) / (2.0 * a)
        return max(1, min(k, math.ceil(root)))

    def _steps_before_block_shortage(self, horizon: int) -> int:
        """Decode steps possible before some sequence needs a block that is not there (blocks are preallocated)."""
        free = self._free_blocks()
        if free >= len(self.offset) * (horizon // self.settings.block_tokens + 1):
            return horizon  # even the worst case fits: no need to count exactly
        needed = self._new_blocks(horizon)
        if free >= needed:
            return horizon
        free += self._evictable_blocks()
        if free >= needed:
            return horizon
        low, high = 1, horizon
        while low < high:  # largest k whose growth fits
            mid = (low + high + 1) // 2
            if self._new_blocks(mid) <= free:
                low = mid
            else:
                high = mid - 1
        return low if self._new_blocks(low) <= free else 0

    def _new_blocks(self, steps: int) -> int:
        """Blocks the decoding sequences need to grow by `steps` tokens each.

        A sequence of context c holds KV for s = c - 1 tokens; `steps` more need ((s - 1) mod B + steps) // B new
        blocks of B tokens, so counting offsets by residue gives the total without visiting every sequence.
        """
        bt = self.settings.block_tokens
        whole, rest = divmod(steps, bt)
        need = len(self.offset) * whole
        if rest:  # sequences whose residue lies in a cyclic window of `rest` residues cross one more boundary
            start = (bt - rest - (self.step_counter - 2)) % bt
            end = start + rest
            counts = self.residues
            need += sum(counts[start:end]) if end <= bt else sum(counts[start:]) + sum(counts[:end - bt])
        return need

    def _add_decoding(self, request: int, offset: int) -> None:
        self.offset[request] = offset
        self.offset_sum += offset
        self.residues[offset % self.settings.block_tokens] += 1

    def _remove_decoding(self, request: int) -> int:
        """Stop tracking a decoding request; returns its current context."""
        offset = self.offset.pop(request)
        self.offset_sum -= offset
        self.residues[offset % self.settings.block_tokens] -= 1
        return offset + self.step_counter

    def _release(self, request: int, stored_tokens: int) -> None:
        """Give back the blocks a request owns (its share of a cached prefix stays with the cache)."""
        self.used_blocks -= self._blocks(stored_tokens) - self.shared.pop(request, 0)

    def _grow_decode_blocks(self, steps: int = 1) -> None:
        """Allocate the blocks decoding sequences need for `steps` more tokens, preempting when none are left."""
        while self.offset:
            need = self._new_blocks(steps)
            if need <= 0 or self._make_room(need):
                self.used_blocks += max(need, 0)
                return
            self._preempt_newest()

    def _preempt_newest(self) -> None:
        """Recompute preemption: the most recently admitted running request gives back its blocks and waits."""
        request = self.admitted_order.pop()
        if request in self.offset:
            context = self._remove_decoding(request)
            self.finish_step = [(s, r) for s, r in self.finish_step if r != request]
            heapq.heapify(self.finish_step)
            self.target[request] = context - 1  # its prompt plus what it generated is recomputed
            self._release(request, context - 1)
        else:
            self._release(request, self.prefilling.pop(request))
        self._unpin(request)
        self.log.preemptions[request] += 1
        self.waiting.appendleft(request)

    def _complete_due(self) -> None:
        while self.finish_step and self.finish_step[0][0] <= self.step_counter:
            _, request = heapq.heappop(self.finish_step)
            self._retire(request, self._remove_decoding(request) - 1)

    def _retire(self, request: int, stored_tokens: int) -> None:
        """A finished request gives back its blocks; in a conversation, its context stays cached for the next turn."""
        session = int(self.req.sessions[request])
        if session >= 0 and self.settings.prefix_caching:
            self._cache_conversation(request, session, stored_tokens // self.settings.block_tokens)
        self._release(request, stored_tokens)
        self._finish(request)

    def _cache_conversation(self, request: int, session: int, whole: int) -> None:
        """Keep a finished turn's whole context as the conversation's entry, holding every block it covers.

        Blocks the request used from the conversation's own entry stay there; its own blocks pass to the entry;
        blocks it used from another entry (a system prompt) are copied, so the entry never depends on one that
        may be evicted (a conservative stand-in for vLLM's chained block hashes).
        """
        shared = self.shared.get(request, 0)
        kept = shared if self.pinned.get(request) == session else 0
        own, copied = max(whole - shared, 0), shared - kept
        if own + copied <= 0:
            return
        if not kept and session in self.prefix_cache:  # an older, unused copy of this conversation
            if self.prefix_users.get(session):
                return
            self._cache_blocks(-self.prefix_cache.pop(session))
        if copied and not self._make_room(copied):
            return
        existing = self.prefix_cache.get(session, 0) if kept else 0
        self.prefix_cache[session] = max(existing, kept) + own + copied
        self.prefix_cache.move_to_end(session)
        self.covers[session] = whole * self.settings.block_tokens
        self._cache_blocks(own + copied)
        self.used_blocks -= own  # they pass from the request to the cache
        self.shared[request] = shared + own

    def _finish(self, request: int) -> None:
        self.log.finish_s[request] = self.clock
        self.admitted_order.remove(request)
        self._unpin(request)
        self.target.pop(request, None)
        if self.on_finish is not None:
            self.on_finish(request, self.clock)

    def _cache_blocks(self, change: int) -> None:
        """Add `change` blocks to the prefix cache, integrating its occupancy up to now."""
        block_seconds, since = self._cached_integral
        self._cached_integral = (block_seconds + (self.clock - since) * self.cached_blocks, self.clock)
        self.cached_blocks += change

    def cached_block_seconds(self, until: float) -> float:
        """Block-seconds the prefix cache has held up to `until` (idle time included)."""
        block_seconds, since = self._cached_integral
        return block_seconds + max(until - since, 0.0) * self.cached_blocks

    def _tick(self, seconds: float, steps: int = 1) -> None:
        self.active_block_seconds += seconds * self.used_blocks
        self.clock += seconds
        self.busy_s += seconds
        self.steps += steps
