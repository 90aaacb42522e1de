"""A replica's KV-cache blocks: those running sequences own, and an LRU prefix cache of shared blocks.

Blocks hold `block_tokens` tokens each. A request that hits a cached prefix uses the entry's leading blocks
without owning them (`shared`), and pins the entry so it cannot be evicted while the request runs. Unpinned
entries are evicted least recently used first when blocks run short. Occupancy is integrated over time for the
KV-utilisation figures.
"""

from __future__ import annotations

import math
from collections import OrderedDict


class BlockManager:
    """KV blocks of one replica: owned by running sequences, or held by the prefix cache."""

    __slots__ = (
        "_cached_integral",
        "block_tokens",
        "cache",
        "cached",
        "covers",
        "pinned",
        "shared",
        "total",
        "used",
        "users",
    )

    def __init__(self, total: int, block_tokens: int) -> None:
        self.total = total
        self.block_tokens = block_tokens
        self.used = 0  # blocks owned by running sequences
        self.cached = 0  # blocks held by the prefix cache
        self.shared: dict[int, int] = {}  # request -> leading blocks it uses but does not own (a cached prefix)
        self.cache: OrderedDict[int, int] = OrderedDict()  # prefix id -> blocks, least recently used first
        self.covers: dict[int, int] = {}  # prefix id -> prompt tokens a hit skips
        self.users: dict[int, int] = {}  # prefix id -> running requests pinning it (not evictable)
        self.pinned: dict[int, int] = {}  # request -> the cached entry it pins
        self._cached_integral = (0.0, 0.0)  # (block-seconds held by the cache, time of the last change)

    def blocks(self, tokens: float) -> int:
        """Blocks that `tokens` tokens occupy."""
        return math.ceil(tokens / self.block_tokens)

    def free(self) -> int:
        """Blocks neither owned nor cached."""
        return self.total - self.used - self.cached

    def evictable(self) -> int:
        """Cached blocks no running request pins."""
        return sum(b for p, b in self.cache.items() if not self.users.get(p))

    def make_room(self, blocks: int, now: float) -> bool:
        """Evict unpinned cached prefixes (least recent first) until `blocks` are free; False if they cannot be."""
        if self.free() >= blocks:
            return True
        for prefix in list(self.cache):
            if self.free() >= blocks:
                break
            if not self.users.get(prefix):
                self.change_cached(-self.cache.pop(prefix), now)
                self.covers.pop(prefix, None)
        return self.free() >= blocks

    def pin(self, request: int, prefix: int) -> None:
        """The request uses the cached entry: keep it while the request runs."""
        self.pinned[request] = prefix
        self.users[prefix] = self.users.get(prefix, 0) + 1

    def unpin(self, request: int) -> None:
        """The request no longer uses its cached entry."""
        prefix = self.pinned.pop(request, None)
        if prefix is not None:
            self.users[prefix] -= 1

    def release(self, request: int, stored_tokens: int) -> None:
        """Give back the blocks a request owns (its share of a cached prefix stays with the cache)."""
        self.used -= self.blocks(stored_tokens) - self.shared.pop(request, 0)

    def change_cached(self, change: int, now: float) -> None:
        """Add `change` blocks to the prefix cache, integrating its occupancy up to `now`."""
        block_seconds, since = self._cached_integral
        self._cached_integral = (block_seconds + (now - since) * self.cached, now)
        self.cached += change

    def cached_block_seconds(self, until: float) -> float:
        """Block-seconds the prefix cache has held up to `until` (idle time included)."""
        block_seconds, since = self._cached_integral
        return block_seconds + max(until - since, 0.0) * self.cached

    def hit_tokens(self, prefix: int, prompt_tokens: int) -> int:
        """Prompt tokens a hit on a cached prefix skips (whole blocks; the last prompt token is always computed)."""
        return min(self.covers[prefix], prompt_tokens - 1) // self.block_tokens * self.block_tokens

    def cache_prefix(self, request: int, prefix: int, shared_tokens: int, now: float) -> None:
        """A prompt just computed its shared prefix: its whole blocks pass from the request to a new cache entry."""
        blocks = shared_tokens // self.block_tokens - self.shared.get(request, 0)
        if blocks > 0 and request not in self.pinned:
            self.cache[prefix] = blocks
            self.covers[prefix] = blocks * self.block_tokens
            self.change_cached(blocks, now)
            self.shared[request] = self.shared.get(request, 0) + blocks
            self.used -= blocks
            self.pin(request, prefix)  # its own KV now lives in the entry

    def cache_conversation(self, request: int, session: int, stored_tokens: int, now: float) -> None:
        """Keep a finished turn's whole context as the conversation's entry, holding every block it covers.

        Blocks the request used from the conversation's own entry stay there; its own blocks pass to the entry;
        blocks it used from another entry (a system prompt) are copied, so the entry never depends on one that
        may be evicted (a conservative stand-in for vLLM's chained block hashes).
        """
        whole = stored_tokens // self.block_tokens
        shared = self.shared.get(request, 0)
        kept = shared if self.pinned.get(request) == session else 0
        own, copied = max(whole - shared, 0), shared - kept
        if own + copied <= 0:
            return
        if not kept and session in self.cache:  # an older, unused copy of this conversation
            if self.users.get(session):
                return
            self.change_cached(-self.cache.pop(session), now)
        if copied and not self.make_room(copied, now):
            return
        existing = self.cache.get(session, 0) if kept else 0
        self.cache[session] = max(existing, kept) + own + copied
        self.cache.move_to_end(session)
        self.covers[session] = whole * self.block_tokens
        self.change_cached(own + copied, now)
        self.used -= own  # they pass from the request to the cache
        self.shared[request] = shared + own
