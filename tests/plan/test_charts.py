"""Inline SVG charts: well-formed, one mark per value, scaled to the data, escaped labels."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from fleetwise.plan.charts import HEIGHT, PALETTE, _ticks, bars, lines, scatter, stacked

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg" and root.get("class") == "chart"
    return root


def _marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == cls]


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (0.0, 7.3), (0.0, 1234.5), (0.0, 0.004), (10.0, 95.0)])
def test_axis_ticks_are_round_numbers_covering_the_range(low: float, high: float) -> None:
    ticks = _ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high - (ticks[1] - ticks[0])
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1.0, 2.0, 5.0, 10.0)
    assert len(ticks) <= 8


def test_scatter_draws_every_point_and_highlights_the_chosen_one() -> None:
    points = [(100.0, 2000.0, "a", False), (300.0, 1500.0, "b", True), (900.0, 800.0, "c", False)]
    root = _parse(scatter("pareto", "Cost vs latency", "ms", "USD", points, [(100.0, 2000.0), (900.0, 800.0)]))
    circles = _marks(root, "circle", "point")
    assert len(circles) == 3
    assert [c.get("fill") for c in circles].count("#d62728") == 1
    xs = [float(c.get("cx", 0)) for c in circles]
    ys = [float(c.get("cy", 0)) for c in circles]
    assert xs == sorted(xs) and ys == sorted(ys)  # further right for slower; lower for cheaper (SVG y grows down)
    assert len(_marks(root, "path", "frontier")) == 1
    assert scatter("pareto", "t", "x", "y", [], []) == ""


def test_bars_are_one_per_label_with_heights_proportional_to_values() -> None:
    root = _parse(bars("capacity", "Rate", "req/s", ["a", "b", "c"], [1.0, 2.0, 4.0], ["#111111", "#222222"]))
    rects = _marks(root, "rect", "bar")
    heights = [float(r.get("height", 0)) for r in rects]
    assert len(rects) == 3 and heights[1] == pytest.approx(2 * heights[0], rel=0.01)
    assert heights[2] == pytest.approx(4 * heights[0], rel=0.01)
    assert [r.get("fill") for r in rects] == ["#111111", "#222222", "#111111"]
    assert bars("capacity", "Rate", "req/s", [], []) == ""


def test_stacked_bars_sit_on_each_other_and_name_their_series() -> None:
    series = {"on-demand": [1.0, 2.0], "spot": [1.0, 0.0]}
    root = _parse(stacked("schedule", "Instances", "hour", "instances", ["0", "1"], series))
    rects = _marks(root, "rect", "bar")
    assert len(rects) == 4
    first_on, second_on, first_spot, _ = rects
    assert float(first_spot.get("y", 0)) + float(first_spot.get("height", 0)) == pytest.approx(
        float(first_on.get("y", 0)), abs=0.2)  # spot drawn on top of on-demand in the same column
    assert float(first_on.get("height", 0)) * 2 == pytest.approx(float(second_on.get("height", 0)), rel=0.01)
    assert {r.get("fill") for r in rects[:2]} == {PALETTE[0]} and rects[2].get("fill") == PALETTE[1]
    legend = [t.text for t in root.iter(f"{SVG}text") if t.text in series]
    assert legend == ["on-demand", "spot"]


def test_many_columns_leave_out_their_axis_labels() -> None:
    labels = [str(i) for i in range(40)]
    root = _parse(stacked("s", "t", "x", "y", labels, {"": [1.0] * 40}))
    assert not [t for t in root.iter(f"{SVG}text") if t.text == "39"]


def test_lines_draw_a_path_per_series_and_the_thresholds() -> None:
    series = {"a": [(1.0, 0.2), (2.0, 0.5)], "b": [(1.0, 0.3), (3.0, 1.4)]}
    root = _parse(lines("capacity-curve", "Curves", "req/s", "share of SLO", series, [(1.0, "SLO"), (0.8, "target")]))
    assert len(_marks(root, "path", "line")) == 2
    thresholds = _marks(root, "line", "threshold")
    assert len(thresholds) == 2
    slo_y, target_y = (float(t.get("y1", 0)) for t in thresholds)
    assert slo_y < target_y < HEIGHT  # the SLO line above the screening target
    assert lines("c", "t", "x", "y", {}) == ""


def test_titles_and_labels_are_escaped() -> None:
    svg = bars("costs", "A <b> & C", "USD", ["p4d <x>"], [1.0])
    root = _parse(svg)
    assert root.get("aria-label") == "A <b> & C"
    assert "<b>" not in svg and "&lt;b&gt; &amp; C" in svg
