"""Routers: which ready replica a request goes to. One registry, `ROUTERS`, names them for the CLI and specs.

- round-robin: in turn over every ready replica;
- least-outstanding: the replica with the fewest requests queued or running;
- prefix-affinity: a shared prefix always goes to the same replica, chosen by rendezvous hashing so scaling
  moves few prefixes, while that replica holds at most a full batch more than the least busy one;
- cost-aware: the cheapest pool (USD per output token at a full batch) whose least busy replica would start
  the request within the TTFT SLO; otherwise the cheapest pool with a ready replica.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from fleetwise.sim.batching import batch_policy
from fleetwise.sim.pool import Pool, Slot
from fleetwise.sim.roster import Roster
from fleetwise.workload.requests import Requests

_MASK = (1 << 64) - 1


def rendezvous_weight(prefix: int, replica: int) -> int:
    """A pseudo-random weight of (prefix, replica); a prefix goes to the ready replica with the highest weight.

    Highest-random-weight hashing (Thaler and Ravishankar, 1998): when a replica joins or leaves, only the
    prefixes it wins or held move; the rest stay where their cached KV is. The mixing is splitmix64's
    (Steele, Lea and Flood, 2014; the constants of java.util.SplittableRandom).
    """
    x = (prefix * 0x9E3779B97F4A7C15 + replica * 0xC2B2AE3D27D4EB4F) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class Router(ABC):
    """Base of every router: the pools it routes over, the request stream, and the ready replicas, kept between
    changes (the fleet calls `invalidate` when replicas launch, start, drain, stop or are advanced outside routing)."""

    name: ClassVar[str] = ""
    needs_ttft_slo: ClassVar[bool] = False

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        self.pools = pools
        self.req = requests
        self.slo_ttft_ms = slo_ttft_ms
        self.by_pool: list[list[Slot]] = []  # each pool's ready replicas, as of the last rebuild
        self.all_ready: list[Slot] = []
        self.stale = True
        self.until = -math.inf  # when a launched replica starts serving: the ready lists change then

    def invalidate(self) -> None:
        """Replicas changed outside routing: the ready lists (and what subclasses keep) are rebuilt when next read."""
        self.stale = True

    def ready(self, now: float) -> list[Slot]:
        """Every replica of every pool that accepts requests now."""
        if self.stale or now >= self.until:
            self.by_pool = [pool.ready(now) for pool in self.pools]
            self.all_ready = self.by_pool[0] if len(self.by_pool) == 1 else [s for r in self.by_pool for s in r]
            self.until = min(pool.next_ready_s(now) for pool in self.pools)
            self.stale = False
            self.rebuilt()
        return self.all_ready

    def rebuilt(self) -> None:
        """The ready lists were rebuilt: drop whatever was kept about the replicas (nothing here)."""
        return

    def placed(self, slot: Slot) -> None:
        """A request was routed to `slot`: it was advanced to the arrival and queued it (nothing kept here)."""
        return

    @abstractmethod
    def choose(self, request: int, now: float) -> Slot | None:
        """The replica for `request` arriving `now`; None when no replica is ready."""


def _least_busy(ready: list[Slot], roster: Roster, now: float) -> Slot:
    """The replica of `ready` (the roster's replicas, in order) with the fewest requests queued or running at `now`
    (lowest number on ties). Only replicas with something to run before `now` are brought up to it (`catch_up`,
    which never splits the decode stretch under way), so a choice costs O(log R) whatever the replicas."""
    roster.catch_up(now)
    return ready[roster.least_busy()]


class RoundRobin(Router):
    """Every ready replica in turn."""

    name: ClassVar[str] = "round-robin"

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        super().__init__(pools, requests, slo_ttft_ms)
        self.turn = 0

    def choose(self, request: int, now: float) -> Slot | None:
        """The next ready replica in turn."""
        ready = self.ready(now)
        if not ready:
            return None
        self.turn += 1
        return ready[self.turn % len(ready)]


class LeastOutstanding(Router):
    """The ready replica with the fewest requests queued or running."""

    name: ClassVar[str] = "least-outstanding"

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        super().__init__(pools, requests, slo_ttft_ms)
        self.roster: Roster | None = None  # the ready replicas, built when first needed after a rebuild

    def rebuilt(self) -> None:
        """The ready replicas changed: a new roster is built when next needed."""
        self.roster = None

    def least_busy(self, now: float) -> Slot | None:
        """The least busy ready replica at `now`; None when none is ready."""
        ready = self.ready(now)
        if not ready:
            return None
        if self.roster is None:
            self.roster = Roster([slot.sim for slot in ready])
        return _least_busy(ready, self.roster, now)

    def choose(self, request: int, now: float) -> Slot | None:
        """The least busy ready replica."""
        return self.least_busy(now)

    def placed(self, slot: Slot) -> None:
        """Re-read the chosen replica's count and next change."""
        if self.roster is not None:
            self.roster.placed(slot.sim.index)


class PrefixAffinity(LeastOutstanding):
    """Requests sharing a prefix stick to one replica (rendezvous hashing) unless it is a full batch busier."""

    name: ClassVar[str] = "prefix-affinity"

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        super().__init__(pools, requests, slo_ttft_ms)
        self.owners: dict[int, Slot] = {}  # prefix -> its ready replica of highest weight, until the replicas change

    def rebuilt(self) -> None:
        """The ready replicas changed: a new roster, and every prefix's owner found again."""
        self.roster = None
        self.owners = {}

    def choose(self, request: int, now: float) -> Slot | None:
        """The prefix's replica, or the least busy one."""
        least = self.least_busy(now)
        if least is None:
            return None
        prefix = self.req.columns.prefix_id[request]
        if prefix >= 0:
            preferred = self.owners.get(prefix)
            if preferred is None:
                preferred = max(self.all_ready, key=lambda s: rendezvous_weight(prefix, s.sim.index))
                self.owners[prefix] = preferred
            # stick to the prefix's replica unless it holds more than a full batch beyond the least busy one
            if preferred.sim.outstanding <= least.sim.outstanding + preferred.sim.settings.max_seqs:
                return preferred
        return least


class CostAware(Router):
    """Fill the cheapest pool while it would start the request within the TTFT SLO; spill to the next."""

    name: ClassVar[str] = "cost-aware"
    needs_ttft_slo: ClassVar[bool] = True

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        super().__init__(pools, requests, slo_ttft_ms)
        self.ranked = sorted(range(len(pools)), key=lambda i: (self._cost_rank(pools[i]), pools[i].index))
        self.order = [pools[i] for i in self.ranked]  # cheapest first
        self.rosters: list[Roster | None] = [None] * len(pools)  # each pool's ready replicas, built when needed

    def rebuilt(self) -> None:
        """The ready replicas changed: new rosters are built when next needed."""
        self.rosters = [None] * len(self.pools)

    def choose(self, request: int, now: float) -> Slot | None:
        """The cheapest pool whose least busy replica would start the request within the TTFT SLO."""
        slo_s = (self.slo_ttft_ms or 0.0) / 1e3
        fallback: Slot | None = None
        self.ready(now)
        for position in self.ranked:
            pool, ready = self.pools[position], self.by_pool[position]
            if not ready:
                continue
            roster = self.rosters[position]
            if roster is None:
                roster = self.rosters[position] = Roster([slot.sim for slot in ready])
            best = _least_busy(ready, roster, now)
            fallback = fallback or best
            if self._expected_ttft(pool, best, request) <= slo_s:
                return best
        return fallback

    def placed(self, slot: Slot) -> None:
        """Re-read the chosen replica's count and next change in its pool's roster."""
        for roster in self.rosters:
            if roster is not None and roster.holds(slot.sim.index):
                roster.placed(slot.sim.index)
                return

    def _expected_ttft(self, pool: Pool, slot: Slot, request: int) -> float:
        """Own prefill (as the pool's engine runs it), plus the prefills queued ahead when every slot is taken."""
        prompt = self.req.columns.prompt_tokens[request]
        policy = slot.sim.policy
        own = pool.cost.step_s(0.0, 0.0, policy.prompt_tokens(0.0, prompt), policy.prompt_attended(0.0, prompt), 1.0)
        ahead = max(slot.sim.outstanding - slot.sim.settings.max_seqs + 1, 0)
        return own * (1 + ahead)

    def _cost_rank(self, pool: Pool) -> float:
        """USD per output token at a full batch of mean-sized requests: how pools are ordered (prompts priced as the
        pool's engine runs them: together, or one at a time in its buckets)."""
        if pool.usd_per_replica_hour is None:
            return math.inf
        policy = batch_policy(pool.cost, pool.settings.max_seqs)
        batch = float(pool.settings.max_seqs)
        prompt, output = float(np.mean(self.req.prompt_tokens)), float(np.mean(self.req.output_tokens))
        tokens, attended = policy.prompt_tokens(0.0, prompt), policy.prompt_attended(0.0, prompt)
        if policy.one_prompt_per_step:
            prefill = batch * pool.cost.step_s(0.0, 0.0, tokens, attended, 1.0)
        else:
            prefill = pool.cost.step_s(0.0, 0.0, batch * tokens, batch * attended, batch)
        decode = pool.cost.step_s(*policy.full_batch_decode(batch, prompt + output / 2), 0.0, 0.0, 0.0)
        tokens_per_s = batch * output / (prefill + output * decode)
        return pool.usd_per_replica_hour / tokens_per_s


ROUTERS: dict[str, type[Router]] = {r.name: r for r in (RoundRobin, LeastOutstanding, PrefixAffinity, CostAware)}
