"""`nasapp proxy search`: train the models of a selection run under each candidate proxy task, in chunks that
continue from one another, until the proxy ranks them as full training did; pick the cheapest that does (see
:mod:`nasapp.engine.results.proxy_search`).

The run is a tool run in the store (kind ``search``): its settings (the candidates, the models, the targets)
and per candidate the ids of its chunk jobs, why it stopped and at which step. Each chunk is an ordinary job
named ``<job>-psearch<RUN>-c<I>-k<K>``. `--resume RUN` follows an unfinished chunk and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import fmt_number, json_document, plain
from nasapp.app.tool_runs import follow_to_end, resumed_tool_run, run_job
from nasapp.engine.errors import NasappError
from nasapp.engine.results.proxy_search import (
    candidate_grid,
    candidate_scale,
    chunk_ends,
    correlation_over_steps,
    first_met,
    full_training,
    job_lines,
    search_summary,
)

KIND = "search"
SHORT_REASONS = {"met": "met", "steps done": "done", "time limit": "time", "models failed": "failed"}


def search_command(job_file: Path | None, models: str | None, options: dict[str, Any], resume: str | None,
                   as_json: bool, store: Any, follow: Callable[[Any, int], None], out: Console,
                   progress: Console) -> None:
    """``options``: the command line's grid (steps, data_fraction, scale: lists) and target, max_p,
    time_limit_s, checks; an option not given (None or an empty list) is taken from the job's [proxy_search]."""
    if resume is not None:
        run_id = resumed_tool_run(store, resume, KIND, "proxy search")
        run = store.tool_run(run_id)
        full = full_training(store, store.tool_run(run.settings["select_run"]), run.settings["metric"])
    else:
        run_id, full = _created(store, job_file, models, options)
        run = store.tool_run(run_id)
    if run.status == "running":
        _run_candidates(store, run_id, full, follow, progress)
    summary = search_summary(store, store.tool_run(run_id), full)
    if as_json:
        out.print(json_document(summary), markup=False)
    else:
        _print(out, summary, store.tool_run(run_id).settings)


def _created(store: Any, job_file: Path | None, models: str | None,
             options: dict[str, Any]) -> tuple[int, dict[str, dict[str, Any]]]:
    """A new run's id, and its models' full training (read first: an unfinished selection makes no run)."""
    from nasapp.engine.jobs.spec import ProxySearchSpec, load_job

    if job_file is None or models is None:
        raise NasappError("give the job file and --models SELECT_RUN (a finished `nasapp proxy select` run),"
                          " or --resume RUN")
    select_id = resumed_tool_run(store, models, "select", "proxy select")
    spec = load_job(job_file)
    given = {key: value for key, value in options.items() if value not in (None, [])}
    table = (spec.proxy_search or ProxySearchSpec()).model_dump()
    try:
        chosen = ProxySearchSpec.model_validate({**table, **given})
    except ValueError as error:
        key = error.errors()[0]["loc"][0]  # type: ignore[attr-defined]
        raise NasappError(f"--{str(key).replace('_', '-')} {given.get(key, table.get(key))}:"
                          f" {error.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
    full = full_training(store, store.tool_run(select_id), spec.reward.metric)
    candidates = candidate_grid(chosen.steps or [spec.trainer.steps],
                                chosen.data_fraction or [spec.data.data_fraction if spec.data else 1.0],
                                chosen.scale or [1.0])
    settings = {"job_file": str(Path(job_file).resolve()), "spec": spec.model_dump(mode="json"),
                "select_run": select_id, "candidates": candidates, "target": chosen.target, "max_p": chosen.max_p,
                "time_limit_s": chosen.time_limit_s, "checks": chosen.checks, "metric": spec.reward.metric}
    return int(store.create_tool_run(KIND, f"{spec.name}-proxy-search", settings)), full


def _run_candidates(store: Any, run_id: int, full: dict[str, dict[str, Any]],
                    follow: Callable[[Any, int], None], progress: Console) -> None:
    settings = store.tool_run(run_id).settings
    archs = [model["arch"] for model in full.values()]
    scores = {key: model["score"] for key, model in full.items()}
    states = dict(store.tool_run(run_id).state.get("candidates", {}))
    for index, candidate in enumerate(settings["candidates"]):
        state = states.setdefault(str(index), {"jobs": []})
        ends = chunk_ends(candidate["steps"], settings["checks"])
        while not state.get("stopped"):
            chunk = len(state["jobs"])
            if chunk == 0 or store.job(state["jobs"][-1]).status == "finished":
                if chunk > 0:
                    _judge(store, state, settings, scores, ends)
                    if state.get("stopped"):
                        break
                state["jobs"].append(_chunk_job(store, run_id, settings, index, chunk, ends, archs, state["jobs"]))
                store.update_tool_run(run_id, state={"candidates": states})
            job_id = state["jobs"][-1]
            progress.print(plain(f"proxy search run {run_id}, candidate {index + 1} of {len(settings['candidates'])}"
                                 f" ({candidate['name']}): training {len(archs)} models to step"
                                 f" {ends[len(state['jobs']) - 1]} as job {job_id}"))
            follow_to_end(store, job_id, follow)
        store.update_tool_run(run_id, state={"candidates": states})
    store.update_tool_run(run_id, status="finished")


def _judge(store: Any, state: dict[str, Any], settings: dict[str, Any], scores: dict[str, float],
           ends: list[int]) -> None:
    """After a finished chunk: stop the candidate when it met the target, ran out of time or of steps."""
    series = correlation_over_steps(store, state["jobs"], scores, settings["metric"])
    hit = first_met(series, settings["target"], settings["max_p"])
    reached = ends[len(state["jobs"]) - 1]
    spent = sum((job.finished_at or time.time()) - (job.started_at or job.created_at)
                for job in (store.job(j) for j in state["jobs"]))
    if hit is not None:
        state.update(stopped="met", final_steps=hit["step"])
    elif len(store.trials(state["jobs"][-1], "succeeded")) < len(scores):
        state.update(stopped="models failed", final_steps=reached)
    elif settings["time_limit_s"] is not None and spent >= settings["time_limit_s"]:
        state.update(stopped="time limit", final_steps=reached)
    elif reached >= ends[-1]:
        state.update(stopped="steps done", final_steps=reached)


def _chunk_job(store: Any, run_id: int, settings: dict[str, Any], index: int, chunk: int, ends: list[int],
               archs: list[Any], jobs: list[int]) -> int:
    candidate, base = settings["candidates"][index], settings["spec"]
    base = {**base, "space": {**base["space"], "scale": candidate_scale(candidate, base)}}
    trainer = {"steps": ends[chunk], "schedule_steps": candidate["steps"], "checkpoint": True,
               "continue_from": jobs[-1] if jobs else None}
    data_fraction = candidate["data_fraction"] if base.get("data") is not None else None
    return run_job(store, base, f"{base['name']}-psearch{run_id}-c{index + 1}-k{chunk + 1}", archs, len(archs),
                   trainer, source=f"proxy search run {run_id}", data_fraction=data_fraction)


def _print(out: Console, s: dict[str, Any], settings: dict[str, Any]) -> None:
    out.print(plain(f"proxy search run {s['run']} ({s['status']}): {len(s['candidates'])} candidate proxies against"
                    f" the {s['models']} models of proxy select run {s['select_run']} (full training: median"
                    f" {s['full_training_time_s']:.1f} s a model)"))
    table = Table(box=None)
    for column in ("#", "steps", "data", "scale", "stopped", "at", "tau", "p", "score", "train s", "cost"):
        table.add_column(column, no_wrap=True, justify="left" if column == "stopped" else "right")
    for i, c in enumerate(s["candidates"], start=1):
        table.add_row(str(i), str(c["steps"]), f"{c['data_fraction']:g}", f"{c['scale']:g}",
                      SHORT_REASONS.get(c["stopped"], c["stopped"] or "-"), str(c["final_steps"] or "-"),
                      fmt_number(c["kendall_tau"], 2), "-" if c["p_value"] is None else f"{c['p_value']:.2g}",
                      fmt_number(c["median_score"], 3),
                      fmt_number(c["median_train_time_s"], 1),
                      "-" if c["cost_share"] is None else f"{c['cost_share']:.1%}")
    out.print(table)
    out.print(plain("stopped: met (the target correlation), done (its steps), time (--time-limit), failed (a model"
                    " failed); at: that step; tau, p: Kendall's rank correlation with full training there and its"
                    " p-value; score: the models' median score; train s: median training time of one model to"
                    " that step; cost: that as a share of full training's"))
    for i, c in enumerate(s["candidates"], start=1):
        curve = ", ".join(f"{p['step']}: {fmt_number(p['kendall_tau'], 2)}" for p in c["correlation"])
        latency = c["latency"]
        also = (f"; latency: Kendall tau {latency['kendall_tau']:.2f} with full training's (p"
                f" {latency['p_value']:.2g})") if latency else ""
        out.print(plain(f"{i} ({c['name']}): Kendall tau over steps: {curve or '-'}{also}"))
    best = next((c for c in s["candidates"] if c["name"] == s["best"]), None)
    if best is None:
        out.print(plain(f"no candidate reached Kendall tau >= {s['target_correlation']} with p <="
                        f" {s['max_p_value']}: try more steps, more data or a larger scale"))
        return
    out.print(plain(f"best: {best['name']} (tau {best['kendall_tau']:.3f}, p {best['p_value']:.3g}, "
                    f"{best['cost_share']:.1%} of full training's cost). Job-file lines that use it:"))
    out.print(plain("\n".join(job_lines(best, settings["spec"]))))
