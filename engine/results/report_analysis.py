"""The report's analysis section: what `nasapp analyze` finds (importance, significance, the reward per choice)
as a bar chart and tables, the best trials as parallel coordinates, and their learning curves."""

from __future__ import annotations

from typing import Any

from nasapp.engine.analysis import JobAnalysis, analyze_job
from nasapp.engine.analysis.curves import learning_curves, parallel_rows
from nasapp.engine.analysis.decisions import Decision, DecisionTable
from nasapp.engine.analysis.report import table_of
from nasapp.engine.errors import NasappError
from nasapp.engine.results import report_html as h
from nasapp.engine.results import svg_charts
from nasapp.engine.results.inline import inline_value
from nasapp.store.records import Job

CHOICE_TABLES = 3  # decisions whose reward per value gets a table
CURVES = 5  # learning curves of the best trials


def analysis_section(store: Any, job: Job, sample: int, metric: str | None, direction: str) -> str:
    try:
        analysis = analyze_job(store, job, sample)
    except NasappError as error:
        return h.section("analysis", "Which decisions mattered", h.paragraph(f"No analysis: {error}", note=True))
    table = table_of(store, job, sample)
    parts = [h.paragraph(_scope(analysis)),
             h.chart(_importance_chart(analysis), "importance"), _ranking(analysis),
             h.chart(_parallel_chart(analysis, table, direction), "parallel"),
             *_choice_tables(analysis), *_curves(store, table, metric, direction)]
    return h.section("analysis", "Which decisions mattered", *parts)


def _scope(analysis: JobAnalysis) -> str:
    if analysis.sampled < analysis.total:
        which = (f"a sample of {analysis.sampled:,} of the {analysis.total:,} succeeded trials (the"
                 f" {analysis.best_kept:,} best and the rest drawn at random, seed 0)")
    else:
        which = f"all {analysis.total:,} succeeded trials"
    return (f"Over {which}. Importance: {analysis.evaluator}, the share of the reward's variance a decision"
            f" explains. p: Kruskal-Wallis (choices) or Spearman (numbers), Holm-corrected across"
            f" {len(analysis.decisions)} decisions; significant below {analysis.alpha}.")


def _importance_chart(analysis: JobAnalysis) -> svg_charts.SvgChart:
    bars = [(d.path, d.importance, d.significant) for d in analysis.decisions]
    return svg_charts.importance_bars(bars, title=f"decision importance ({analysis.metric})")


def _ranking(analysis: JobAnalysis) -> str:
    rows = [(str(rank), d.path, d.kind, f"{d.importance:.3f}", _p_text(d.p_holm), "yes" if d.significant else "no",
             f"{d.used_by:,}") for rank, d in enumerate(analysis.decisions, start=1)]
    return h.table(("rank", "decision", "kind", "importance", "p (Holm)", "significant", "trials"), rows,
                   ("num", "", "", "num", "num", "", "num"))


def _parallel_chart(analysis: JobAnalysis, table: DecisionTable, direction: str) -> svg_charts.SvgChart:
    by_path = {d.path: d for d in table.decisions}
    paths = [d.path for d in analysis.decisions][:svg_charts.MAX_AXES]
    axes = [svg_charts.Axis(path, _ticks(by_path[path])) for path in paths]
    rows = [(row.reward, [row.values.get(path) for path in paths]) for row in parallel_rows(table, direction)]
    return svg_charts.parallel_coordinates(axes, rows, direction, reward_label=analysis.metric,
                                           title=f"the {len(rows):,} best trials across the decisions")


def _ticks(decision: Decision) -> tuple[tuple[float, str], ...]:
    if decision.options is not None:
        return tuple((decision.normalised(i), _text(option)) for i, option in enumerate(decision.options))
    return ((0.0, _text(decision.label(decision.low))), (1.0, _text(decision.label(decision.high))))


def _choice_tables(analysis: JobAnalysis) -> list[str]:
    parts = []
    for report in analysis.decisions[:CHOICE_TABLES]:
        rows = [(_text(c.value), f"{c.count:,}", _num(c.mean), _num(c.median), f"{_num(c.q1)}..{_num(c.q3)}",
                 _num(c.best)) for c in report.choices]
        parts += [h.heading(f"Reward per value of {report.path} ({report.kind})"),
                  h.table(("value", "n", "mean", "median", "q1..q3", "best"), rows,
                          ("arch", "num", "num", "num", "num", "num"))]
    return parts


def _curves(store: Any, table: DecisionTable, metric: str | None, direction: str) -> list[str]:
    if metric is None:
        return []
    curves = learning_curves(store, table, metric, direction, limit=CURVES)
    if not any(len(c.steps) > 1 for c in curves):
        return [h.paragraph(f"No learning curves: the best trials reported {metric} at one step at most.",
                            note=True)]
    series = {f"trial {c.trial}": list(zip(c.steps, c.values, strict=True)) for c in curves}
    chart = svg_charts.learning_curves(series, y_label=metric, title=f"{metric} by step: the {len(series)} best")
    return [h.chart(chart, "learning-curves")]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else inline_value(value)


def _num(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.5g}"


def _p_text(p: float) -> str:
    return "<1e-300" if p < 1e-300 else f"{p:.2g}"
