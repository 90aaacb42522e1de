"""The CLI as a user runs it: a real subprocess, JSON contracts, and exit code 2 with one line for user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEETWISE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "fleetwise.cli.app", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_fit_json_has_the_documented_keys(isolated_home: Path) -> None:
    out = run("fit", "meta-llama/Llama-3.1-8B-Instruct", "--instance", "g5.xlarge", "--instance", "inf2.xlarge",
              "--json", home=isolated_home)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    rows = payload["results"]
    assert {r["instance"] for r in rows} == {"g5.xlarge", "inf2.xlarge"}
    for key in ("instance", "tp", "dtype", "fits", "reason", "weights_gib_per_device", "kv_cache_gib",
                "max_sequences"):
        assert all(key in r for r in rows), key
    assert any(r["fits"] for r in rows) and any(not r["fits"] and r["reason"] for r in rows)


def test_fit_table_names_the_instances(isolated_home: Path) -> None:
    out = run("fit", "meta-llama/Llama-3.1-70B-Instruct", "--family", "p5", home=isolated_home)
    assert out.returncode == 0, out.stderr
    assert "p5.48xlarge" in out.stdout and "fits" in out.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("fit", "meta-llama/Llama-3.1-8B-Instrukt"), "closest: meta-llama/Llama-3.1-8B-Instruct"),
        (("fit", "meta-llama/Llama-3.1-8B-Instruct", "--instance", "p5.24xlarge"), "closest: p5.48xlarge"),
        (("fit", "meta-llama/Llama-3.1-8B-Instruct", "--dtype", "fp4"), "unknown dtype 'fp4'"),
        (("catalog", "--family", "p9"), "unknown instance family 'p9'"),
        (("catalog", "show", "inf3.xlarge"), "closest: inf2.xlarge"),
        (("models", "show", "no/such-model"), "unknown model"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(isolated_home: Path, args: tuple[str, ...],
                                                             expected: str) -> None:
    out = run(*args, home=isolated_home)
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_malformed_config_names_the_missing_field(isolated_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                                  "num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}))
    out = run("fit", str(config), home=isolated_home)
    assert out.returncode == 2
    assert "intermediate_size" in out.stderr and str(config) in out.stderr
    assert "Traceback" not in out.stderr


def test_models_lists_the_bundled_library_as_json(isolated_home: Path) -> None:
    out = run("models", "--json", home=isolated_home)
    assert out.returncode == 0, out.stderr
    models = json.loads(out.stdout)["models"]
    assert len(models) >= 25
    llama = next(m for m in models if m["hf_id"] == "meta-llama/Llama-3.1-8B-Instruct")
    assert llama["total_params"] == pytest.approx(8.03e9, rel=0.01)


def test_models_show_reports_weights_and_kv(isolated_home: Path) -> None:
    out = run("models", "show", "deepseek-ai/DeepSeek-V3", "--json", home=isolated_home)
    summary = json.loads(out.stdout)
    assert summary["attention"]["kind"] == "mla"
    assert summary["weights_gib"]["fp8"] < summary["weights_gib"]["bf16"]


def test_catalog_filters_by_family_and_shows_price_per_accelerator_hour(isolated_home: Path) -> None:
    out = run("catalog", "--family", "inf2", "--json", home=isolated_home)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["instances"]
    assert {r["family"] for r in rows} == {"inf2"}
    big = next(r for r in rows if r["instance"] == "inf2.48xlarge")
    assert big["usd_per_accelerator_hour"] == pytest.approx(big["usd_per_hour"]["on-demand"] / 12)


def test_catalog_show_prints_sources(isolated_home: Path) -> None:
    out = run("catalog", "show", "p5.48xlarge", "--json", home=isolated_home)
    payload = json.loads(out.stdout)
    assert payload["instance"]["vcpus"]["source"]
    assert payload["chip"]["id"] == "h100-sxm"


def test_user_catalog_file_overrides_a_price(isolated_home: Path, tmp_path: Path) -> None:
    override = tmp_path / "prices.csv"
    override.write_text("instance_type,region,purchase,usd_per_hour,source,as_of,note\n"
                        "g5.xlarge,us-east-1,on-demand,0.5,my negotiated rate,2026-11-25,\n")
    out = run("catalog", "--instance", "g5.xlarge", "--catalog", str(override), "--json", home=isolated_home)
    assert json.loads(out.stdout)["instances"][0]["usd_per_hour"]["on-demand"] == 0.5


def test_bad_catalog_file_is_reported_with_file_entry_and_field(isolated_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("instances:\n  - instance_type: g5.xlarge\n    vcpus: {value: many, source: me}\n")
    out = run("catalog", "--catalog", str(bad), home=isolated_home)
    assert out.returncode == 2
    assert str(bad) in out.stderr and "g5.xlarge" in out.stderr and "vcpus" in out.stderr


def test_import_prices_writes_the_user_price_file(isolated_home: Path, tmp_path: Path) -> None:
    from test_aws_price_list import offer_document

    offer = tmp_path / "index.json"
    offer.write_text(json.dumps(offer_document()))
    out = run("catalog", "import-prices", str(offer), "--json", home=isolated_home)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["imported"] == 3
    assert (isolated_home / "prices.csv").is_file()
    listed = run("catalog", "--instance", "inf2.xlarge", "--json", home=isolated_home)
    prices = json.loads(listed.stdout)["instances"][0]["usd_per_hour"]
    assert prices["on-demand"] == pytest.approx(0.9)
    assert prices["reserved-3y"] == pytest.approx(0.25)


def test_help_teaches_every_command(isolated_home: Path) -> None:
    out = run("--help", home=isolated_home)
    for command in ("fit", "catalog", "models"):
        assert command in out.stdout
    fit_help = run("fit", "--help", home=isolated_home)
    assert "--context" in fit_help.stdout and "--json" in fit_help.stdout


@pytest.mark.parametrize(
    "args",
    [("models", "show", "meta-llama/Llama-3.1-8B-Instruct", "--context", "-5"),
     ("catalog", "--region", "mars-1"),
     ("fit", "meta-llama/Llama-3.1-8B-Instruct", "--region", "mars-1")],
)
def test_out_of_range_options_exit_2(isolated_home: Path, args: tuple[str, ...]) -> None:
    out = run(*args, home=isolated_home)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_json_flag_on_the_group_applies_to_show(isolated_home: Path) -> None:
    out = run("models", "--json", "show", "Qwen/Qwen3-8B", home=isolated_home)
    assert json.loads(out.stdout)["model"] == "Qwen/Qwen3-8B"


def test_predict_json_and_a_user_calibration(isolated_home: Path, tmp_path: Path) -> None:
    args = ("predict", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "inf2.48xlarge", "--tp", "8",
            "--batch", "4", "--input-tokens", "512", "--output-tokens", "128", "--json")
    out = run(*args, home=isolated_home)
    assert out.returncode == 0, out.stderr
    bundled = json.loads(out.stdout)
    assert bundled["ttft_ms"]["p50"] > 0 and bundled["tpot_ms"]["p50"] > 0
    assert bundled["breakdown"]["prefill"]["bound"] in ("compute", "memory", "communication", "overhead")

    calibration = tmp_path / "cal.yaml"
    fitted = run("calibrate", "--no-cross-validate", "--output", str(calibration), "--json", home=isolated_home)
    assert fitted.returncode == 0, fitted.stderr
    assert json.loads(fitted.stdout)["median_abs_pct_error"] <= 15
    again = json.loads(run(*args, "--calibration", str(calibration), home=isolated_home).stdout)
    assert again["tpot_ms"]["p50"] == pytest.approx(bundled["tpot_ms"]["p50"], rel=0.02)


def test_validate_reports_errors_by_family(isolated_home: Path) -> None:
    out = run("validate", "--json", home=isolated_home)
    report = json.loads(out.stdout)
    assert report["median_abs_pct_error"] <= 15
    assert {"inf2", "trn1", "trn2", "p5", "g6e"} <= set(report["by_family"])
    assert len(report["excluded"]) >= 8 and all(x["reason"] for x in report["excluded"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [((), "exactly one of"), (("--batch", "2", "--rate", "1"), "exactly one of"),
     (("--batch", "2", "--tp", "3"), "TP=3"), (("--rate", "nan"), "positive number"),
     (("--concurrency", "1000000000"), "limit 100,000")],
)
def test_predict_argument_errors(isolated_home: Path, extra: tuple[str, ...], message: str) -> None:
    out = run("predict", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "g6e.12xlarge", "-i", "100", "-o", "10",
              *extra, home=isolated_home)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", "--rate", "nan", "-i", "10",
          "-o", "10"), "positive number"),
        (("predict", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", "--batch", "1", "-i", "10",
          "-o", "10", "--calibration", "{tmp}"), "is a directory"),
        (("validate", "--measurements", "{tmp}"), "is a directory"),
        (("calibrate", "--ridge", "-1"), "--ridge"),
        (("calibrate", "--output", "{tmp}", "--no-cross-validate"), "is a directory"),
        (("predict", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "g5.xlarge", "--batch", "1", "-i", "10",
          "-o", "10"), "not found in the catalog"),
    ],
)
def test_perf_commands_refuse_bad_input_cleanly(isolated_home: Path, tmp_path: Path, args: tuple[str, ...],
                                                message: str) -> None:
    out = run(*(a.replace("{tmp}", str(tmp_path)) for a in args), home=isolated_home)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("column", "value"), [("tp", "1.5"), ("value", "nan"), ("tp", "inf")])
def test_bad_measurement_rows_name_line_and_field(isolated_home: Path, tmp_path: Path, column: str,
                                                  value: str) -> None:
    row = {"source": "me", "hardware": "p5.48xlarge", "tp": "1", "engine": "vllm",
           "model": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bf16", "batch": "1", "input_tokens": "128",
           "output_tokens": "128", "metric": "tpot_ms_p50", "value": "7.0"}
    row[column] = value
    path = tmp_path / "m.csv"
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    out = run("validate", "--measurements", str(path), home=isolated_home)
    assert out.returncode == 2 and "line 2" in out.stderr and column in out.stderr


def test_workload_commands(isolated_home: Path, tmp_path: Path) -> None:
    listed = json.loads(run("workload", "list", "--json", home=isolated_home).stdout)
    assert any(w["name"] == "chat-diurnal" for w in listed["workloads"])
    trace = tmp_path / "trace.csv"
    made = run("workload", "generate", "chat-diurnal", "--duration", "300", "-o", str(trace), "--json",
               home=isolated_home)
    assert made.returncode == 0, made.stderr
    read = json.loads(run("workload", "read", str(trace), "--json", home=isolated_home).stdout)
    assert read["requests"] == json.loads(made.stdout)["requests"] and read["format"] == "fleetwise"
    bad = run("workload", "show", "chat-nightly", home=isolated_home)
    assert bad.returncode == 2 and "closest: chat-diurnal" in bad.stderr


def test_simulate_reports_the_documented_keys(isolated_home: Path) -> None:
    out = run("simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", "--rate", "2", "-i", "256",
              "-o", "32", "--duration", "60", "--seed", "4", "--slo-ttft-ms", "500", "--json", home=isolated_home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("requests", "completed", "goodput", "cost_usd", "usd_per_million_output_tokens", "timeseries"):
        assert key in report
    for key in ("ttft_ms", "tpot_ms", "e2e_s"):
        assert set(report[key]) == {"p50", "p90", "p95", "p99"}
    assert report["completed"] + report["dropped"] == report["requests"]
    again = json.loads(run("simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", "--rate", "2",
                           "-i", "256", "-o", "32", "--duration", "60", "--seed", "4", "--slo-ttft-ms", "500",
                           "--json", home=isolated_home).stdout)
    assert again == report  # deterministic for a given seed


@pytest.mark.parametrize(
    ("extra", "message"),
    [((), "exactly one of"), (("--rate", "1"), "needs --input-tokens"),
     (("--rate", "1", "-i", "10", "-o", "10", "--router", "random"), "--router"),
     (("--rate", "-1", "-i", "10", "-o", "10"), "rate_per_s"),
     (("--rate", "1", "-i", "10", "-o", "10", "--router", "cost-aware"), "needs a TTFT SLO"),
     (("--rate", "1", "-i", "10", "-o", "10", "--pool", "p5.48xlarge"), "not both"),
     (("--rate", "1", "-i", "10", "-o", "10", "--interval", "nan"), "--interval"),
     (("--rate", "1", "-i", "10", "-o", "10", "--seed", "-1"), "--seed"),
     (("--rate", "1", "-i", "10", "-o", "10", "--slo-ttft-ms", "nan"), "--slo-ttft-ms"),
     (("--rate", "1", "-i", "10", "-o", "10", "--startup-s", "nan"), "startup time"),
     (("--rate", "1", "-i", "10", "-o", "10", "--replicas", "10000000"), "replicas must be between"),
     (("--rate", "1", "-i", "10", "-o", "10", "--autoscale", "--target-inflight", "0"), "target in-flight"),
     (("--rate", "1", "-i", "10", "-o", "10", "--autoscale", "--min-replicas", "9", "--max-replicas", "8"),
      "autoscale min"),
     (("--rate", "1", "-i", "10", "-o", "10", "--purchase", "spot", "--spot-interruptions-per-hour", "-1"),
      "non-negative"),
     (("--rate", "1e9", "-i", "10", "-o", "10", "--duration", "1e9"), "the limit is")],
)
def test_simulate_argument_errors(isolated_home: Path, extra: tuple[str, ...], message: str) -> None:
    out = run("simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "p5.48xlarge", *extra, home=isolated_home)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("pool", "message"),
    [("p5.48xlarge:colour=red", "not key=value"), ("p5.48xlarge:tp=1.7", "tp must be a whole number"),
     ("p5.48xlarge:replicas=nan", "replicas must be a whole number"), ("p5.48xlarge:startup_s=inf", "finite"),
     ("p5.48xlarge:purchase=spot:spot_rate=-2", "spot_rate must not be negative"),
     ("p5.48xlarge:autoscale_min=0:target_inflight=0", "target in-flight")],
)
def test_simulate_pool_errors(isolated_home: Path, pool: str, message: str) -> None:
    out = run("simulate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "--pool", pool, "--rate", "1", "-i", "10",
              "-o", "10", home=isolated_home)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_workload_generate_reports_an_unwritable_output(isolated_home: Path) -> None:
    out = run("workload", "generate", "chat-diurnal", "--duration", "60", "-o",
              str(isolated_home / "missing" / "trace.csv"), home=isolated_home)
    assert out.returncode == 2 and "cannot write the trace" in out.stderr and "Traceback" not in out.stderr


def test_plan_with_no_arguments_writes_the_report_and_json(isolated_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FLEETWISE_HOME": str(isolated_home), "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "fleetwise.cli.app", "plan", "--json"], capture_output=True,
                         text=True, env=env, timeout=120, check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"recommendation", "options", "rejected", "schedule", "what_if", "assumptions", "sources"}
    assert (tmp_path / "fleetwise-plan.html").read_text().startswith("<!DOCTYPE html>")
    assert result["report"].endswith("fleetwise-plan.html")


def test_plan_table_output_explains_the_answer(isolated_home: Path, tmp_path: Path) -> None:
    out = run("plan", "--model", "Llama-3.1-8B-Instruct", "--rate", "4", "-i", "800", "-o", "200", "--instances",
              "inf2,g6e", "--slo", "ttft_p95=1500ms", "--purchase", "on-demand", "--what-if", "traffic=2x",
              "--report", str(tmp_path / "r.html"), home=isolated_home)
    assert out.returncode == 0, out.stderr
    for text in ("Recommendation", "Top options", "Rejected", "What if traffic=2x", "r.html"):
        assert text in out.stdout
    assert "spot" not in out.stdout.split("Rejected")[0].lower()


@pytest.mark.parametrize("args, message", [
    (("plan", "--slo", "ttft=1"), "not understood"),
    (("plan", "--instances", "g7x"), "g7x"),
    (("plan", "--purchase", "reserved-1y"), "reserved capacity covers only"),
    (("plan", "--what-if", "traffic=two"), "not understood"),
    (("plan", "--rate", "3"), "needs input_tokens"),
    (("plan", "--model", "no-such-model"), "no-such-model"),
    (("plan", "missing-plan.yaml"), "missing-plan.yaml"),
])
def test_plan_input_errors_exit_2_with_one_line(isolated_home: Path, args: tuple[str, ...], message: str) -> None:
    out = run(*args, "--no-report", home=isolated_home)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("args, message", [
    (("plan", "--slo", "ttft_p95=1.2.3ms"), "not understood"),
    (("plan", "--rate", "1", "-i", "200000", "-o", "100"), "131,072-token context"),
])
def test_plan_rejects_malformed_numbers_and_impossible_lengths(isolated_home: Path, args: tuple[str, ...],
                                                                message: str) -> None:
    out = run(*args, "--no-report", home=isolated_home)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_plan_file_fields_are_overridden_one_by_one(isolated_home: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("rate_per_s: 2\ninput_tokens: 300\noutput_tokens: 50\ninstances: [g6e]\n"
                         "purchase: [on-demand]\n")
    out = run("plan", str(plan_file), "-i", "600", "--no-verify", "--no-report", "--json",
              "--what-if", "traffic=100000x", home=isolated_home)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["question"]["mean_prompt_tokens"] == 600.0  # -i replaced the file's 300; rate and -o kept
    assert result["question"]["peak_rate_per_s"] == pytest.approx(2.0, rel=0.15)
    assert "error" in result["what_if"][0]  # an impossible what-if is reported, the plan still answers
