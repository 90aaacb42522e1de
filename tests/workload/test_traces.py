"""Tests for fleetwise.workload.traces: reading fleetwise's and public trace CSVs, and writing fleetwise's."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.workload import (
    Arrivals,
    Lengths,
    Sessions,
    SharedPrefixes,
    Workload,
    generate,
    read_trace,
    write_trace,
)

HEADER = "arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens,session_id\n"


def _trace(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_a_written_trace_reads_back_with_prefixes_and_sessions(tmp_path: Path) -> None:
    workload = Workload(duration_s=600.0, arrivals=Arrivals(rate_per_s=1.0), prompt_tokens=Lengths(mean=200),
                        output_tokens=Lengths(mean=20), shared_prefixes=SharedPrefixes(count=2, tokens=16),
                        sessions=Sessions(turns=Lengths(mean=2), think_time_s=5.0, user_tokens=Lengths(mean=10)))
    requests = generate(workload)
    write_trace(requests, tmp_path / "t.csv")
    trace = read_trace(tmp_path / "t.csv")
    assert trace.format == "fleetwise" and trace.dropped == {}
    assert np.allclose(trace.requests.arrival_s, requests.arrival_s - requests.arrival_s[0], atol=1e-6)
    for column in ("prompt_tokens", "output_tokens", "prefix_id", "prefix_tokens", "sessions"):
        assert np.array_equal(getattr(trace.requests, column), getattr(requests, column)), column


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,4808,10\n"
         "2023-11-16 18:15:50.1000000,3180,8\n2023-11-16 18:15:47.0000000,100,0\n", "azure"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,Conversation log\n"
         "8.5,GPT-4,1087,0,1087,Conversation log\n9,ChatGPT,30,12,42,API log\n", "burstgpt"),
        ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,20\n0.5,200,30\n", "vidur"),
    ],
)
def test_public_trace_formats_are_detected_and_nothing_is_lost_silently(tmp_path: Path, text: str, fmt: str) -> None:
    trace = read_trace(_trace(tmp_path, text))
    assert trace.format == fmt
    assert trace.requests.arrival_s[0] == 0.0 and np.all(np.diff(trace.requests.arrival_s) >= 0)
    assert sum(trace.dropped.values()) + len(trace.requests) == text.count("\n") - 1


def test_azure_timestamps_become_seconds_from_the_first_request(tmp_path: Path) -> None:
    trace = read_trace(_trace(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                        "2023-11-16 18:15:50.1000000,3180,8\n"
                                        "2023-11-16 18:15:46.6805900,4808,10\n"
                                        "2023-11-16 18:15:47.0000000,100,0\n"))
    assert trace.requests.arrival_s.tolist() == pytest.approx([0.0, 50.1 - 46.68059], abs=1e-6)
    assert trace.requests.prompt_tokens.tolist() == [4808, 3180]  # sorted by arrival
    assert trace.dropped == {"no output tokens": 1}


def test_burstgpt_failed_requests_are_dropped_and_counted(tmp_path: Path) -> None:
    trace = read_trace(_trace(tmp_path, "Timestamp,Model,Request tokens,Response tokens\n5,ChatGPT,472,18\n"
                                        "8.5,GPT-4,1087,0\n9,ChatGPT,0,12\n"))
    assert len(trace.requests) == 1
    assert trace.dropped == {"no output tokens": 1, "no prompt tokens": 1}


def test_the_format_can_be_named_instead_of_detected(tmp_path: Path) -> None:
    path = _trace(tmp_path, "arrived_at,num_prefill_tokens,num_decode_tokens\n1.0,100,20\n")
    assert read_trace(path, format="vidur").format == "vidur"
    with pytest.raises(DataFileError, match="azure trace lacks column"):
        read_trace(path, format="azure")
    with pytest.raises(DataFileError, match="unknown trace format 'sharegpt'"):
        read_trace(path, format="sharegpt")


def test_the_bundled_sample_trace_reads_as_a_fleetwise_trace() -> None:
    with resources.as_file(resources.files("fleetwise.workload") / "data" / "sample-chat-trace.csv") as path:
        trace = read_trace(path)
    assert trace.format == "fleetwise" and trace.dropped == {}
    assert len(trace.requests) == 902
    assert set(trace.requests.prefix_tokens[trace.requests.prefix_id >= 0].tolist()) == {512}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,in,out\n1,2,3\n", "cannot tell the trace format"),
        ("arrival_s,prompt_tokens,output_tokens\n0,abc,3\n", "line 2"),
        ("arrival_s,prompt_tokens,output_tokens\n-1,10,3\n", "must be a non-negative number"),
        ("arrival_s,prompt_tokens,output_tokens\n0,1e30,3\n", "beyond any model"),
        ("arrival_s,prompt_tokens,output_tokens\n0,0,3\n", "no replayable requests"),
        ("arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n0,100,3,abc,5\n",
         "field 'prefix_id'.*whole number"),
        ("arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens,session_id\n0,100,3,1,5,2.5\n",
         "field 'session_id'.*whole number"),
        ("arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n0,100,3,-2,5\n", "must be -1"),
    ],
)
def test_unrecognised_or_broken_traces_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        read_trace(_trace(tmp_path, text))


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("0,100,3,1,100,-1", "prefix_tokens", "below the prompt's 100"),
        ("0,100,3,1,0,-1", "prefix_id", "a prefix_id needs prefix_tokens > 0"),
        ("0,100,3,-1,10,-1", "prefix_id", "prefix_tokens need a prefix_id"),
    ],
)
def test_a_shared_prefix_must_lie_inside_its_prompt_and_have_an_id(tmp_path: Path, row: str, field: str,
                                                                   message: str) -> None:
    with pytest.raises(DataFileError, match=message) as excinfo:
        read_trace(_trace(tmp_path, HEADER + row + "\n"))
    assert (excinfo.value.entry, excinfo.value.field) == ("request 1", field)


def test_a_system_prompt_id_may_not_also_be_a_conversation_id(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="prefix_id 7 is also a session_id"):
        read_trace(_trace(tmp_path, HEADER + "0,100,3,7,10,-1\n1,100,3,-1,0,7\n"))


def test_writing_a_trace_where_it_cannot_be_written_is_a_user_error(tmp_path: Path) -> None:
    requests = generate(Workload(duration_s=10.0, arrivals=Arrivals(rate_per_s=1.0), prompt_tokens=Lengths(mean=5),
                                 output_tokens=Lengths(mean=5)))
    with pytest.raises(FleetwiseError, match="cannot write the trace"):
        write_trace(requests, tmp_path / "missing-folder" / "t.csv")
