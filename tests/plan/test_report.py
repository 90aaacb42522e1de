"""The HTML decision report from a typed PlanResult: self-contained, every section and chart, escaped text."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from fleetwise.plan.report import render_report, write_report
from fleetwise.plan.result import PlanResult, Rejected, Verification, WhatIf, WhatIfError

CHARTS = ("pareto", "capacity", "capacity-curve", "schedule", "costs")
SECTIONS = ("Recommendation", "Cost against p95 latency", "Capacity within the SLO", "Hourly autoscaling plan",
            "Cost breakdown", "Ranked options", "Rejected options", "Verification in the simulator", "Assumptions",
            "Data sources")


@pytest.fixture(scope="module")
def html(default_plan: PlanResult) -> str:
    return render_report(default_plan)


def test_the_report_is_one_self_contained_page(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from elsewhere
    assert "<style>" in html


def test_the_report_has_every_section_and_chart(html: str) -> None:
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
    for chart in CHARTS:
        assert f'<svg class="chart" id="{chart}"' in html
    assert "<h2>What if</h2>" not in html  # no what-ifs were asked


def test_the_recommendation_is_summarised_and_tabled(default_plan: PlanResult, html: str) -> None:
    rec = default_plan.recommendation
    assert '<p class="summary" id="summary">Serve ' in html
    pool = rec.pools[0]
    assert f"<td>{pool.instance} {pool.engine} TP={pool.tp} {pool.dtype}</td>" in html
    assert f"<td>{pool.replicas_min}–{pool.replicas_peak}</td>" in html
    assert f"{default_plan.question.peak_rate_per_s:g} requests/s" in html


def test_the_recommendation_is_the_one_highlighted_point(default_plan: PlanResult, html: str) -> None:
    pareto = html[html.index('id="pareto"'):]
    pareto = pareto[:pareto.index("</svg>")]
    assert pareto.count('fill="#d62728"') == 1
    assert pareto.count('class="point"') == len(default_plan.options)
    highlighted = pareto.split('fill="#d62728"')[1]
    assert f"<title>{default_plan.recommendation.name}:" in highlighted


def test_the_verification_section_reports_the_peak_and_every_hour(default_plan: PlanResult, html: str) -> None:
    peak = default_plan.verification.peak
    assert peak is not None
    assert f"Peak hour ({peak.window_s:g} s, {peak.requests} requests)" in html
    section = html[html.index("<h2>Verification in the simulator</h2>"):html.index("<h2>Assumptions</h2>")]
    assert section.count("<tr>") == 1 + len(default_plan.verification.day)  # header and one row per hour


def test_long_rejection_lists_are_cut_with_a_count(default_plan: PlanResult, html: str) -> None:
    for category, count in default_plan.rejected_counts.items():
        assert f"<h3>{category.replace(chr(39), '&#x27;')} ({count})</h3>" in html
        if count > 40:
            assert f"… and {count - 40} more (see --json)." in html


def test_at_most_25_options_are_ranked_in_the_table(default_plan: PlanResult, html: str) -> None:
    assert len(default_plan.options) > 25
    section = html[html.index("<h2>Ranked options</h2>"):html.index("<h2>Rejected options</h2>")]
    assert section.count("<tr>") == 1 + 25


def test_text_from_the_plan_is_escaped(default_plan: PlanResult) -> None:
    rec = replace(default_plan.recommendation, summary="Serve <b>this</b> & that")
    hostile = replace(default_plan, recommendation=rec,
                      rejected=[Rejected("x<script>", "misses SLO", "reason <i>&</i>")])
    page = render_report(hostile)
    assert "<b>this</b>" not in page and "Serve &lt;b&gt;this&lt;/b&gt; &amp; that" in page
    assert "<script>" not in page and "x&lt;script&gt;" in page


def test_what_ifs_get_their_own_table_with_errors_shown(default_plan: PlanResult) -> None:
    rec = default_plan.recommendation
    moved = WhatIf("traffic=2x", "p5.48xlarge vllm TP=1 fp8 max_seqs=128", rec.pools, 4321.0, None, None, None,
                   4321.0 - rec.monthly_usd, 57.4, False)
    page = render_report(replace(default_plan, what_if=[moved, WhatIfError("prompt=100x", "too long")]))
    section = page[page.index("<h2>What if</h2>"):]
    assert "<td>traffic=2x</td><td>p5.48xlarge vllm TP=1 fp8 max_seqs=128</td><td>4,321</td><td>+57.4%</td>" in section
    assert "<td>prompt=100x</td><td>too long</td><td>n/a</td><td>n/a</td>" in section


def test_a_report_without_verification_says_so(default_plan: PlanResult) -> None:
    page = render_report(replace(default_plan, verification=Verification(None, [], 500)))
    assert "Verification was turned off (--no-verify)" in page


def test_break_even_utilisation_is_listed_or_the_absence_of_commitments_said(default_plan: PlanResult,
                                                                           html: str) -> None:
    pool = default_plan.recommendation.pools[0]
    assert set(pool.break_even_utilization) == {"reserved-1y", "reserved-3y"}
    for term, share in pool.break_even_utilization.items():
        shown = "price not found" if share is None else f"{share:.0%}"
        assert f"<td>{pool.instance}</td><td>{term}</td><td>{shown}</td>" in html
    no_terms = replace(default_plan.recommendation, pools=[replace(pool, break_even_utilization={})])
    assert "No reserved options were requested." in render_report(replace(default_plan, recommendation=no_terms))


def test_write_report_writes_the_page_and_returns_its_path(default_plan: PlanResult, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_report(default_plan, tmp_path / "plan.html")
    assert written == tmp_path / "plan.html"
    assert written.read_text(encoding="utf-8") == render_report(default_plan)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert write_report(default_plan, "~/home.html") == tmp_path / "home.html"  # ~ is expanded
    assert (tmp_path / "home.html").exists()
