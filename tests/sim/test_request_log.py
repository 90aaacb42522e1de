"""The per-request log: an empty log records that nothing has happened yet."""

from __future__ import annotations

import numpy as np

from fleetwise.sim.request_log import RequestLog


def test_an_empty_log_has_no_times_no_counts_and_no_replica() -> None:
    log = RequestLog.empty(6)
    for times in (log.first_token_s, log.finish_s, log.admitted_s):
        assert times.shape == (6,) and np.isnan(times).all()
    for counts in (log.preemptions, log.prefix_hit_tokens, log.requeues):
        assert counts.shape == (6,) and counts.dtype.kind == "i" and not counts.any()
    assert log.replica.shape == (6,) and (log.replica == -1).all()  # no replica has taken them
    assert log.dropped == {} and log.itl_segments == []


def test_empty_logs_share_no_state() -> None:
    a, b = RequestLog.empty(3), RequestLog.empty(3)
    a.dropped[0] = "too long"
    a.itl_segments.append((0.01, 0.01, 1, 1.0))
    a.finish_s[1] = 2.0
    a.preemptions[2] += 1
    assert b.dropped == {} and b.itl_segments == []
    assert np.isnan(b.finish_s).all() and not b.preemptions.any()
