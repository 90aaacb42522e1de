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
from fleetwise.sim.replica import least_outstanding
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
    """Base of every router: the pools it routes over and the request stream."""

    name: ClassVar[str] = ""
    needs_ttft_slo: ClassVar[bool] = False

    def __init__(self, pools: Sequence[Pool], requests: Requests, slo_ttft_ms: float | None) -> None:
        self.pools = pools
        self.req = requests
        self.slo_ttft_ms = slo_ttft_ms

    def ready(self, now: float) -> list[Slot]:
        """Every replica of every pool that accepts requests now."""
        if len(self.pools) == 1:
            return self.pools[0].ready(now)
        return [s for p in self.pools for s in p.ready(now)]

    @abstractmethod
    def choose(self, request: int, now: float) -> Slot | None:
        """The replica for `request` arriving `now`; None when no replica is ready."""


def least_busy(slots: Sequence[Slot], now: float) -> Slot:
    """The replica with the fewest requests queued or running at `now` (lowest number on ties).

    Each replica is brought up to `now` only as far as its own decisions go (`catch_up`): a decode stretch under
    way is not split, so comparing replicas costs nothing unless one of them finished something.
    """
    return slots[least_outstanding([slot.sim for slot in slots], now)]


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

    def choose(self, request: int, now: float) -> Slot | None:
        """The least busy ready replica."""
        ready = self.ready(now)
        return least_busy(ready, now) if ready else None


class PrefixAffinity(Router):
    """Requests sharing a prefix stick to one replica (rendezvous hashing) unless it is a full batch busier."""

    name: ClassVar[str] = "prefix-affinity"

    def choose(self, request: int, now: float) -> Slot | None:
        """The prefix's replica, or the least busy one."""
        ready = self.ready(now)
        if not ready:
            return None
        least = least_busy(ready, now)
        prefix = self.req.columns.prefix_id[request]
        if prefix >= 0:
            preferred = max(ready, key=lambda s: rendezvous_weight(prefix, s.sim.index))
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
        self.order = sorted(pools, key=lambda p: (self._cost_rank(p), p.index))

    def choose(self, request: int, now: float) -> Slot | None:
        """The cheapest pool whose least busy replica would start the request within the TTFT SLO."""
        slo_s = (self.slo_ttft_ms or 0.0) / 1e3
        fallback: Slot | None = None
        for pool in self.order:
            ready = pool.ready(now)
            if not ready:
                continue
            best = least_busy(ready, now)
            fallback = fallback or best
            if self._expected_ttft(pool, best, request) <= slo_s:
                return best
        return fallback

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
