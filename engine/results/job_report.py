"""`nasapp report JOB`: one self-contained HTML page about a job (engine/results/report_html.py draws it): the
search curve, the Pareto front, the best architectures, the analysis, the comparison with random search and the
reproducibility record. Every figure is a bounded query or a bounded sample, so a 100,000-trial job gives a page
of the same size.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nasapp.engine.analysis import DEFAULT_SAMPLE
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.liveness import effective_status
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.results import report_html as h
from nasapp.engine.results import svg_charts
from nasapp.engine.results.comparison import Comparison, compare, random_job
from nasapp.engine.results.front import job_front
from nasapp.engine.results.inline import inline_value
from nasapp.engine.results.report_analysis import analysis_section
from nasapp.engine.results.reproducibility import record
from nasapp.store.aggregates import metric_names, metric_points
from nasapp.store.records import Job

BEST_K = 10
COST_METRICS = ("latency_ms", "params", "flops", "macs", "memory_mb")  # a front's x axis: the first reported


def html_report(store: Any, job: Job, against: Job | None = None, sample: int = DEFAULT_SAMPLE) -> str:
    """The page as one string. Raises NasappError when the job has no succeeded trial, or when ``against``
    searched another space."""
    spec = job_spec(job)
    direction = spec.reward.direction
    _, rows = metric_points(store, job.id, "reward", "reward")
    rewards = [(number, reward) for number, reward, _, _ in rows if isinstance(reward, int | float)]
    if not rewards:
        raise NasappError(f"job {job.id} has no succeeded trials with a reward yet; a report needs one")
    comparison = _comparison(store, job, against, direction)
    metric = None if spec.reward.formula else spec.reward.metric
    label = spec.reward.formula or spec.reward.metric
    reported = metric_names(store, job.id)
    cost = next((name for name in COST_METRICS if name in reported), None)
    sections = [
        _overview(store, job, label, direction),
        h.section("curve", "Search curve", h.chart(svg_charts.search_curve(
            rewards, direction, title="each trial's reward and the best so far", y_label=f"reward ({label})"),
            "curve")),
        _front(store, job, cost, metric if metric in reported else "reward"),
        _best(store, job, direction, metric, cost),
        analysis_section(store, job, sample, metric if metric in reported else None, direction),
        _comparison_section(comparison, job, label),
        _record(store, job),
    ]
    made = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    return h.page(f"nasapp report: job {job.id} {job.name}", f"made {made} from the store {store.path}", sections)


def _overview(store: Any, job: Job, label: str, direction: str) -> str:
    best = store.best_trials(job.id, 1, direction)[0]
    counts = {status: n for status, n in store.counts(job.id).items() if n}
    values = {"status": effective_status(job), "strategy": str(job.spec.get("strategy", {}).get("name", "?")),
              "reward": f"{label} ({'higher' if direction == 'max' else 'lower'} is better)",
              "best": f"trial {best.number}: {best.reward:.6g}",
              "trials": ", ".join(f"{status} {n:,}" for status, n in counts.items()) + f" (budget {job.max_trials:,})",
              "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at))}
    return h.section("overview", "Overview", h.record_list(values))


def _front(store: Any, job: Job, x: str | None, y: str) -> str:
    title = "Pareto front"
    if x is None:
        return h.section("front", title, h.paragraph(
            "No Pareto front: no trial reported a cost (latency_ms, params, flops, macs or memory_mb); set"
            " [latency] device = \"cpu-ort\" in the job file to measure latency.", note=True))
    found = job_front(store, job, x, y)
    front = [(t.metric(x), t.metric(y)) for t in found.front]
    chart = svg_charts.pareto_scatter([(p.x, p.y) for p in found.points], front, x, y, found.x_dir,
                                      title=f"{y} against {x}: {len(front)} trials on the front")
    rows = [(str(t.number), _num(t.metric(x)), _num(t.metric(y)), inline_value(t.arch)) for t in found.front]
    listed = h.table(("trial", x, y, "architecture"), rows, ("num", "num", "num", "arch"))
    return h.section("front", title, h.chart(chart, "pareto"), h.folded(f"the front's {len(rows)} trials", listed))


def _best(store: Any, job: Job, direction: str, metric: str | None, cost: str | None) -> str:
    extra = [name for name in (metric, cost) if name]
    rows = [(str(t.number), _num(t.reward), *(_num(t.metrics.get(name)) for name in extra), inline_value(t.arch))
            for t in store.best_trials(job.id, BEST_K, direction)]
    headers = ("trial", "reward", *extra, "architecture")
    kinds = ("num", "num", *("num" for _ in extra), "arch")
    return h.section("best", f"The {len(rows)} best architectures", h.table(headers, rows, kinds))


def _comparison(store: Any, job: Job, against: Job | None, direction: str) -> Comparison | None:
    other = against if against is not None else random_job(store, job)
    return compare(store, job, other, direction) if other is not None else None


def _comparison_section(found: Comparison | None, job: Job, label: str) -> str:
    title = "Against random search"
    if found is None:
        text = ("This job is itself random search; name a job to compare it with: --against JOB."
                if job.spec.get("strategy", {}).get("name") == "random" else
                "No random-search job on the same space, data, trainer and reward in this store: run one"
                " ([strategy] name = \"random\") or name a job with --against JOB.")
        return h.section("random", title, h.paragraph(text, note=True))
    ours, theirs = found.ours, found.random
    rows = [(f"job {s.job} {s.name}", s.strategy, f"{s.trials:,}", _num(s.best), _num(at))
            for s, at in ((ours, found.ours_at_budget), (theirs, found.random_at_budget))]
    matched = (f"This job matched the best of job {theirs.job} after {found.to_match:,} of its trials."
               if found.to_match is not None else f"This job never matched the best of job {theirs.job}.")
    parts = [h.table(("job", "strategy", "succeeded trials", "best", f"best in the first {found.budget:,}"), rows,
                     ("", "", "num", "num", "num")), h.paragraph(matched)]
    if found.differences:
        parts.append(h.paragraph(f"The jobs differ in: {', '.join(found.differences)}.", note=True))
    series = {f"job {ours.job} ({ours.strategy})": ours.best_so_far,
              f"job {theirs.job} ({theirs.strategy})": theirs.best_so_far}
    chart = svg_charts.learning_curves(series, y_label=f"best reward so far ({label})", x_label="trial",
                                       title="the best so far of each job")
    return h.section("random", title, h.chart(chart, "comparison"), *parts)


def _record(store: Any, job: Job) -> str:
    parts = []
    for name, values in record(store, job).items():
        parts += [h.heading(name), h.record_list(values)]
    parts.append(h.details("the job file as stored (JSON)", json.dumps(job.spec, indent=2, default=str)))
    return h.section("reproducibility", "Reproducibility record", *parts)


def _num(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-" if value is None else str(value)
    return f"{value:.6g}"
