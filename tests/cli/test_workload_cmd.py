"""`fleetwise workload` (list, show, generate, read): workloads and traces summarised as the library draws them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from fleetwise.workload import bundled_workloads, generate, read_trace, resolve_workload

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

BUNDLED = "chat-diurnal"


def test_list_json_names_every_bundled_workload_with_its_arrivals(run: Run) -> None:
    rows = run("workload", "list", "--json").json()["workloads"]
    workloads = bundled_workloads()
    assert [w["name"] for w in rows] == list(workloads)
    assert BUNDLED in workloads
    for row in rows:
        spec = workloads[row["name"]]
        assert row["duration_s"] == spec.duration_s and row["rate_per_s"] == spec.arrivals.rate_per_s
        assert row["process"] == spec.arrivals.process
        assert row["diurnal"] == (spec.arrivals.hourly_profile is not None)


def test_list_prints_one_line_per_workload(run: Run) -> None:
    lines = run("workload", "list").ok().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(bundled_workloads())


def test_show_json_is_the_generated_requests_summary(run: Run, as_printed: Callable[[Any], Any]) -> None:
    payload = run("workload", "show", BUNDLED, "--duration", "120", "--json").json()
    spec = resolve_workload(BUNDLED).replace(duration_s=120.0)
    assert payload == as_printed({"workload": spec.model_dump(exclude_none=True), **generate(spec).summary()})


def test_show_reads_a_users_yaml_workload(run: Run, tmp_path: Path) -> None:
    mine = resolve_workload(BUNDLED).replace(duration_s=90.0).model_dump(exclude_none=True, mode="json")
    mine["name"] = "my-chat"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine), encoding="utf-8")
    payload = run("workload", "show", path, "--json").json()
    assert payload["workload"]["name"] == "my-chat" and payload["workload"]["duration_s"] == 90.0
    assert payload["requests"] == generate(resolve_workload(str(path))).summary()["requests"]


def test_show_prints_the_summary_lines(run: Run) -> None:
    out = run("workload", "show", BUNDLED, "--duration", "60").ok().out
    expected = generate(resolve_workload(BUNDLED).replace(duration_s=60.0)).summary()
    assert f"requests: {expected['requests']}" in out.splitlines()
    assert "workload:" not in out


def test_generated_trace_reads_back_as_the_same_requests(run: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    made = run("workload", "generate", BUNDLED, "--duration", "300", "-o", trace, "--json").json()
    assert made["output"] == str(trace)
    assert len(trace.read_text().strip().splitlines()) == made["requests"] + 1  # header + one line per request
    read = run("workload", "read", trace, "--json").json()
    assert read["format"] == "fleetwise" and read["dropped"] == {}
    assert {k: v for k, v in made.items() if k != "output"} == {k: v for k, v in read.items()
                                                                if k not in ("format", "dropped")}
    printed = run("workload", "generate", BUNDLED, "--duration", "300", "-o", tmp_path / "again.csv").ok().out
    assert printed.strip() == f"wrote {made['requests']} requests to {tmp_path / 'again.csv'}"


AZURE = ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
         "2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:15:51.2000000,879,41\n")


@pytest.mark.parametrize("fmt", ["auto", "azure"])
def test_read_understands_the_azure_trace_format(run: Run, tmp_path: Path, as_printed: Callable[[Any], Any],
                                                 fmt: str) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text(AZURE)
    payload = run("workload", "read", trace, "--format", fmt, "--json").json()
    expected = read_trace(trace, fmt)
    assert payload["format"] == "azure" == expected.format
    assert payload == as_printed({"format": expected.format, "dropped": expected.dropped,
                                  **expected.requests.summary()})
    assert payload["requests"] == 3


def test_workload_alone_lists_its_subcommands(run: Run) -> None:
    out = run("workload").out
    assert all(name in out for name in ("list", "show", "generate", "read"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "chat-nightly"), ("chat-nightly", f"closest: {BUNDLED}")),
        (("show", BUNDLED, "--duration", "-1"), ("--duration", "-1")),
        (("show", BUNDLED, "--duration", "nan"), ("--duration", "nan")),
        (("generate", BUNDLED, "-o", "/dev/null", "--duration", "1e12"), ("the limit is",)),
        (("read", "/no/such/trace.csv"), ("/no/such/trace.csv", "no such file")),
    ],
    ids=["unknown", "negative-duration", "nan-duration", "too-many-requests", "missing-trace"],
)
def test_user_mistakes_exit_2_with_one_line_naming_them(run: Run, args: tuple[str, ...],
                                                         expected: tuple[str, ...]) -> None:
    run("workload", *args).user_error(*expected)


def test_generate_reports_an_unwritable_output(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "trace.csv"
    run("workload", "generate", BUNDLED, "--duration", "60", "-o", target).user_error("cannot write the trace",
                                                                                     str(target))


def test_generate_refuses_a_folder_as_output(run: Run, tmp_path: Path) -> None:
    run("workload", "generate", BUNDLED, "--duration", "60", "-o", tmp_path).user_error(str(tmp_path), "directory")


def test_read_names_the_line_and_field_of_a_bad_row(run: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0.1,100,10\n0.2,-5,10\n")
    run("workload", "read", trace).user_error(str(trace), "line 3", "prompt_tokens", "-5")


def test_read_names_the_formats_it_knows_when_the_header_is_unknown(run: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("a,b\n1,2\n")
    line = run("workload", "read", trace).user_error(str(trace))
    assert all(name in line for name in ("fleetwise", "azure", "burstgpt", "vidur"))


def test_read_refuses_an_unknown_format(run: Run, tmp_path: Path) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text(AZURE)
    run("workload", "read", trace, "--format", "nope").user_error("unknown trace format 'nope'")


def test_a_malformed_workload_file_is_named(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("duration_s: [1\n")
    run("workload", "show", bad).user_error(str(bad), "YAML")
