"""KV blocks of one replica: block arithmetic, the LRU prefix cache, pins, and conversation entries."""

from __future__ import annotations

import pytest

from fleetwise.sim.block_manager import BlockManager

B = 16  # vLLM's block size


def _cached_entry(blocks: BlockManager, prefix: int, count: int, now: float = 0.0) -> None:
    """A request computes a prefix of `count` whole blocks, hands them to the cache and finishes."""
    request = 1000 + prefix
    blocks.used += count
    blocks.cache_prefix(request, prefix, count * B, now)
    blocks.release(request, count * B)
    blocks.unpin(request)


def test_tokens_take_whole_blocks() -> None:
    blocks = BlockManager(total=100, block_tokens=B)
    assert [blocks.blocks(t) for t in (0, 1, 15, 16, 17, 32, 33)] == [0, 1, 1, 1, 2, 2, 3]


def test_free_blocks_are_those_neither_owned_nor_cached() -> None:
    blocks = BlockManager(total=20, block_tokens=B)
    blocks.used = 5
    _cached_entry(blocks, 0, 3)
    assert blocks.used == 5 and blocks.cached == 3
    assert blocks.free() == 20 - 5 - 3


def test_make_room_evicts_the_least_recently_used_entry_first() -> None:
    blocks = BlockManager(total=10, block_tokens=B)
    for prefix in (0, 1, 2):  # 9 cached blocks, one free
        _cached_entry(blocks, prefix, 3)
    assert blocks.make_room(4, now=1.0)
    assert list(blocks.cache) == [1, 2] and 0 not in blocks.covers  # only the oldest went
    blocks.cache.move_to_end(1)  # prefix 1 is used again (what the scheduler does on a hit)
    assert blocks.make_room(7, now=2.0)
    assert list(blocks.cache) == [1]  # now 2 is the least recently used
    assert blocks.free() == 7 and blocks.cached == 3


def test_make_room_evicts_nothing_when_the_free_blocks_suffice() -> None:
    blocks = BlockManager(total=10, block_tokens=B)
    _cached_entry(blocks, 0, 3)
    assert blocks.make_room(7, now=1.0)
    assert list(blocks.cache) == [0]


def test_pinned_entries_are_never_evicted() -> None:
    blocks = BlockManager(total=10, block_tokens=B)
    for prefix in (0, 1, 2):
        _cached_entry(blocks, prefix, 3)
    blocks.pin(request=50, prefix=0)  # the oldest entry is in use
    assert blocks.evictable() == 6
    assert blocks.make_room(4, now=1.0)
    assert list(blocks.cache) == [0, 2]  # the pinned oldest stayed; the next oldest went
    assert not blocks.make_room(8, now=2.0)  # only the pinned entry is left: not enough room
    assert list(blocks.cache) == [0] and blocks.evictable() == 0
    blocks.unpin(50)
    assert blocks.evictable() == 3
    assert blocks.make_room(8, now=3.0) and not blocks.cache


def _hit(blocks: BlockManager, request: int, prefix: int, prompt_tokens: int) -> int:
    """What admission does on a hit: pin the entry, skip its whole blocks."""
    blocks.pin(request, prefix)
    return blocks.hit_tokens(prefix, prompt_tokens)


def test_a_hit_skips_whole_cached_blocks_and_never_the_prompts_last_token() -> None:
    blocks = BlockManager(total=10, block_tokens=B)
    _cached_entry(blocks, 0, 3)  # covers 48 tokens
    assert _hit(blocks, 1, 0, 100) == 48
    assert _hit(blocks, 2, 0, 49) == 48
    assert _hit(blocks, 3, 0, 48) == 32  # the last token must be computed to produce the first output
    assert _hit(blocks, 4, 0, 40) == 32
    assert _hit(blocks, 5, 0, 10) == 0
    assert blocks.users[0] == 5 and blocks.evictable() == 0  # every hit pins the entry


def test_a_computed_prefix_passes_its_whole_blocks_from_the_request_to_the_cache() -> None:
    blocks = BlockManager(total=20, block_tokens=B)
    blocks.used = blocks.blocks(100)  # a 100-token prompt: 7 blocks
    blocks.cache_prefix(request=1, prefix=4, shared_tokens=40, now=0.0)  # 40 shared tokens: 2 whole blocks
    assert blocks.cache[4] == 2 and blocks.covers[4] == 32 and blocks.cached == 2
    assert blocks.used == 5 and blocks.shared[1] == 2
    assert blocks.pinned[1] == 4 and blocks.evictable() == 0  # its own KV now lives in the entry
    blocks.release(1, 100)
    blocks.unpin(1)
    assert blocks.used == 0 and blocks.cached == 2 and blocks.evictable() == 2


def test_a_conversation_entry_holds_the_whole_blocks_of_each_finished_turn() -> None:
    blocks = BlockManager(total=40, block_tokens=B)
    session = 7
    # turn 1: a 50-token context, all its own
    blocks.used = blocks.blocks(50)
    blocks.cache_conversation(request=1, session=session, stored_tokens=50, now=0.0)
    blocks.release(1, 50)
    assert blocks.cache[session] == 50 // B and blocks.covers[session] == 48
    assert blocks.used == 0 and blocks.cached == 3
    # turn 2: re-sends the 50 tokens plus 20 new ones, hits the entry, and ends with 100 stored tokens
    skipped = _hit(blocks, 2, session, 70)
    assert skipped == 48
    blocks.shared[2] = skipped // B
    blocks.used = blocks.blocks(100) - skipped // B
    blocks.cache_conversation(request=2, session=session, stored_tokens=100, now=1.0)
    blocks.release(2, 100)
    blocks.unpin(2)
    assert blocks.cache[session] == 100 // B and blocks.covers[session] == 96
    assert blocks.used == 0 and blocks.cached == 6 == sum(blocks.cache.values())


def test_a_conversation_copies_the_system_prompt_blocks_it_used() -> None:
    blocks = BlockManager(total=40, block_tokens=B)
    _cached_entry(blocks, prefix=3, count=2)  # a 32-token system prompt
    skipped = _hit(blocks, 1, 3, 60)
    blocks.shared[1] = skipped // B
    blocks.used = blocks.blocks(70) - skipped // B  # 60-token prompt + 10 generated, first 2 blocks shared
    blocks.cache_conversation(request=1, session=9, stored_tokens=70, now=0.0)
    blocks.release(1, 70)
    blocks.unpin(1)
    assert blocks.cache[9] == 70 // B  # 2 copied + 2 of its own: the entry does not depend on the system prompt's
    assert blocks.cache[3] == 2 and blocks.cached == 2 + 4
    assert blocks.used == 0
    blocks.make_room(40 - 4, now=1.0)  # evict the (older) system prompt
    assert list(blocks.cache) == [9] and blocks.covers[9] == 64


def test_cached_block_seconds_integrate_the_cache_occupancy_over_time() -> None:
    blocks = BlockManager(total=40, block_tokens=B)
    blocks.change_cached(4, now=10.0)
    blocks.change_cached(-1, now=30.0)
    assert blocks.cached_block_seconds(30.0) == pytest.approx(4 * 20.0)
    assert blocks.cached_block_seconds(50.0) == pytest.approx(4 * 20.0 + 3 * 20.0)  # idle time counts too
