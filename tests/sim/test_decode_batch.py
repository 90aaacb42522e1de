"""The decoding batch: contexts kept as offsets from the step counter, block needs counted by residue, finishes."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from fleetwise.sim.block_manager import BlockManager
from fleetwise.sim.decode_batch import DecodeBatch


def _new_blocks_brute_force(contexts: list[int], steps: int, block_tokens: int) -> int:
    """A sequence of context c stores c - 1 tokens; `steps` more tokens need the blocks they add, one by one."""
    return sum(math.ceil((c - 1 + steps) / block_tokens) - math.ceil((c - 1) / block_tokens) for c in contexts)


def _batch(rng: np.random.Generator, block_tokens: int, sequences: int) -> tuple[DecodeBatch, dict[int, int]]:
    """A batch that has already run some steps, with sequences added at different times."""
    batch = DecodeBatch(block_tokens)
    batch.step = int(rng.integers(0, 5000))
    contexts = {}
    for request in range(sequences):
        context = int(rng.integers(1, 9000))
        batch.add(request, context, remaining=int(rng.integers(1, 4000)))
        contexts[request] = context
    return batch, contexts


@pytest.mark.parametrize("block_tokens", [1, 16, 32, 1024])
def test_new_blocks_equal_a_brute_force_count_over_random_contexts(block_tokens: int) -> None:
    rng = np.random.default_rng(block_tokens)
    for _ in range(40):
        batch, contexts = _batch(rng, block_tokens, int(rng.integers(1, 60)))
        advanced = int(rng.integers(0, 300))  # contexts move with the step counter, without touching sequences
        batch.step += advanced
        now = [c + advanced for c in contexts.values()]
        for steps in (1, 2, block_tokens - 1, block_tokens, block_tokens + 1, int(rng.integers(1, 5000))):
            if steps >= 1:
                assert batch.new_blocks(steps) == _new_blocks_brute_force(now, steps, block_tokens), steps


def test_a_sequence_needs_a_block_exactly_when_its_tokens_cross_a_boundary() -> None:
    batch = DecodeBatch(16)
    batch.add(0, context=17, remaining=100)  # 16 tokens stored: one full block
    assert [batch.new_blocks(k) for k in (1, 16, 17, 32, 33)] == [1, 1, 2, 2, 3]
    batch.step += 1  # now 17 stored: the second block has 15 free slots
    assert [batch.new_blocks(k) for k in (1, 15, 16)] == [0, 0, 1]


def _largest_fitting(contexts: list[int], horizon: int, room: int, block_tokens: int) -> int:
    fits = [k for k in range(horizon + 1) if _new_blocks_brute_force(contexts, k, block_tokens) <= room]
    return max(fits)


def test_steps_before_shortage_is_the_longest_run_whose_blocks_fit_free_and_evictable_room() -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        batch, contexts = _batch(rng, 16, int(rng.integers(1, 40)))
        now = list(contexts.values())
        horizon = int(rng.integers(1, 400))
        blocks = BlockManager(total=100_000, block_tokens=16)
        free = int(rng.integers(0, max(_new_blocks_brute_force(now, horizon, 16), 1) + 5))
        evictable = int(rng.integers(0, 4)) if trial % 2 else 0
        pinned = 3
        blocks.used = blocks.total - free - evictable - pinned
        blocks.cache = OrderedDict([(1, evictable), (2, pinned)])  # one unpinned entry, one in use
        blocks.cached = evictable + pinned
        blocks.users = {2: 1}
        expected = _largest_fitting(now, horizon, free + evictable, 16)
        assert batch.steps_before_shortage(horizon, blocks) == expected, (trial, free, evictable, horizon)


def test_steps_before_shortage_is_zero_when_the_next_step_needs_more_than_exists() -> None:
    batch = DecodeBatch(16)
    for request in range(3):
        batch.add(request, context=17, remaining=50)  # every sequence needs a new block at once
    blocks = BlockManager(total=10, block_tokens=16)
    blocks.used = 8
    assert batch.steps_before_shortage(50, blocks) == 0
    blocks.used = 7
    assert batch.steps_before_shortage(50, blocks) == 16  # one block each lasts 16 steps


def test_finishes_come_out_in_step_order_once_their_step_has_run() -> None:
    batch = DecodeBatch(16)
    batch.step = 10
    for request, remaining in ((0, 30), (1, 5), (2, 12), (3, 5)):
        batch.add(request, context=100, remaining=remaining)
    assert batch.steps_to_next_finish() == 5
    batch.step += 4
    assert batch.finished() == []
    batch.step += 1
    assert sorted(batch.finished()) == [1, 3]
    assert batch.steps_to_next_finish() == 7
    batch.step += 25
    assert batch.finished() == [2, 0]
    assert len(batch) == 4  # finished ones are still tracked until removed


def test_remove_gives_the_current_context_and_a_dropped_finish_never_comes() -> None:
    batch = DecodeBatch(16)
    batch.add(0, context=50, remaining=10)
    batch.step += 3
    batch.add(1, context=200, remaining=5)
    batch.step += 2
    assert batch.longest() == 202
    assert batch.offset_sum == (50 - 0) + (200 - 3)
    assert batch.remove(1) == 202  # preempted: 200 + 2 generated
    batch.drop_finish(1)
    assert batch.longest() == 55  # the longest is recomputed after it leaves
    batch.step += 10
    assert batch.finished() == [0]
    assert batch.remove(0) == 65
    assert len(batch) == 0 and batch.offset_sum == 0 and sum(batch.residues) == 0
