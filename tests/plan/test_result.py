"""The typed plan result and its `--json` document (schema version 1)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fleetwise.plan.result import SCHEMA_VERSION, PlanResult, Rejected, WhatIf, WhatIfError

TOP_LEVEL = {"schema_version", "question", "recommendation", "comparison", "options", "rejected", "rejected_counts",
             "schedule", "buckets", "capacity_curve", "verification", "what_if", "assumptions", "sources", "timing_s",
             "simulations"}


@pytest.fixture(scope="module")
def doc(default_plan: PlanResult) -> dict:
    return default_plan.to_json()


def test_the_json_document_has_the_documented_top_level_keys(doc: dict) -> None:
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert set(doc) == TOP_LEVEL
    assert list(doc)[:1] == ["schema_version"]
    assert list(doc).index("rejected_counts") == list(doc).index("rejected") + 1  # next to what it counts


def test_the_json_document_survives_a_round_trip_through_json(doc: dict) -> None:
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # plain numbers, no numpy scalars, no NaN


def test_the_recommendation_carries_the_documented_fields(doc: dict) -> None:
    rec = doc["recommendation"]
    for key in ("pools", "monthly_usd", "usd_per_million_output_tokens", "ttft_ms_p95", "tpot_ms_p95", "summary"):
        assert key in rec
    for key in ("instance", "tp", "dtype", "engine", "max_seqs", "replicas_peak", "replicas_min", "instances_peak",
                "purchase", "cost_by_purchase_monthly_usd", "break_even_utilization", "bucket_share"):
        assert key in rec["pools"][0]
    assert isinstance(rec["pools"][0]["tp"], int) and isinstance(rec["pools"][0]["bucket_share"], list)


def test_comparison_options_rejections_and_schedule_have_their_documented_shapes(doc: dict) -> None:
    assert set(doc["comparison"]) == {"best_single_pool", "best_mix", "best_gpu_only", "best_neuron_only",
                                      "savings_vs_gpu_only_pct", "savings_vs_neuron_only_pct", "mix_vs_single_pct",
                                      "basis"}
    assert set(doc["comparison"]["best_gpu_only"]) == {"name", "monthly_usd"}
    for option in doc["options"]:
        assert {"predicted", "verified", "rank", "name", "monthly_usd", "pools"} <= set(option)
        assert set(option["predicted"]) == {"ttft_ms_p95", "tpot_ms_p95"}
    assert all(set(r) == {"option", "category", "reason"} for r in doc["rejected"])
    assert len(doc["schedule"]) == 24
    for pool in doc["schedule"][0]["pools"]:
        assert {"replicas", "instances", "on_demand", "spot", "reserved"} <= set(pool)


def test_the_report_path_is_included_only_when_a_report_was_written(default_plan: PlanResult, doc: dict) -> None:
    assert "report" not in doc
    assert default_plan.to_json(report="out/plan.html")["report"] == "out/plan.html"


def test_rejections_are_counted_per_category_in_order_of_first_appearance(default_plan: PlanResult) -> None:
    rows = [Rejected("a", "misses SLO", "x"), Rejected("b", "no price", "y"), Rejected("c", "misses SLO", "z")]
    counts = replace(default_plan, rejected=rows).rejected_counts
    assert counts == {"misses SLO": 2, "no price": 1} and list(counts) == ["misses SLO", "no price"]
    assert replace(default_plan, rejected=[]).rejected_counts == {}


def test_what_ifs_and_their_errors_are_written_as_they_are(default_plan: PlanResult) -> None:
    rec = default_plan.recommendation
    moved = WhatIf("traffic=2x", rec.name, rec.pools, rec.monthly_usd * 2, None, 1.0, 2.0, rec.monthly_usd, 100.0,
                   True)
    doc = replace(default_plan, what_if=[moved, WhatIfError("prompt=100x", "too long")]).to_json()
    assert doc["what_if"][1] == {"change": "prompt=100x", "error": "too long"}
    assert doc["what_if"][0]["change"] == "traffic=2x" and doc["what_if"][0]["same_deployment"] is True
    assert doc["what_if"][0]["pools"][0]["instance"] == rec.pools[0].instance
