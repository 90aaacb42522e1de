"""The decision report: one self-contained HTML file (inline CSS and SVG, no scripts) from a plan's data."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fleetwise import __version__
from fleetwise.errors import FleetwiseError
from fleetwise.plan.charts import PALETTE, bars, lines, scatter, stacked
from fleetwise.plan.result import CurvePoint, OptionRow, PlanResult, Rejected, WhatIf

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .num { text-align: right; } .summary { font-size: 16px; line-height: 1.5; }
.pass { color: #2a7d2a; } .fail { color: #b22; } figure { margin: 1em 0; }
"""


def render_report(result: PlanResult) -> str:
    """The plan as an HTML page."""
    rec, q = result.recommendation, result.question
    sections = [
        f"<h1>fleetwise plan: {escape(q.model)}</h1>",
        f"<p>Workload <b>{escape(q.workload)}</b>: peak {q.peak_rate_per_s:g} requests/s, mean "
        f"{q.mean_rate_per_s:g}/s, mean prompt {q.mean_prompt_tokens:g} and output {q.mean_output_tokens:g} "
        f"tokens; SLO p95 TTFT ≤ {q.slo['ttft_p95_ms']:g} ms, p95 TPOT ≤ {q.slo['tpot_p95_ms']:g} ms; region "
        f"{escape(q.region)}; purchase {escape(', '.join(q.purchase))}.</p>",
        "<h2>Recommendation</h2>", f'<p class="summary" id="summary">{escape(rec.summary)}</p>',
        _table(["pool", "replicas (min–peak)", "instances at peak", "purchase", "monthly USD"],
               [[f"{p.instance} {p.engine} TP={p.tp} {p.dtype}", f"{p.replicas_min}–{p.replicas_peak}",
                 p.instances_peak, ", ".join(p.purchase), f"{p.monthly_usd:,.0f}"] for p in rec.pools]),
        "<h2>Cost against p95 latency</h2>", _pareto(result),
        "<h2>Capacity within the SLO</h2>", _capacity(result),
        "<h2>Hourly autoscaling plan</h2>", _schedule_chart(result), _schedule_table(result),
        "<h2>Cost breakdown</h2>", _cost_chart(result), _break_even(result),
        "<h2>Ranked options</h2>", _options(result),
        "<h2>Rejected options</h2>", _rejected(result),
        *([_what_if(result)] if result.what_if else []),
        "<h2>Verification in the simulator</h2>", _verification(result),
        "<h2>Assumptions</h2>", "<ul>" + "".join(f"<li>{escape(a)}</li>" for a in result.assumptions) + "</ul>",
        "<h2>Data sources</h2>", _table(["what", "source"], [[s.what, s.source] for s in result.sources]),
        f"<p><small>fleetwise {__version__}; planned in {result.timing_s:g} s.</small></p>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>fleetwise plan: {escape(q.model)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def check_report_path(path: str | Path) -> Path:
    """The report's path, refused before any planning when it cannot be a file: a folder, or a missing folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise FleetwiseError(f"--report {path} is a folder; give a file name such as {target / 'plan.html'}")
    if not target.parent.is_dir():
        raise FleetwiseError(f"--report {path}: the folder {target.parent} does not exist")
    return target


def write_report(result: PlanResult, path: str | Path) -> Path:
    """Write the report; returns the path written."""
    target = check_report_path(path)
    try:
        target.write_text(render_report(result), encoding="utf-8")
    except OSError as exc:
        raise FleetwiseError(f"cannot write the report to {target}: {exc.strerror or exc}") from None
    return target


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _latency(row: OptionRow) -> float:
    """Simulated p95 TTFT where it goes with the cost shown (not for a check stopped at fewer replicas)."""
    if row.verified is not None and row.verified.ttft_ms_p95 is not None and not row.verified.stopped:
        return row.verified.ttft_ms_p95
    return float(row.predicted.ttft_ms_p95 or 0.0)


def _pareto(result: PlanResult) -> str:
    best = result.recommendation.name
    points = [(_latency(r), r.monthly_usd, r.name, r.name == best) for r in result.options]
    frontier: list[tuple[float, float]] = []
    for x, y, _, _ in sorted(points, key=lambda p: (p[0], p[1])):
        if not frontier or y < frontier[-1][1]:
            frontier.append((x, y))
    return ("<figure>" + scatter("pareto", "Monthly cost vs p95 TTFT at the peak hour", "p95 TTFT at the peak, ms",
                                 "USD per month", points, frontier)
            + "<figcaption>Red: the recommendation; dashed: the Pareto frontier (nothing both cheaper and faster). "
              "Latency is simulated for the finalists, screened (mean-value model) for the rest.</figcaption>"
              "</figure>")


def _capacity(result: PlanResult) -> str:
    rows = result.capacity_curve
    colours = [PALETTE[0] if r.kind == "gpu" else PALETTE[1] for r in rows]
    chart = bars("capacity", "Max requests/s per instance within the SLO (blue: GPU, orange: Neuron)",
                 "requests/s per instance", [r.name for r in rows], [r.max_rate_per_instance for r in rows], colours)
    table = _table(["#", "option", "req/s per replica", "req/s per instance", "req/s per $/h"],
                   [[i + 1, r.name, r.max_rate_per_replica, r.max_rate_per_instance,
                     r.max_rate_per_usd_hour if r.max_rate_per_usd_hour is not None else "n/a"]
                    for i, r in enumerate(rows)])
    slo = result.question.slo

    def used(point: CurvePoint) -> float:  # the worse of TTFT and TPOT, as a share of its SLO
        return float(max(point.ttft_ms / slo["ttft_p95_ms"], point.tpot_ms / slo["tpot_p95_ms"]))

    curves = {r.name: [(p.rate_per_instance, used(p)) for p in r.curve] for r in rows[:6] if r.curve}
    headroom = result.question.latency_headroom
    curve_chart = lines("capacity-curve", "Capacity curves: screened latency as load grows (six cheapest options)",
                        "requests/s per instance", "worse of TTFT, TPOT / SLO", curves,
                        [(1.0, "SLO"), (headroom, f"screening target ({headroom:g} x SLO)")])
    return f"<figure>{chart}</figure><figure>{curve_chart}</figure>{table}"


def _schedule_chart(result: PlanResult) -> str:
    schedule = result.schedule
    series: dict[str, list[float]] = {}
    for row in schedule:
        for pool in row.pools:
            short = pool.name.rsplit(" ", 1)[0]  # instance, engine, TP and dtype
            for purchase, count in (("reserved", pool.reserved), ("on-demand", pool.on_demand), ("spot", pool.spot)):
                series.setdefault(f"{short} {purchase}", []).append(float(count))
    series = {k: v for k, v in series.items() if any(v)}
    return "<figure>" + stacked("schedule", "Instances per hour of the day, by purchase option", "hour of day",
                                "instances", [str(r.hour) for r in schedule], series) + "</figure>"


def _schedule_table(result: PlanResult) -> str:
    rows: list[list[object]] = []
    for row in result.schedule:
        pools = "; ".join(f"{p.name.split(' ')[0]}: {p.replicas} replica(s) on {p.instances} instance(s) "
                          f"(on-demand {p.on_demand}, spot {p.spot} incl. spares, reserved {p.reserved})"
                          for p in row.pools)
        rows.append([row.hour, f"{row.rate_per_s:g}", pools, f"{row.usd:,.2f}"])
    return _table(["hour", "requests/s", "pools", "USD this hour"], rows)


def _cost_chart(result: PlanResult) -> str:
    labels, values = [], []
    for pool in result.recommendation.pools:
        for purchase, usd in pool.cost_by_purchase_monthly_usd.items():
            if usd > 0:
                labels.append(f"{pool.instance} {purchase}")
                values.append(usd)
    return "<figure>" + bars("costs", "Monthly cost by pool and purchase option", "USD per month", labels,
                             values) + "</figure>"


def _break_even(result: PlanResult) -> str:
    rows: list[list[object]] = []
    for pool in result.recommendation.pools:
        for term, share in pool.break_even_utilization.items():
            rows.append([pool.instance, term, "price not found" if share is None else f"{share:.0%}"])
    if not rows:
        return "<p>No reserved options were requested.</p>"
    return ("<p>Break-even utilisation: the share of hours a committed instance must be busy to cost less than "
            "on-demand.</p>" + _table(["instance", "commitment", "break-even utilisation"], rows))


def _options(result: PlanResult) -> str:
    rows: list[list[object]] = []
    for r in result.options[:25]:
        v = r.verified
        check = "not simulated" if v is None else (
            f"{'stopped, could not win' if v.stopped else 'pass' if v.passed else 'FAIL'}: {v.ttft_ms_p95} / "
            f"{v.tpot_ms_p95} ms" + (f", +{v.replicas_added} replicas" if v.replicas_added else ""))
        rows.append([r.rank, r.name, f"{r.monthly_usd:,.0f}", r.usd_per_million_output_tokens,
                     f"{r.predicted.ttft_ms_p95} / {r.predicted.tpot_ms_p95}", check])
    return _table(["#", "option", "USD/month", "USD per M output tokens", "screened p95 TTFT / TPOT ms",
                   "simulated p95 TTFT / TPOT"], rows)


def _rejected(result: PlanResult) -> str:
    groups: dict[str, list[Rejected]] = {}
    for r in result.rejected:
        groups.setdefault(r.category, []).append(r)
    parts = []
    for category, rows in groups.items():
        parts.append(f"<h3>{escape(category)} ({len(rows)})</h3>")
        parts.append(_table(["option", "reason"], [[r.option, r.reason] for r in rows[:40]]))
        if len(rows) > 40:
            parts.append(f"<p>… and {len(rows) - 40} more (see --json).</p>")
    return "\n".join(parts)


def _what_if(result: PlanResult) -> str:
    rows: list[list[object]] = [
        [w.change, w.recommendation, f"{w.monthly_usd:,.0f}", f"{w.delta_pct:+.1f}%" if w.delta_pct is not None
         else "n/a"] if isinstance(w, WhatIf) else [w.change, w.error, "n/a", "n/a"] for w in result.what_if]
    return "<h2>What if</h2>" + _table(["change", "recommendation", "USD/month", "change in cost"], rows)


def _verification(result: PlanResult) -> str:
    peak = result.verification.peak
    if peak is None:
        return "<p>Verification was turned off (--no-verify): latencies are screened estimates.</p>"
    head = (f"<p>Peak hour ({peak.window_s:g} s, {peak.requests} requests): p95 TTFT {peak.ttft_ms_p95} ms, "
            f"TPOT {peak.tpot_ms_p95} ms, goodput {peak.goodput:.1%}, replicas added {peak.replicas_added}.</p>")
    rows: list[list[object]] = [[d.hour, d.requests, d.ttft_ms_p95, d.tpot_ms_p95, f"{d.goodput:.1%}",
                                 "pass" if d.passed else "FAIL"] for d in result.verification.day]
    return head + _table(["hour", "requests", "p95 TTFT ms", "p95 TPOT ms", "goodput", "SLO"], rows)
