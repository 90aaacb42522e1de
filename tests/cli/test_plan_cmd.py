"""`fleetwise plan`: the default question, options and plan files reach plan(); report written; one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetwise.cli.plan_cmd import DEFAULT_REPORT
from fleetwise.plan import PlanSpec, plan
from fleetwise.plan.spec import plan_spec

if TYPE_CHECKING:
    from tests.cli.conftest import Ran

    Run = Callable[..., Ran]

DOCUMENTED_KEYS = {"recommendation", "options", "rejected", "schedule", "what_if", "assumptions", "sources"}
QUICK = ("--rate", "2", "-i", "300", "-o", "50", "--instances", "g6e", "--no-verify")  # plumbing only: ~0.2 s


def _without_timing(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "timing_s"}


def test_plan_with_no_arguments_answers_the_default_question_and_writes_the_report(
        run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("plan", "--json").json()
    assert set(result) >= DOCUMENTED_KEYS | {"question", "report"}
    defaults = PlanSpec()
    assert result["question"]["model"] == defaults.model
    assert result["question"]["workload"] == defaults.workload
    assert result["recommendation"]["name"] in {o["name"] for o in result["options"]}
    assert result["report"] == DEFAULT_REPORT
    assert (tmp_path / DEFAULT_REPORT).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_json_is_plans_answer_to_the_options_given(run: Run, as_printed: Callable[[Any], Any]) -> None:
    options = ("--slo", "ttft_p95=500ms", "--slo", "tpot_p95=50ms", "--purchase", "on-demand,spot", "--region",
               "us-west-2", "--what-if", "traffic=2x")
    result = run("plan", *QUICK, *options, "--no-report", "--json").json()
    spec = plan_spec(None, slo=["ttft_p95=500ms", "tpot_p95=50ms"], verify=False, rate_per_s=2.0, input_tokens=300,
                     output_tokens=50, region="us-west-2", purchase=["on-demand,spot"], instances=["g6e"],
                     what_if=["traffic=2x"])
    assert _without_timing(result) == _without_timing(as_printed(plan(spec).to_json(report=None)))
    question = result["question"]
    assert question["slo"] == {"ttft_p95_ms": 500.0, "tpot_p95_ms": 50.0}
    assert question["region"] == "us-west-2" and question["purchase"] == ["on-demand", "spot"]
    assert all(pool["instance"].startswith("g6e.") for o in result["options"] for pool in o["pools"])
    assert result["what_if"][0]["change"] == "traffic=2x"
    assert "report" not in result or result["report"] is None


def test_table_output_explains_the_answer(run: Run, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    out = run("plan", "--model", "Llama-3.1-8B-Instruct", "--rate", "4", "-i", "800", "-o", "200", "--instances",
              "inf2,g6e", "--slo", "ttft_p95=1500ms", "--purchase", "on-demand", "--what-if", "traffic=2x",
              "--report", report).ok().out
    for text in ("Recommendation", "Top options", "Rejected", "What if traffic=2x", f"Report: {report}"):
        assert text in out, text
    assert "spot" not in out.split("Rejected")[0].lower()  # only on-demand was allowed
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_top_limits_the_ranked_rows(run: Run) -> None:
    shown = run("plan", *QUICK, "--no-report", "--top", "2").ok()
    ranks = [row[0] for row in shown.table_rows()]
    assert ranks == ["1", "2"]


def test_no_report_writes_no_file(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run("plan", *QUICK, "--no-report").ok()
    assert list(tmp_path.iterdir()) == []


def test_plan_file_fields_are_overridden_one_by_one(run: Run, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("rate_per_s: 2\ninput_tokens: 300\noutput_tokens: 50\ninstances: [g6e]\n"
                         "purchase: [on-demand]\n")
    result = run("plan", plan_file, "-i", "600", "--no-verify", "--no-report", "--json",
                 "--what-if", "traffic=100000x").json()
    question = result["question"]
    assert question["mean_prompt_tokens"] == 600.0  # -i replaced the file's 300
    assert question["mean_output_tokens"] == 50.0 and question["purchase"] == ["on-demand"]  # the file's, kept
    assert question["peak_rate_per_s"] == pytest.approx(2.0, rel=0.15)
    assert "error" in result["what_if"][0]  # an impossible what-if is reported, the plan still answers


def test_installed_console_script_plans_and_writes_the_report_in_the_working_folder(
        run_installed: Run, tmp_path: Path) -> None:
    result = run_installed("plan", *QUICK, "--json", cwd=tmp_path).json()
    assert set(result) >= DOCUMENTED_KEYS
    assert result["report"] == DEFAULT_REPORT
    assert (tmp_path / DEFAULT_REPORT).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("args", "message"), [
    (("--slo", "ttft=1"), "not understood"),
    (("--slo", "ttft_p95=1.2.3ms"), "not understood"),
    (("--instances", "g7x"), "g7x"),
    (("--purchase", "reserved-1y"), "reserved capacity covers only"),
    (("--purchase", "lease"), "purchase.0: Input should be 'on-demand'"),  # names the valid choices
    (("--what-if", "traffic=two"), "not understood"),
    (("--rate", "3"), "needs input_tokens"),
    (("--rate", "1", "-i", "200000", "-o", "100"), "131,072-token context"),
    (("--model", "no-such-model"), "no-such-model"),
    (("--workload", "no-such-workload"), "no-such-workload"),
    (("--engines", "foo"), "unknown engine 'foo'"),
    (("--dtypes", "fp4"), "unknown dtype 'fp4'"),
    (("--region", "mars-1"), "mars-1"),
    (("--spot-max-share", "2"), "spot_max_share"),
    (("--finalists", "0"), "finalists"),
    (("--startup-s", "-1"), "startup_s"),
    (("--top", "0"), "--top"),
    (("missing-plan.yaml",), "missing-plan.yaml"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_input_mistakes_exit_2_with_one_line(run: Run, args: tuple[str, ...], message: str) -> None:
    run("plan", *args, "--no-report").user_error(message)


@pytest.mark.parametrize(("text", "expected"), [
    ("model: [\n", "not valid YAML"),
    ("colour: red\n", "colour"),
    ("rate_per_s: -1\n", "rate_per_s"),
], ids=["yaml", "unknown-field", "negative-rate"])
def test_plan_file_mistakes_name_the_file_and_field(run: Run, tmp_path: Path, text: str, expected: str) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text)
    run("plan", plan_file, "--no-report").user_error(str(plan_file), expected)


@pytest.mark.parametrize("where", ["a folder", "a missing folder"])
def test_report_path_that_cannot_be_written_is_one_line(run: Run, tmp_path: Path, where: str) -> None:
    target = tmp_path if where == "a folder" else tmp_path / "missing" / "r.html"
    run("plan", *QUICK, "--report", target).user_error(str(target))
