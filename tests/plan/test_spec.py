"""The planning question: PlanSpec rules, SLO and what-if parsing, plan files, and plan_spec() merging options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fleetwise.errors import DataFileError, FleetwiseError
from fleetwise.plan import PlanSpec, load_plan_file, parse_slo, parse_what_if
from fleetwise.plan.spec import PURCHASES, plan_spec

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
EXAMPLE = Path(__file__).parents[2] / "examples" / "plan-70b.yaml"


def _file(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- parsers ---------------------------------------------------------------------------------------------------


def test_slo_targets_parse_in_milliseconds_or_seconds() -> None:
    assert parse_slo("ttft_p95=800ms") == ("ttft_p95_ms", 800.0)
    assert parse_slo("tpot_p95=0.06s") == ("tpot_p95_ms", pytest.approx(60.0))
    assert parse_slo(" TTFT_P95 = 250 ") == ("ttft_p95_ms", 250.0)  # bare numbers are milliseconds


@pytest.mark.parametrize("bad", ["ttft=1", "ttft_p95=fast", "ttft_p95=0ms", "ttft_p95=-5ms", "ttft_p95"])
def test_bad_slo_targets_are_refused_with_the_accepted_form(bad: str) -> None:
    with pytest.raises(FleetwiseError, match="ttft_p95"):
        parse_slo(bad)


def test_what_ifs_parse_as_multipliers() -> None:
    assert parse_what_if("spot_price=+30%") == ("spot_price_scale", pytest.approx(1.3))
    assert parse_what_if("traffic=2x") == ("traffic_scale", 2.0)
    assert parse_what_if("prompt = 1.5x") == ("prompt_scale", 1.5)
    assert parse_what_if("traffic=-25%") == ("traffic_scale", pytest.approx(0.75))


@pytest.mark.parametrize("bad", ["spot_price=-100%", "traffic=0x", "traffic=lots", "latency=2x", "traffic=2"])
def test_bad_what_ifs_are_refused(bad: str) -> None:
    with pytest.raises(FleetwiseError):
        parse_what_if(bad)


# --- PlanSpec --------------------------------------------------------------------------------------------------


def test_the_default_question() -> None:
    spec = PlanSpec()
    assert spec.model == "meta-llama/Llama-3.1-8B-Instruct" and spec.workload == "chat-diurnal"
    assert (spec.slo.ttft_p95_ms, spec.slo.tpot_p95_ms) == (1000.0, 100.0)
    assert spec.purchase == list(PURCHASES) and spec.dtypes == ["bf16", "fp8"] and spec.finalists == 3


@pytest.mark.parametrize("changes, message", [
    ({"purchase": []}, "at least one purchase"),
    ({"purchase": ["reserved-1y"]}, "reserved capacity covers only"),
    ({"rate_per_s": 3.0}, "needs input_tokens"),
    ({"input_tokens": 100}, "go with rate_per_s"),
    ({"workload": None}, "give a workload"),
    ({"what_if": ["traffic=lots"]}, "not understood"),
    ({"spot_max_share": 1.5}, "less than or equal to 1"),
    ({"finalists": 0}, "greater than or equal to 1"),
])
def test_a_question_that_cannot_be_planned_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, FleetwiseError), match=message):
        PlanSpec().replace(**changes)


def test_repeated_purchase_options_are_kept_once_in_order() -> None:
    assert PlanSpec(purchase=["spot", "on-demand", "spot"]).purchase == ["spot", "on-demand"]


# --- plan files ------------------------------------------------------------------------------------------------


def test_plan_file_round_trip(tmp_path: Path) -> None:
    _file(tmp_path, "duration_s: 3600\narrivals: {rate_per_s: 2}\nprompt_tokens: {mean: 500}\n"
                    "output_tokens: {mean: 100}\n", "w.yaml")
    plan_file = _file(tmp_path, "model: Llama-3.1-8B-Instruct\nworkload: w.yaml\nslo: {ttft_p95_ms: 500}\n"
                                "purchase: [on-demand]\ninstances: [g6e]\n")
    spec = load_plan_file(plan_file)
    assert spec.workload == str(tmp_path / "w.yaml")  # relative to the plan file, not the working directory
    assert spec.slo.ttft_p95_ms == 500 and spec.slo.tpot_p95_ms == 100  # the other target keeps its default
    assert spec.purchase == ["on-demand"] and spec.instances == ["g6e"]


def test_a_bundled_workload_name_in_a_plan_file_stays_a_name(tmp_path: Path) -> None:
    assert load_plan_file(_file(tmp_path, "workload: chat-diurnal\n")).workload == "chat-diurnal"


def test_an_empty_plan_file_is_the_default_question(tmp_path: Path) -> None:
    assert load_plan_file(_file(tmp_path, "")) == PlanSpec()


@pytest.mark.parametrize("text, message", [
    ("model: [1, 2]\n", "model"),
    ("purchase: [reserved-1y]\n", "reserved capacity covers only"),
    ("rate_per_s: 3\n", "needs input_tokens"),
    ("what_if: [traffic=lots]\n", "not understood"),
    ("- a list\n", "expected a mapping"),
    ("model: [unclosed\n", "not valid YAML"),
    ("slo: {ttft_p95_ms: -1}\n", "slo.ttft_p95_ms"),
])
def test_bad_plan_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises((DataFileError, FleetwiseError)) as info:
        load_plan_file(path)
    assert message in str(info.value)


def test_a_missing_plan_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        load_plan_file(tmp_path / "absent.yaml")


def test_the_example_plan_file_loads() -> None:
    spec = load_plan_file(EXAMPLE)
    assert spec.model == LLAMA_70B and spec.what_if == ["traffic=2x", "spot_price=+30%"]
    assert set(spec.instances) == {"inf2", "trn1", "g6e", "p4d", "p5"}
    assert spec.startup_s == 900


def test_catalog_files_in_a_plan_file_are_relative_to_it(tmp_path: Path) -> None:
    _file(tmp_path, "instance_type,region,purchase,usd_per_hour,source,as_of,note\n", "prices.csv")
    spec = load_plan_file(_file(tmp_path, "catalog: [prices.csv]\n"))
    assert spec.catalog == [str(tmp_path / "prices.csv")]


# --- plan_spec(): a plan file and command-line options ---------------------------------------------------------


def test_without_a_file_or_options_the_question_is_the_default() -> None:
    assert plan_spec() == PlanSpec()
    assert plan_spec(model=None, instances=None, purchase=[], what_if=()) == PlanSpec()  # not given


def test_options_override_a_plan_file_field_by_field() -> None:
    spec = plan_spec(EXAMPLE, model="meta-llama/Llama-3.1-8B-Instruct", startup_s=300.0, finalists=5)
    from_file = load_plan_file(EXAMPLE)
    assert spec.model == "meta-llama/Llama-3.1-8B-Instruct" and spec.startup_s == 300 and spec.finalists == 5
    for kept in ("instances", "what_if", "purchase", "dtypes", "region", "slo", "compile_s"):
        assert getattr(spec, kept) == getattr(from_file, kept)  # everything not given comes from the file


def test_list_options_take_comma_separated_items() -> None:
    spec = plan_spec(instances=["inf2, g6e", "p5"], purchase="on-demand,spot", dtypes=["bf16,fp8,int8"],
                     what_if=["traffic=2x,spot_price=+30%"], engines=("vllm",))
    assert spec.instances == ["inf2", "g6e", "p5"] and spec.purchase == ["on-demand", "spot"]
    assert spec.dtypes == ["bf16", "fp8", "int8"] and spec.engines == ["vllm"]
    assert spec.what_if == ["traffic=2x", "spot_price=+30%"]


def test_list_options_replace_the_files_lists() -> None:
    assert plan_spec(EXAMPLE, instances="g6e").instances == ["g6e"]


def test_slo_options_merge_into_the_files_targets(tmp_path: Path) -> None:
    path = _file(tmp_path, "slo: {ttft_p95_ms: 500, tpot_p95_ms: 80}\n")
    spec = plan_spec(path, slo=["tpot_p95=0.05s"])
    assert (spec.slo.ttft_p95_ms, spec.slo.tpot_p95_ms) == (500.0, 50.0)  # TTFT from the file, TPOT given
    both = plan_spec(slo=["ttft_p95=800ms", "tpot_p95=60ms"])
    assert (both.slo.ttft_p95_ms, both.slo.tpot_p95_ms) == (800.0, 60.0)
    with pytest.raises(FleetwiseError):
        plan_spec(slo=["ttft=1"])


def test_catalog_files_given_are_added_to_the_files(tmp_path: Path) -> None:
    path = _file(tmp_path, "catalog: [/data/a.csv]\n")
    assert plan_spec(path, catalog=[Path("/data/b.csv")]).catalog == ["/data/a.csv", "/data/b.csv"]


def test_a_workload_given_replaces_a_flat_rate_from_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "rate_per_s: 4\ninput_tokens: 500\noutput_tokens: 100\n")
    spec = plan_spec(path, workload="chat-diurnal")
    assert spec.workload == "chat-diurnal" and spec.rate_per_s is None and spec.input_tokens is None
    flat = plan_spec(path)
    assert flat.rate_per_s == 4.0 and flat.input_tokens == 500


def test_a_flat_rate_given_with_lengths_is_planned_instead_of_the_workload() -> None:
    spec = plan_spec(rate_per_s=10.0, input_tokens=500, output_tokens=100)
    assert spec.rate_per_s == 10.0 and (spec.input_tokens, spec.output_tokens) == (500, 100)
    with pytest.raises(ValidationError, match="needs input_tokens"):
        plan_spec(rate_per_s=10.0)


def test_no_verify_turns_verification_off_and_calibration_paths_become_strings(tmp_path: Path) -> None:
    spec = plan_spec(verify=False, calibration=tmp_path / "cal.yaml")
    assert spec.verify is False and spec.calibration == str(tmp_path / "cal.yaml")
    assert plan_spec(_file(tmp_path, "verify: false\n")).verify is False  # the file's choice stands


def test_zero_is_an_option_given_not_left_out() -> None:
    spec = plan_spec(startup_s=0.0, spot_max_share=0.0)
    assert spec.startup_s == 0.0 and spec.spot_max_share == 0.0


def test_options_are_validated_like_a_plan_file() -> None:
    with pytest.raises(ValidationError, match="reserved capacity covers only"):
        plan_spec(purchase="reserved-1y")
