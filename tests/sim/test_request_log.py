"""The per-request log: an empty log records that nothing has happened yet; the record written during a run
becomes the same log, field for field."""

from __future__ import annotations

import numpy as np

from fleetwise.sim.request_log import RequestLog, RequestRecord


def test_an_empty_log_has_no_times_no_counts_and_no_replica() -> None:
    log = RequestLog.empty(6)
    for times in (log.first_token_s, log.finish_s, log.admitted_s):
        assert times.shape == (6,) and np.isnan(times).all()
    for counts in (log.preemptions, log.prefix_hit_tokens, log.requeues):
        assert counts.shape == (6,) and counts.dtype.kind == "i" and not counts.any()
    assert log.replica.shape == (6,) and (log.replica == -1).all()  # no replica has taken them
    assert log.dropped == {} and len(log.itl) == 0


def test_empty_logs_share_no_state() -> None:
    a, b = RequestLog.empty(3), RequestLog.empty(3)
    a.dropped[0] = "too long"
    a.itl.add(0.01, 0.0, 1, 1.0)
    a.finish_s[1] = 2.0
    a.preemptions[2] += 1
    assert b.dropped == {} and len(b.itl) == 0
    assert np.isnan(b.finish_s).all() and not b.preemptions.any()


def test_a_record_becomes_the_log_it_wrote_and_records_share_no_state() -> None:
    record, other = RequestRecord(3), RequestRecord(3)
    record.first_token_s[0], record.finish_s[0], record.admitted_s[0] = 0.5, 2.0, 0.25
    record.preemptions[1] += 2
    record.prefix_hit_tokens[0] = 128
    record.replica[0] = 4
    record.requeues[2] += 1
    record.dropped[2] = "too long"
    record.itl.add(0.01, 0.0025, 5, 3.0)
    log = record.log()
    assert log.first_token_s[0] == 0.5 and np.isnan(log.first_token_s[1:]).all()
    assert log.finish_s[0] == 2.0 and log.admitted_s[0] == 0.25 and log.finish_s.dtype == np.float64
    assert log.preemptions.tolist() == [0, 2, 0] and log.preemptions.dtype == np.int64
    assert log.prefix_hit_tokens.tolist() == [128, 0, 0] and log.replica.tolist() == [4, -1, -1]
    assert log.requeues.tolist() == [0, 0, 1]
    assert log.dropped == {2: "too long"} and log.itl is record.itl and log.itl.total() == 15.0
    assert other.log().dropped == {} and not other.log().preemptions.any() and len(other.itl) == 0
