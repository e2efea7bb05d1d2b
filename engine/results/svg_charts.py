"""Self-contained SVG charts of a job (no dependencies, no external CSS, scripts or fonts): the search curve,
the Pareto scatter, learning curves, and for the analysis the decisions' importance as bars and the trials as
parallel coordinates. Each is an SvgChart, which Jupyter renders inline (``_repr_svg_``) and
which saves to a file; a report can embed its text as it is.

Jobs can have 100,000 trials: a scatter draws at most MAX_POINTS points, always keeping the points that
matter (the Pareto front, the trials that raised the best so far) and an even sample of the rest; bars and
parallel coordinates are bounded too (MAX_BARS, MAX_AXES, MAX_LINES).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

MAX_POINTS = 2000  # scatter points per chart
MAX_LINE_POINTS = 1000  # vertices per learning curve
MAX_BARS = 20  # importance bars
MAX_AXES, MAX_LINES, MAX_TICKS = 12, 500, 12  # parallel coordinates: decision axes, lines, labels per axis
WIDTH, HEIGHT = 640, 400
BAR_WIDTH, PARALLEL_WIDTH = 640, 900
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


def importance_bars(bars: Sequence[tuple[str, float, bool]], title: str = "decision importance",
                    x_label: str = "share of the reward's variance explained") -> SvgChart:
    """One horizontal bar per (name, share, significant), in the order given (most important first); at most
    MAX_BARS, the rest counted in a closing line."""
    shown = [(n, v, sig) for n, v, sig in bars if _finite(v)][:MAX_BARS]
    left, right, row = 200, 70, 22
    height = TOP + 30 + row * len(shown) + (row if len(bars) > len(shown) else 0) + 40
    top = max([v for _, v, _ in shown] + [1e-12])
    scale = (BAR_WIDTH - left - right) / top
    parts = []
    for i, (name, value, significant) in enumerate(shown):
        y = TOP + 30 + row * i
        color, length = (ACCENT if significant else MUTED), max(1.0, value * scale)
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end" fill="#333">{escape(_short(name, 30))}'
                     f'</text><rect data-series="importance" x="{left}" y="{y + 3}" width="{length:.1f}"'
                     f' height="{row - 8}" fill="{color}"/>'
                     f'<text x="{left + length + 6:.1f}" y="{y + 13}" fill="#333">{value:.3f}</text>')
    if len(bars) > len(shown):
        parts.append(f'<text x="{left}" y="{TOP + 30 + row * len(shown) + 13}" fill="#333">and'
                     f" {len(bars) - len(shown)} more</text>")
    parts.append(f'<text x="{left}" y="{height - 14}" fill="#333">{escape(x_label)}</text>')
    legend = _Legend(BAR_WIDTH - 230, TOP - 6)
    legend.add("significant (Holm p < 0.05)", ACCENT, "dot")
    legend.add("not significant", MUTED, "dot")
    return _document(title, "".join(parts) + legend.svg(), BAR_WIDTH, height)


@dataclass(frozen=True)
class Axis:
    """A parallel-coordinates axis: its name and labelled positions on [0, 1] (the options of a choice)."""

    name: str
    ticks: tuple[tuple[float, str], ...] = ()


def parallel_coordinates(axes: Sequence[Axis], rows: Sequence[tuple[float, Sequence[float | None]]],
                         direction: str = "max", reward_label: str = "reward",
                         title: str = "parallel coordinates") -> SvgChart:
    """One line per (reward, values on [0, 1] per axis) row across the axes and, last, the reward; a value
    of None (a decision the trial does not use) breaks the line. The first MAX_LINES rows are drawn (give the
    best first); the better the reward, the darker and later (on top) its line."""
    axes = list(axes)[:MAX_AXES]
    rows = [r for r in rows if _finite(r[0])][:MAX_LINES]
    rewards = [r for r, _ in rows]
    lo, hi = (min(rewards), max(rewards)) if rewards else (0.0, 1.0)
    span = hi - lo or 1.0
    left, right, top, bottom = 40, 110, TOP + 30, 90
    count = len(axes) + 1
    step = (PARALLEL_WIDTH - left - right) / max(1, count - 1)
    xs = [left + i * step for i in range(count)]

    def y(value: float) -> float:
        return HEIGHT + 60 - bottom - value * (HEIGHT + 60 - bottom - top)

    # worst first, so the best lines lie on top
    order = sorted(rows, key=lambda r: r[0], reverse=direction != "max")
    lines = []
    for reward, values in order:
        share = (reward - lo) / span if direction == "max" else (hi - reward) / span
        points = [*list(values)[:len(axes)], (reward - lo) / span]
        for segment in _segments(xs, points):
            path = " ".join(f"{px:.1f},{y(v):.1f}" for px, v in segment)
            lines.append(f'<polyline points="{path}" stroke="{_blend(share)}"/>')
    body = [f'<g data-series="trials" fill="none" stroke-width="1" stroke-opacity="0.55">{"".join(lines)}</g>']
    reward_axis = Axis(reward_label, ((0.0, tick_label(lo)), (1.0, tick_label(hi))))
    for x, axis in zip(xs, [*axes, reward_axis], strict=True):
        body.append(_parallel_axis(x, axis, y, HEIGHT + 60 - bottom))
    legend = _Legend(PARALLEL_WIDTH - 220, TOP - 6)
    legend.add("best trials", _blend(1.0), "line")
    legend.add("worst shown", _blend(0.0), "line")
    return _document(title, "".join(body) + legend.svg(), PARALLEL_WIDTH, HEIGHT + 60)


def _segments(xs: Sequence[float], values: Sequence[float | None]) -> list[list[Point]]:
    """The runs of consecutive known values as (x, value) segments of two points or more."""
    runs: list[list[Point]] = [[]]
    for x, value in zip(xs, values, strict=False):
        if value is None or not _finite(value):
            runs.append([])
        else:
            runs[-1].append((x, float(value)))
    return [run for run in runs if len(run) > 1]


def _parallel_axis(x: float, axis: Axis, y: Callable[[float], float], base: float) -> str:
    ticks = "".join(f'<text x="{x + 4:.1f}" y="{y(position) + 3:.1f}" font-size="9" fill="#333" stroke="white"'
                    f' stroke-width="3" paint-order="stroke">'
                    f"{escape(_short(label, 14))}</text>" for position, label in axis.ticks[:MAX_TICKS])
    return (f'<g data-role="axis"><line x1="{x:.1f}" y1="{y(0):.1f}" x2="{x:.1f}" y2="{y(1):.1f}" stroke="#333"/>'
            f"{ticks}<text transform=\"translate({x:.1f} {base + 14}) rotate(35)\" fill=\"#333\">"
            f"{escape(_short(axis.name, 22))}</text></g>")


def _blend(share: float) -> str:
    """A colour from light grey-blue (share 0) to the accent (share 1)."""
    low, high = (0xC4, 0xCF, 0xDA), (0xD9, 0x48, 0x0F)
    share = min(1.0, max(0.0, share))
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high, strict=True))


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


class _Legend:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y, self.rows = x, y, []

    def add(self, label: str, color: str, mark: str) -> None:
        y = self.y + 16 * len(self.rows)
        sign = (f'<rect x="{self.x}" y="{y - 4}" width="14" height="3" fill="{color}"/>' if mark == "line"
                else f'<rect x="{self.x + 4}" y="{y - 6}" width="6" height="6" rx="3" fill="{color}"/>')
        self.rows.append(f'{sign}<text x="{self.x + 20}" y="{y}" fill="#333">{escape(label[:32])}</text>')

    def svg(self) -> str:
        return f'<g data-role="legend">{"".join(self.rows)}</g>'


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
        return _document(self.title, body, WIDTH, HEIGHT)

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
        legend = _Legend(WIDTH - RIGHT - 150, TOP + 8)
        for label, color, mark in entries:
            legend.add(label[:24], color, mark)
        return legend.svg()


def _document(title: str, body: str, width: float, height: float) -> SvgChart:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}"'
           f' viewBox="0 0 {width:g} {height:g}" font-family="sans-serif" font-size="11">'
           f"<title>{escape(title)}</title>"
           f'<rect width="{width:g}" height="{height:g}" fill="white"/>'
           f'<text x="{width / 2:g}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>'
           f"{body}</svg>")
    return SvgChart(svg, title)


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
