"""The fleet's event queue: typed events popped by time, ties in the order they were scheduled."""

from __future__ import annotations

from fleetwise.sim.events import AutoscaleTick, EventQueue, ReplicaReady, SpotNotice, SpotStop


def test_events_pop_by_time_then_in_the_order_they_were_pushed() -> None:
    queue = EventQueue()
    pushed = [(5.0, SpotNotice(0)), (1.0, ReplicaReady(1)), (5.0, AutoscaleTick()), (1.0, SpotStop(0)),
              (3.0, SpotNotice(2)), (1.0, ReplicaReady(0))]
    for when, event in pushed:
        queue.push(when, event)
    popped = []
    while (due := queue.pop_until(10.0)) is not None:
        popped.append(due)
    # a stable sort by time is exactly "time, then insertion"
    assert popped == sorted(pushed, key=lambda item: item[0])
    assert not queue


def test_equal_events_at_one_time_keep_their_insertion_order() -> None:
    queue = EventQueue()
    for pool in range(50):  # the heap must not fall back on comparing the events themselves
        queue.push(7.0, SpotStop(pool))
    order = [queue.pop_until(7.0) for _ in range(50)]
    assert [event.pool for _, event in order] == list(range(50))  # type: ignore[union-attr]


def test_pop_until_takes_events_at_or_before_now_and_leaves_later_ones() -> None:
    queue = EventQueue()
    queue.push(2.0, AutoscaleTick())
    queue.push(4.0, ReplicaReady(0))
    assert queue.pop_until(1.999) is None
    assert queue.pop_until(2.0) == (2.0, AutoscaleTick())  # due exactly now
    assert queue.pop_until(3.0) is None
    assert queue and queue.next_time() == 4.0
    assert queue.pop_until(4.5) == (4.0, ReplicaReady(0))
    assert not queue

