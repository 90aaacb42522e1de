"""One serving replica advanced in simulated time: scheduled steps where there is prompt work, and decode-only
stretches fast-forwarded in one go.

Steps with no scheduling decision to make (only decoding, nothing admissible) are priced together up to the
next completion, the next block shortage or the caller's time limit: step times grow linearly with context
between those points (split where a window fills, a bucket ends or the step turns compute-bound), so k steps
cost k × first + slope × k(k−1)/2. That is what makes the simulator fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fleetwise.perf.step_time import StepCost
from fleetwise.sim.batching import batch_policy
from fleetwise.sim.request_log import RequestRecord
from fleetwise.sim.scheduler import ReplicaSettings, Scheduler
from fleetwise.workload.requests import Requests

BEND_TOLERANCE = 0.005  # a decode stretch is priced as linear while its midpoint is within this share of a line
DRAIN_HORIZON_S = 3600.0  # how far `drain_all` advances per round


class Stretch:
    """Decode-only steps priced together: step times grow linearly from `first_s` by `slope_s` per step (a plain
    class: mypyc compiles it to a native one, where a NamedTuple would be built in Python)."""

    __slots__ = ("end_s", "first_s", "slope_s", "steps")

    def __init__(self, steps: int, first_s: float, slope_s: float, end_s: float) -> None:
        self.steps = steps
        self.first_s = first_s
        self.slope_s = slope_s
        self.end_s = end_s  # when the last of them ends


class ReplicaSim:
    """A replica's scheduler and clock; the fleet enqueues requests and advances it to points in time."""

    def __init__(self, index: int, cost: StepCost, settings: ReplicaSettings, requests: Requests,
                 log: RequestRecord) -> None:
        self.index = index
        self.cost = cost
        self.settings = settings
        self.log = log
        self.policy = batch_policy(cost, settings.max_seqs)
        self.scheduler = Scheduler(index, settings, requests, log, self.policy)
        self.clock = 0.0
        self.busy_s = 0.0
        self.steps = 0
        self.active_block_seconds = 0.0  # integral over time of blocks held by running sequences
        self.stall_s = 0.0  # prompt-only time decoding sequences waited through since their last token
        self.on_finish: Callable[[int, float], None] | None = None  # e.g. a closed-loop user sending the next one
        self._stretch: Stretch | None = None  # the decode stretch ahead, priced once until the state changes

    # ---- interface used by the fleet --------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Requests queued or running here."""
        return self.scheduler.outstanding

    @property
    def used_blocks(self) -> int:
        """KV blocks owned by running sequences (cached prefixes not counted)."""
        return self.scheduler.blocks.used

    def enqueue(self, request: int) -> None:
        """Accept a request that arrived now (the clock must have been advanced to its arrival)."""
        self._stretch = None
        self.scheduler.enqueue(request)

    def evict(self) -> list[int]:
        """Give up every request held here (the replica is going away): they restart elsewhere, from scratch."""
        self._stretch = None
        return self.scheduler.evict()

    def cached_block_seconds(self, until: float) -> float:
        """Block-seconds the prefix cache has held up to `until` (idle time included)."""
        return self.scheduler.blocks.cached_block_seconds(until)

    def drain_all(self) -> None:
        """Run until everything held here has finished; what can never be scheduled is dropped, with why."""
        scheduler = self.scheduler
        while scheduler.outstanding:
            if not scheduler.batch.offsets and not scheduler.prefilling and not scheduler.can_schedule():
                for request in scheduler.waiting:
                    self.log.dropped[request] = "never schedulable: the KV cache cannot hold it"
                scheduler.waiting.clear()
                return
            self.advance_to(self.clock + DRAIN_HORIZON_S)

    def advance_to(self, limit: float) -> None:
        """Run steps until the clock reaches `limit` (or the replica runs out of work and idles there)."""
        scheduler = self.scheduler
        while self.clock < limit:
            if scheduler.can_schedule():
                self._scheduled_step()
            elif scheduler.batch.offsets:
                self._fast_forward(limit)
            else:
                self.clock = limit  # idle

    def catch_up(self, now: float) -> None:
        """Run what happens before `now` (every completion, so `outstanding` is current) without splitting the
        decode stretch under way at `now`: a router can compare replicas without cutting their fast-forwards."""
        stretch = self._stretch
        if stretch is not None and stretch.end_s > now:
            return  # mid-stretch (a priced stretch means nothing was admissible, and nothing has changed since)
        scheduler = self.scheduler
        while self.clock < now:
            if scheduler.can_schedule():
                self._scheduled_step()
            elif not scheduler.batch.offsets or self._stretch_ahead().end_s > now:
                return
            else:
                self._fast_forward(now)

    def next_change(self) -> float:
        """The earliest time t at which `catch_up(t)` has anything to run: the end of the decode stretch under way
        (priced now if need be, as `catch_up` would), just after the clock when there is prompt work, never (inf)
        when idle. Nothing changes here before it unless a request arrives or the replica is advanced."""
        if self._stretch is not None:
            return self._stretch.end_s
        scheduler = self.scheduler
        if scheduler.can_schedule():
            return math.nextafter(self.clock, math.inf)
        if scheduler.batch.offsets:
            return self._stretch_ahead().end_s
        return math.inf

    # ---- a step with prompt work --------------------------------------------------------------------

    def _scheduled_step(self) -> None:
        self._stretch = None
        scheduler, policy, batch = self.scheduler, self.policy, self.scheduler.batch
        scheduler.start_step(self.clock)
        chunks = scheduler.chunks(scheduler.budget(), self.clock)
        decode_seqs, decode_attended = 0.0, 0.0
        if batch.offsets and policy.decodes_with_prefill:  # after the chunks: a prompt's blocks may preempt one
            decode_seqs, decode_attended = policy.decode_load(batch)
        if not chunks and not decode_seqs:
            scheduler.unstick()
            return
        prefill_tokens, attended, last = 0.0, 0.0, 0.0
        for request, start, end in chunks:  # a plain loop: compiled, it beats three generator sums
            prefill_tokens += policy.prompt_tokens(start, end)
            attended += policy.prompt_attended(start, end)
            if end >= scheduler.target[request]:
                last += 1.0
        dt = self.cost.step_s(decode_seqs, decode_attended, prefill_tokens, attended, last)
        if decode_seqs:
            gap = dt + self.stall_s
            self.log.itl.add(gap, 0.0, 1, float(len(batch.offsets)))
            self.stall_s = 0.0
        elif batch.offsets:
            self.stall_s += dt  # sequences waiting to decode feel this prompt's time in their next gap
        self._tick(dt)
        if decode_seqs:
            batch.step += 1
        self._finished(scheduler.complete_chunks(chunks, self.clock))
        self._finished(scheduler.retire_finished(self.clock))

    # ---- decode-only fast-forward --------------------------------------------------------------------

    def _fast_forward(self, limit: float) -> None:
        """Decode k steps at once: up to the next completion, block shortage, or the time limit."""
        scheduler, batch = self.scheduler, self.scheduler.batch
        stretch = self._stretch_ahead()
        self._stretch = None
        first, slope = stretch.first_s, stretch.slope_s
        k = min(stretch.steps, self._steps_within(limit - self.clock, first, slope, stretch.steps))
        scheduler.grow_decode_blocks(k, self.clock)
        total = k * first + slope * k * (k - 1) / 2.0
        self._record_gaps(first, slope, k, float(len(batch.offsets)))
        self._tick(total, steps=k)
        batch.step += k
        self._finished(scheduler.retire_finished(self.clock))

    def _stretch_ahead(self) -> Stretch:
        """The decode-only steps up to the next completion or block shortage, as one linear piece: priced once."""
        if self._stretch is not None:
            return self._stretch
        batch, policy = self.scheduler.batch, self.policy
        next_done = batch.steps_to_next_finish()
        k = max(min(next_done, batch.steps_before_shortage(next_done, self.scheduler.blocks)), 1)
        k = policy.segment_cap(batch, k)
        if policy.linear_decode:
            seqs, attended = policy.decode_load(batch)
            first, bound_first = self.cost.decode_s(seqs, attended)
            last, bound_last = self.cost.decode_s(seqs, attended + seqs * (k - 1) * self.cost.full_layers)
            bends = bound_first != bound_last
        elif policy.flat_within_cap:  # the stretch stays within one compiled bucket
            first = last = self._decode_step_s(0)
            bends = False
        else:
            first, last, bends = self._decode_step_s(0), self._decode_step_s(k - 1), True
        while k > 8 and bends:  # linear in context except at window edges and compute/memory crossovers
            middle = self._decode_step_s((k - 1) // 2)
            if abs(middle - (first + (last - first) * ((k - 1) // 2) / (k - 1))) <= BEND_TOLERANCE * middle:
                break
            k = (k - 1) // 2 + 1  # keep the half before the bend; the rest is priced next time
            last = middle
        slope = (last - first) / (k - 1) if k > 1 else 0.0
        self._stretch = Stretch(k, first, slope, self.clock + (k * first + slope * k * (k - 1) / 2.0))  # as ticked
        return self._stretch

    def _record_gaps(self, first: float, slope: float, k: int, sequences: float) -> None:
        """Inter-token gaps of k decode steps; prompts run on their own (Neuron) delay the first of them."""
        itl = self.log.itl
        if self.stall_s:
            itl.add(first + self.stall_s, 0.0, 1, sequences)
            if k > 1:
                itl.add(first + slope, slope, k - 1, sequences)
            self.stall_s = 0.0
        else:
            itl.add(first, slope, k, sequences)

    def _decode_step_s(self, ahead: int) -> float:
        seqs, attended = self.policy.decode_load(self.scheduler.batch, ahead)
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

    def _finished(self, requests: list[int]) -> None:
        if self.on_finish is not None:
            for request in requests:
                self.on_finish(request, self.clock)

    def _tick(self, seconds: float, steps: int = 1) -> None:
        self.active_block_seconds += seconds * self.scheduler.blocks.used
        self.clock += seconds
        self.busy_s += seconds
        self.steps += steps
