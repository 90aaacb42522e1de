"""Small self-contained SVG charts (no scripts, no external files): scatter with a frontier, bars, stacked bars."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 30, 60
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 2) if first + i * step <= high + step * 0.01]


def _path(points: Sequence[tuple[float, float]], at: Callable[[float, float], tuple[float, float]]) -> str:
    """SVG path data through `points`, mapped to the plot by `at`."""
    return " ".join(f"{'M' if i == 0 else 'L'}{at(x, y)[0]:.1f},{at(x, y)[1]:.1f}" for i, (x, y) in enumerate(points))


def _legend(entries: Sequence[tuple[int, str, str]], left: bool = False) -> list[str]:
    """A legend box at the top right (or left): (row, colour, name) entries on white, drawn over the plot."""
    if not entries:
        return []
    x = LEFT + 6 if left else WIDTH - RIGHT - 296
    parts = [f'<rect x="{x}" y="{TOP - 4}" width="292" height="{14 * len(entries) + 6}" '
             'fill="white" fill-opacity="0.9" stroke="#ccc"/>']
    for row, colour, name in entries:
        parts.append(f'<rect x="{x + 6}" y="{TOP + 14 * row}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 21}" y="{TOP + 9 + 14 * row}" font-size="11">{escape(name[:48])}</text>')
    return parts


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _frame(chart_id: str, title: str, x_label: str, y_label: str, y_max: float,
           x_ticks: list[tuple[float, str]] | None = None) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{escape(title)}</title>',
             f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold" font-size="13">'
             f'{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" '
             f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>']
    for tick in _ticks(0.0, y_max):
        y = HEIGHT - BOTTOM - plot_h * tick / y_max
        parts.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_label(tick)}</text>')
    for x, label in x_ticks or []:
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="11">'
                     f'{escape(label)}</text>')
    return parts


def scatter(chart_id: str, title: str, x_label: str, y_label: str, points: Sequence[tuple[float, float, str, bool]],
            frontier: Sequence[tuple[float, float]]) -> str:
    """Points (x, y, label, highlighted) and a frontier line through (x, y) pairs."""
    if not points:
        return ""
    x_max = max(p[0] for p in points) * 1.1 or 1.0
    y_max = max(p[1] for p in points) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + plot_w * x / x_max, HEIGHT - BOTTOM - plot_h * y / y_max

    ticks = [(at(t, 0)[0], _label(t)) for t in _ticks(0.0, x_max) if t <= x_max]
    parts = _frame(chart_id, title, x_label, y_label, y_max, ticks)
    if len(frontier) > 1:
        parts.append(f'<path class="frontier" d="{_path(frontier, at)}" fill="none" stroke="#2ca02c" '
                     'stroke-dasharray="4 3"/>')
    for x, y, label, highlighted in points:
        cx, cy = at(x, y)
        colour, radius = ("#d62728", 7) if highlighted else ("#1f77b4", 4)
        parts.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{colour}" '
                     f'fill-opacity="0.75"><title>{escape(label)}: {x:,.1f}, ${y:,.0f}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def bars(chart_id: str, title: str, y_label: str, labels: Sequence[str], values: Sequence[float],
         colours: Sequence[str] | None = None) -> str:
    """One bar per label; labels shown on hover and abbreviated under the axis."""
    return stacked(chart_id, title, "", y_label, labels, {"": list(values)}, colours=colours)


def stacked(chart_id: str, title: str, x_label: str, y_label: str, labels: Sequence[str],
            series: dict[str, list[float]], colours: Sequence[str] | None = None) -> str:
    """Stacked bars: one column per label, one colour per series (legend drawn when named)."""
    if not labels:
        return ""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    y_max = max(max(totals) * 1.1, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(labels)
    ticks = [(LEFT + slot * (i + 0.5), label if len(label) <= 10 else str(i + 1)) for i, label in enumerate(labels)]
    parts = _frame(chart_id, title, x_label, y_label, y_max, ticks if len(labels) <= 30 else None)
    for s, (name, values) in enumerate(series.items()):
        for i, value in enumerate(values):
            below = sum(list(series.values())[k][i] for k in range(s))
            height = plot_h * value / y_max
            y = HEIGHT - BOTTOM - plot_h * below / y_max - height
            colour = colours[i % len(colours)] if colours and len(series) == 1 else PALETTE[s % len(PALETTE)]
            tip = f"{labels[i]}{' ' + name if name else ''}: {value:,.4g}"
            parts.append(f'<rect class="bar" x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" '
                         f'width="{slot * 0.8:.1f}" height="{max(height, 0.0):.1f}" fill="{colour}">'
                         f'<title>{escape(tip)}</title></rect>')
    parts.extend(_legend([(s, PALETTE[s % len(PALETTE)], name) for s, name in enumerate(series) if name]))
    parts.append("</svg>")
    return "\n".join(parts)


def lines(chart_id: str, title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]],
          thresholds: Sequence[tuple[float, str]] = ()) -> str:
    """One polyline per named series of (x, y) points, with horizontal dashed threshold lines."""
    points = [xy for values in series.values() for xy in values]
    if not points:
        return ""
    x_max = max(x for x, _ in points) * 1.05 or 1.0
    y_max = max([y for _, y in points] + [t for t, _ in thresholds]) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + plot_w * x / x_max, HEIGHT - BOTTOM - plot_h * min(y, y_max) / y_max

    ticks = [(at(t, 0)[0], _label(t)) for t in _ticks(0.0, x_max) if t <= x_max]
    parts = _frame(chart_id, title, x_label, y_label, y_max, ticks)
    for value, label in thresholds:
        y = at(0, value)[1]
        parts.append(f'<line class="threshold" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#d62728" stroke-dasharray="5 4"/><text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" '
                     f'font-size="11" text-anchor="end" fill="#d62728">{escape(label)}</text>')
    for s, (name, values) in enumerate(series.items()):
        parts.append(f'<path class="line" d="{_path(values, at)}" fill="none" stroke="{PALETTE[s % len(PALETTE)]}" '
                     f'stroke-width="2"><title>{escape(name)}</title></path>')
    parts.extend(_legend([(s, PALETTE[s % len(PALETTE)], name) for s, name in enumerate(series)], left=True))
    parts.append("</svg>")
    return "\n".join(parts)
