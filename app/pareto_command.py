"""`nasapp pareto JOB`: the trade-off front of a job's trials (a table and a terminal scatter plot)."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nasapp.app.formatting import json_document
from nasapp.engine.results.front import front_document, staircase
from nasapp.engine.results.svg_charts import MAX_POINTS, bounded
from nasapp.store.records import Job

ARCH_WIDTH = 40
PLOT_MAX_WIDTH = 100
PLOT_MIN_WIDTH = 30
PLOT_HEIGHT = 20


def short_arch(arch: Any, width: int = ARCH_WIDTH) -> str:
    text = json.dumps(arch, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def render_plot(doc: dict[str, Any], width: int, color: bool) -> str:
    """A plotext scatter of the trials (an even sample of at most MAX_POINTS besides the front) with the front
    drawn as a line; ``width`` columns at most."""
    import plotext as plt

    x, y = doc["x"], doc["y"]
    plt.clear_figure()
    plt.plotsize(max(PLOT_MIN_WIDTH, min(width, PLOT_MAX_WIDTH)), PLOT_HEIGHT)
    plt.theme("clear")  # the terminal's own background and text colours; only the markers are coloured
    front_ids = {p["trial"] for p in doc["front"]}
    others = [p for p in doc["points"] if p["trial"] not in front_ids]
    others = [others[i] for i in bounded(len(others), MAX_POINTS)]  # a 100 x 20 plot shows no more
    if others:
        plt.scatter([p[x] for p in others], [p[y] for p in others], marker="dot", label="trials",
                    color="gray" if color else None)
    steps = staircase([(p[x], p[y]) for p in doc["front"]], doc["x_dir"])
    plt.plot([a for a, _ in steps], [b for _, b in steps], marker="hd", label="pareto front",
             color="red" if color else None)
    plt.scatter([p[x] for p in doc["front"]], [p[y] for p in doc["front"]], marker="●",
                color="red" if color else None)
    plt.xlabel(f"{x} ({'lower' if doc['x_dir'] == 'min' else 'higher'} is better)")
    plt.ylabel(y)
    canvas = plt.build()
    plt.clear_figure()
    return canvas


def _json_with_points(doc: dict[str, Any]) -> str:
    """``doc`` as json_document writes it, but its points one compact line each, formatted here (json.dumps
    per point costs seconds on 100,000 of them; a point's values are numbers or None, its keys the same)."""
    head = json_document({**doc, "points": []})
    points = doc["points"]
    keys = [json.dumps(key) for key in points[0]] if points else []
    rows = ",\n    ".join("{" + ", ".join(f"{key}: {_number_json(value)}" for key, value in zip(keys, p.values(),
                                                                                                strict=True)) + "}"
                            for p in points)
    before, marker, after = head.rpartition('"points": []')  # the last key: no string inside can fake it
    return before + (f'"points": [\n    {rows}\n  ]' if rows else marker) + after


def _number_json(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(value) if isinstance(value, float) and math.isfinite(value) else "null"


def pareto_command(store: Any, job: Job, x: str, y: str, as_json: bool, console: Console,
                   x_dir: str | None = None, y_dir: str | None = None) -> None:
    """Print the Pareto front of ``job`` over metrics ``x`` and ``y`` (directions guessed from the names
    unless given): a table and a scatter plot, or one JSON document when ``as_json``."""
    doc = front_document(store, job, x, y, x_dir, y_dir)
    if as_json:  # straight to the file: rich would measure every line of a 100,000-point document
        console.file.write(_json_with_points(doc) + "\n")
        return
    arrows = {"min": "↓", "max": "↑"}
    console.print(f"job {doc['job']} {doc['name']}: {len(doc['front'])} of {doc['considered']} trials on the"
                  f" front of {x} {arrows[doc['x_dir']]} vs {y} {arrows[doc['y_dir']]}",
                  markup=False, highlight=False)
    if doc["skipped"]:
        console.print(f"({doc['skipped']} succeeded trial(s) lacked {x} or {y})", markup=False, highlight=False)
    table = Table("trial", x, y, "reward", "architecture", box=None)
    for point in doc["front"]:
        table.add_row(str(point["trial"]), _number(point[x]), _number(point[y]), _number(point["reward"]),
                      short_arch(point["arch"]))
    console.print(table)
    color = console.is_terminal and not console.no_color
    canvas = render_plot(doc, console.width, color)
    console.print(Text.from_ansi(canvas), no_wrap=True, overflow="crop", crop=True)
