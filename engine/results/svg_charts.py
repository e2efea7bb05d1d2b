"""Self-contained SVG charts of a job (no dependencies, no external CSS, scripts or fonts): the search curve,
the Pareto scatter and learning curves. Each is an SvgChart, which Jupyter renders inline (``_repr_svg_``) and
which saves to a file; a report can embed its text as it is.

Jobs can have 100,000 trials: a scatter draws at most MAX_POINTS points, always keeping the points that
matter (the Pareto front, the trials that raised the best so far) and an even sample of the rest.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

MAX_POINTS = 2000  # scatter points per chart
MAX_LINE_POINTS = 1000  # vertices per learning curve
WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
MUTED, ACCENT = "#9aa5b1", "#d9480f"
PALETTE = ("#1f77b4", "#d9480f", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")

Point = tuple[float, float]


@dataclass(frozen=True)
class SvgChart:
    """An SVG document: ``.svg`` is its text; Jupyter shows it inline; ``save(path)`` writes it."""

    svg: str
    title: str = ""

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_text(self.svg, encoding="utf-8")
        return target

    def __str__(self) -> str:
        return self.svg


# ---- the charts ---------------------------------------------------------------------------------------

def search_curve(rewards: Sequence[tuple[int, float]], direction: str = "max", title: str = "search curve",
                 y_label: str = "reward") -> SvgChart:
    """Each trial's reward by trial number, and the best so far as a step line (exact, whatever the sample)."""
    points = sorted((float(n), float(r)) for n, r in rewards if _finite(n, r))
    better = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
    improving: list[int] = []
    for i, (_, value) in enumerate(points):
        if not improving or better(value, points[improving[-1]][1]):
            improving.append(i)
    steps: list[Point] = []
    for i in improving:
        if steps:
            steps.append((points[i][0], steps[-1][1]))
        steps.append(points[i])
    if points and steps:
        steps.append((points[-1][0], steps[-1][1]))  # the best so far holds to the last trial
    shown = [points[i] for i in bounded(len(points), MAX_POINTS, keep=improving)]
    plot = _Plot(title, "trial", y_label, shown + steps)
    plot.scatter(shown, MUTED, "trials")
    plot.line(steps, ACCENT, "best so far")
    return plot.chart([("trials", MUTED, "dot"), ("best so far", ACCENT, "line")])


def pareto_scatter(points: Sequence[Point], front: Sequence[Point], x_label: str, y_label: str,
                   x_dir: str = "min", title: str = "Pareto front") -> SvgChart:
    """Every trial as a dot, the front's trials highlighted and joined by the front's step line. ``front`` is
    sorted by x (as ``pareto_front`` returns it); all of it is drawn, and a sample of the rest."""
    front = [p for p in front if _finite(*p)]
    on_front = set(front)
    others = [p for p in points if _finite(*p) and p not in on_front]
    room = max(0, MAX_POINTS - len(front))
    shown = [others[i] for i in bounded(len(others), room)]
    from nasapp.engine.results.front import staircase

    stairs = staircase(list(front), x_dir)
    plot = _Plot(title, f"{x_label} ({'lower' if x_dir == 'min' else 'higher'} is better)", y_label,
                 shown + list(front))
    plot.scatter(shown, MUTED, "trials")
    plot.line(stairs, ACCENT, "front-line")
    plot.scatter(front, ACCENT, "front", radius=3.5)
    return plot.chart([("trials", MUTED, "dot"), ("Pareto front", ACCENT, "dot")])


def learning_curves(series: dict[str, Sequence[Point]], y_label: str = "accuracy", x_label: str = "step",
                    title: str = "learning curves") -> SvgChart:
    """One line per named series (a trial's reports by step), each thinned to MAX_LINE_POINTS vertices."""
    lines = {}
    for name, values in series.items():
        clean = sorted(p for p in values if _finite(*p))
        lines[name] = [clean[i] for i in bounded(len(clean), MAX_LINE_POINTS)]
    plot = _Plot(title, x_label, y_label, [p for line in lines.values() for p in line])
    legend = []
    for i, (name, line) in enumerate(lines.items()):
        color = PALETTE[i % len(PALETTE)]
        plot.line(line, color, name)
        plot.scatter(line[-1:], color, name + " end")
        legend.append((name, color, "line"))
    return plot.chart(legend)


def bounded(n: int, limit: int, keep: Sequence[int] = ()) -> list[int]:
    """Indices of at most ``limit`` of ``n`` points (more only when ``keep`` alone holds more): every index in
    ``keep``, then an even sample of the others; ascending."""
    if n <= limit:
        return list(range(n))
    kept = set(keep)
    room = limit - len(kept)
    if room > 0:
        rest = [i for i in range(n) if i not in kept]
        kept.update(rest[round(j * (len(rest) - 1) / max(1, room - 1))] for j in range(room))
    return sorted(kept)


# ---- drawing ------------------------------------------------------------------------------------------

class _Plot:
    """An SVG canvas with two linear axes fitted to ``extent`` (the points every mark will use)."""

    def __init__(self, title: str, x_label: str, y_label: str, extent: Sequence[Point]) -> None:
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.x_range = _padded([x for x, _ in extent])
        self.y_range = _padded([y for _, y in extent])
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        lo, hi = self.x_range
        return LEFT + (x - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        lo, hi = self.y_range
        return HEIGHT - BOTTOM - (y - lo) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    def scatter(self, points: Sequence[Point], color: str, series: str, radius: float = 2.5) -> None:
        dots = "".join(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="{radius}"/>' for x, y in points)
        self.parts.append(f'<g data-series={quoteattr(series)} fill="{color}" fill-opacity="0.8">{dots}</g>')

    def line(self, points: Sequence[Point], color: str, series: str) -> None:
        if len(points) < 2:
            return
        path = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in points)
        self.parts.append(f'<polyline data-series={quoteattr(series)} points="{path}" fill="none"'
                          f' stroke="{color}" stroke-width="1.8"/>')

    def chart(self, legend: list[tuple[str, str, str]]) -> SvgChart:
        body = "".join([*self._axes(), *self.parts, self._legend(legend)])
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
               f' viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
               f"<title>{escape(self.title)}</title>"
               f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
               f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(self.title)}</text>'
               f"{body}</svg>")
        return SvgChart(svg, self.title)

    def _axes(self) -> list[str]:
        out = ['<g data-role="axes" stroke="#333" stroke-width="1">'
               f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>'
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/></g>']
        ticks = ['<g data-role="ticks" fill="#333">']
        for value in nice_ticks(*self.x_range):
            x = self.px(value)
            ticks.append(f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM + 4}"'
                         f' stroke="#333"/><text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}"'
                         f' text-anchor="middle">{escape(tick_label(value))}</text>')
        for value in nice_ticks(*self.y_range):
            y = self.py(value)
            ticks.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                         f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(tick_label(value))}</text>')
        ticks.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
                     f"{escape(self.x_label)}</text>"
                     f'<text transform="translate(16 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)"'
                     f' text-anchor="middle">{escape(self.y_label)}</text></g>')
        return out + ["".join(ticks)]

    def _legend(self, entries: list[tuple[str, str, str]]) -> str:
        rows = []
        for i, (label, color, mark) in enumerate(entries):
            y = TOP + 8 + 16 * i
            x = WIDTH - RIGHT - 150
            sign = (f'<rect x="{x}" y="{y - 4}" width="14" height="3" fill="{color}"/>' if mark == "line"
                    else f'<rect x="{x + 4}" y="{y - 6}" width="6" height="6" rx="3" fill="{color}"/>')
            rows.append(f'{sign}<text x="{x + 20}" y="{y}" fill="#333">{escape(label[:24])}</text>')
        return f'<g data-role="legend">{"".join(rows)}</g>'


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) between lo and hi."""
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_label(value: float) -> str:
    return f"{value:.4g}" if value != 0 else "0"


def _padded(values: list[float]) -> tuple[float, float]:
    """The range of ``values`` with 5% room on each side (a unit around a single value; 0..1 for none)."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
