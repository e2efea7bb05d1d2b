"""`nasapp analyze JOB`: which decisions of a job's space mattered for its reward (see engine/analysis/)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import fmt_number, inline_value, json_document, plain
from nasapp.engine.analysis import JobAnalysis, analyze_job
from nasapp.engine.analysis.report import DecisionReport
from nasapp.store import Store
from nasapp.store.records import Job

SHOWN_CHOICES = 3  # decisions whose reward per choice is printed


def analyze_command(store: Store, job: Job, sample: int, as_json: bool, out: Console) -> None:
    analysis = analyze_job(store, job, sample)
    if as_json:
        out.print(json_document(analysis.to_json()), markup=False)
        return
    out.print(plain(_heading(analysis)))
    out.print(_ranking(analysis))
    for report in analysis.decisions[:SHOWN_CHOICES]:
        out.print(plain(f"\n{report.path}: reward by {report.kind} value (n, mean, median, q1..q3, best)"))
        out.print(_choices(report))


def _heading(analysis: JobAnalysis) -> str:
    better = "higher" if analysis.direction == "max" else "lower"
    if analysis.sampled < analysis.total:
        which = (f"a sample of {analysis.sampled:,} of its {analysis.total:,} succeeded trials (the"
                 f" {analysis.best_kept:,} best and {analysis.sampled - analysis.best_kept:,} drawn at random)")
    else:
        which = f"its {analysis.total:,} succeeded trials"
    return (f"job {analysis.job} {analysis.name}: {which}; reward {analysis.metric}, {better} is better\n"
            f"importance: {analysis.evaluator}; p: Kruskal-Wallis (choices) or Spearman (numbers),"
            f" Holm-corrected across {len(analysis.decisions)} decisions, significant below {analysis.alpha}")


def _ranking(analysis: JobAnalysis) -> Table:
    table = Table("rank", "decision", "kind", "importance", "p (Holm)", "significant", "trials", box=None)
    for rank, report in enumerate(analysis.decisions, start=1):
        table.add_row(str(rank), plain(report.path, False), report.kind, f"{report.importance:.3f}",
                      _p_text(report.p_holm), "yes" if report.significant else "no", f"{report.used_by:,}")
    return table


def _choices(report: DecisionReport) -> Table:
    table = Table("  value", "n", "mean", "median", "q1..q3", "best", box=None)
    for c in report.choices:
        value = c.value if isinstance(c.value, str) else inline_value(c.value)
        table.add_row("  " + plain(value, False), f"{c.count:,}", fmt_number(c.mean),
                      fmt_number(c.median), f"{fmt_number(c.q1)}..{fmt_number(c.q3)}", fmt_number(c.best))
    return table


def _p_text(p: float) -> str:
    return "<1e-300" if p < 1e-300 else f"{p:.2g}"
