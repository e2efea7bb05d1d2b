"""The `nasapp` command line."""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import fmt_count, inline_value, json_document, plain, space_lines
from nasapp.engine.errors import NasappError
from nasapp.store import StoreError
from nasapp.store.records import Job

app = typer.Typer(
    help="Neural architecture search on your own workstation.\n\n"
    "Run `nasapp run` for the built-in demo, or `nasapp run job.toml` for your own search;"
    " `nasapp` alone opens the dashboard.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# Never markup or emoji codes: job names, messages and architectures are printed as they are (`plain` escapes
# control characters in them).
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
_opened: list[Path] = []  # the stores this command opened: an SQLite error names the file

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite store to use (default: $NASAPP_HOME/nasapp.db, ~/.nasapp when unset).",
                 envvar="NASAPP_DB"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
JobArg = Annotated[str, typer.Argument(help="The job's id or name (the newest job of that name).")]
MAX_TOP = 10**9  # `show --top`: more than any job has trials


def _store(db: Path | None, create: bool = False):
    """The store at `db` (the default one when None). Only `create` (`nasapp run`) makes a new store: every
    other command says there is no store there, and creates no file or folder."""
    from nasapp.store import Store, StoreError, default_db_path

    _opened.append(Path(db) if db is not None else default_db_path())
    try:
        return Store(db, create=create)
    except StoreError as error:
        raise NasappError(str(error)) from None


def _job(store, ref: str) -> Job:
    job = store.find_job(ref)
    if job is None:
        shown = repr(ref) if len(ref) <= 60 else repr(ref[:60]) + "…"  # repr: control characters escaped
        raise NasappError(f"no job {shown} in {store.path} (`nasapp ls` lists the jobs)")
    return job


@app.callback(invoke_without_command=True)
def _dashboard_by_default(ctx: typer.Context, db: DbOption = None) -> None:
    """With no command, `nasapp` opens the terminal dashboard."""
    if ctx.invoked_subcommand is None:
        from nasapp.app.tui import run_tui

        run_tui(db)


@app.command()
def tui(db: DbOption = None) -> None:
    """Open the terminal dashboard: watch, steer and inspect searches (it only reads the store and sends
    commands, so closing it never stops a search)."""
    from nasapp.app.tui import run_tui

    run_tui(db)


# ---- run / resume / stop -------------------------------------------------------------------------

@app.command()
def run(
    job_file: Annotated[Path | None, typer.Argument(
        help="The job file (TOML). Without one, runs the built-in demo search.")] = None,
    max_trials: Annotated[int | None, typer.Option(help="Override search.max_trials.")] = None,
    parallel: Annotated[int | None, typer.Option(help="Override search.parallel (workers).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the job's seed.")] = None,
    db: DbOption = None,
) -> None:
    """Start a search and follow it until it ends.

    Prints the job's id on its first line, then a live progress line. Ctrl-C stops gracefully (running
    trials are cancelled); `nasapp resume JOB` continues to the same total.
    """
    from nasapp.engine.jobs.start import add_job, ready_to_run, run_spec

    spec = run_spec(job_file, max_trials=max_trials, parallel=parallel, seed=seed)
    checked = ready_to_run(spec)  # validation and the executor's check, before the job row exists
    store = _store(db, create=True)
    job_id = add_job(store, checked)
    out.print(plain(f"job {job_id} {spec.name}: {spec.search.max_trials} trials, strategy {spec.strategy.name},"
                    f" space {spec.space.label}; store {store.path}"))
    _follow(store, job_id)


@app.command()
def check(
    job_file: Annotated[Path | None, typer.Argument(help="The job file (TOML) to try; without one, the built-in"
                                                         " demo.")] = None,
    trials: Annotated[int, typer.Option(help="Trials in the test stage.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Try a job before running it: validate it, build its largest and smallest models, run one short trial and
    a test stage of 5 trials (in a temporary store), and estimate the whole job's wall time and device-hours."""
    from nasapp.app.check_command import check_command

    check_command(job_file, trials=trials, as_json=as_json, console=out)


@app.command()
def resume(
    job: JobArg,
    force: Annotated[bool, typer.Option(
        "--force", help="Take the job over even though its runner looks alive. One runner per job: a second"
        " `resume` is refused while the first runs, and a runner that was killed is taken over without this."
        " Use it only when you know better (that runner is stuck, or runs where its pid cannot be checked);"
        " the old runner stops at its next heartbeat.")] = False,
    max_trials: Annotated[int | None, typer.Option(help="Raise the job's budget to this many trials first (a"
                                                        " finished job goes on to the new total).")] = None,
    db: DbOption = None,
) -> None:
    """Continue a stopped or interrupted job to its max_trials (runs again the trials that were running)."""
    from nasapp.engine.jobs.liveness import effective_status

    store = _store(db)
    found = _job(store, job)
    if max_trials is not None:
        if effective_status(found) in ("running", "paused"):
            raise NasappError(f"job {found.id} is running: stop it first (`nasapp stop {found.id}`), then resume it"
                              f" with --max-trials {max_trials}")
        if max_trials < found.max_trials:
            raise NasappError(f"--max-trials {max_trials}: job {found.id} already has a budget of"
                              f" {found.max_trials}; give a larger total")
        from nasapp.engine.jobs.budget import extend_job

        extend_job(store, found.id, max_trials - found.max_trials)
        found = store.job(found.id)
    if found.status == "finished":
        raise NasappError(f"job {found.id} already finished its {found.max_trials} trials; `nasapp resume"
                          f" {found.id} --max-trials N` raises its budget to N and goes on")
    starting = "starting" if found.status == "created" else "resuming"  # nasapp.run(wait=False) starts jobs so
    _follow(store, found.id, force=force, announce=f"job {found.id} {found.name}: {starting}")


def _follow(store, job_id: int, force: bool = False, announce: str | None = None, console: Console = out) -> None:
    """Run the job in this process with a live progress line; print the outcome (on ``console``); exit non-zero
    on failure.

    The runner takes the job's lock first: when another runner holds it, a NasappError names that runner
    (exit 2) and nothing is written."""
    from nasapp.app.progress import ProgressLine
    from nasapp.engine.execution.runner import Runner
    from nasapp.engine.jobs.control import leave_stopped
    from nasapp.engine.results.summary import summarize

    runner = Runner(store, job_id)
    runner.claim(force=force)
    if announce:
        console.print(plain(announce))
    line = ProgressLine()
    runner.on_progress = line
    interrupts = _Interrupts()
    previous = signal.signal(signal.SIGINT, interrupts)
    try:
        try:
            try:
                status = runner.run()
            finally:
                line.close()
        except KeyboardInterrupt:  # a Ctrl-C the runner did not turn into a stop: leave the job resumable anyway
            leave_stopped(store, job_id)
            raise typer.Exit(130) from None
        finally:
            if interrupts.count:
                leave_stopped(store, job_id)
        summary = summarize(store, store.job(job_id))
        from nasapp.store import default_db_path

        where = None if Path(store.path).resolve() == default_db_path().resolve() else store.path
        _print_outcome(summary, console, next_steps=status == "finished", db=where)
    finally:  # once a stop was asked for, this process is on its way out: a late Ctrl-C changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN if interrupts.count else previous)
    if status == "stopped":
        raise typer.Exit(130)
    if status == "failed" or summary["counts"]["succeeded"] == 0:
        ended = "failed" if status == "failed" else "ended with no succeeded trial"
        first = summary["failures"]["first"]
        why = (f"; first failure: trial {first['trial']} ({first['reason']}: {_first_line(first['message'])});"
               f" its log: {first['log']}") if first else ""
        err.print(plain(f"error: job {job_id} {ended}{why}", False))
        raise typer.Exit(1)


class _Interrupts:
    """The SIGINT handler while a job runs. The first Ctrl-C stops the job gracefully (the runner cancels the
    running trials and marks the job stopped, resumable); a second or third one, while that stop is under way,
    must not cut it short and leave the job marked running: they only say so."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count == 1:
            raise KeyboardInterrupt
        # os.write, not print: a handler that prints while the progress line is being written would fail
        os.write(2, b"\nstopping: cancelling the running trials and saving the job, a moment"
                    b" (`kill -9` would leave it interrupted, still resumable)\n")


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _print_outcome(summary: dict[str, Any], console: Console = out, next_steps: bool = False,
                   db: Path | None = None) -> None:
    """A job's outcome: counts, failures, the best trial with every objective and how its reward was formed;
    with ``next_steps`` (the end of `run` and `resume`) the commands to go on with."""
    from nasapp.engine.rewards.reward import explain_reward

    counts = summary["counts"]
    pruned = f", {counts['pruned']} pruned" if counts.get("pruned") else ""
    console.print(f"job {summary['id']} {summary['status']}: {summary['finished']}/{summary['max_trials']}"
              f" trials finished ({counts['succeeded']} succeeded, {counts['failed']} failed{pruned})"
              f" in {summary['elapsed_s']:.0f} s")
    if summary["message"]:
        console.print(plain(summary["message"]))
    if summary.get("waiting"):
        console.print(plain(f"waiting: {summary['waiting']}"))
    if summary.get("pruned", {}).get("count"):
        console.print(_pruned_line(summary["pruned"]))
    failures = summary.get("failures")
    if failures and failures["count"]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in failures["by_reason"].items())
        first = failures["first"]
        console.print(plain(f"failures: {reasons}; first: trial {first['trial']} ({first['reason']}:"
                        f" {_first_line(first['message'])}); its log: {first['log']}", False))
    if summary.get("latency_predictor_within_10pct") is not None:
        console.print(f"latency predictor: {summary['latency_predictor_within_10pct']:.0%} of its predictions"
                  " within ±10% of the measurement")
    best = summary["best"]
    if best:
        metric = summary["reward"]["metric"]
        console.print(plain(f"best: trial {best['trial']}, reward {best['reward']:.4f};"
                            f" {_objectives_text(best['metrics'], metric)}"))
        console.print(plain("  " + explain_reward(_resolved_reward(summary), best["metrics"], best["reward"])))
        if summary.get("baseline"):
            console.print(plain(_baseline_line(summary["baseline"], metric)))
        console.print(plain(f"  architecture: {inline_value(best['arch'])}", False))
        console.print(plain(f"  files: {best['dir']}", False))
    if next_steps:
        job, where = summary["id"], f" --db {shlex.quote(str(db))}" if db is not None else ""
        export = f"nasapp export {job} --best 1 -o exports{where}" if best else None
        steps = [f"nasapp show {job}{where}", f"nasapp pareto {job}{where}", export,
                 f"nasapp{where} (the dashboard)"]
        console.print(plain("next: " + " · ".join(step for step in steps if step), False))


OBJECTIVES = (("latency_ms", "latency", " ms"), ("memory_mb", "memory", " MB"), ("macs", "MACs", ""),
              ("params", "params", ""))


def _objectives_text(metrics: dict[str, Any], metric: str) -> str:
    """The reward's metric and the measured objectives: "accuracy 0.9331, latency 0.052 ms, MACs 537 k"."""
    parts = [f"{metric} {metrics[metric]:.4f}"] if isinstance(metrics.get(metric), int | float) else []
    for key, label, unit in OBJECTIVES:
        value = metrics.get(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {fmt_count(value, '.3g') if not unit else f'{value:.4g}'}{unit}")
    return ", ".join(parts) or "no metrics"


def _resolved_reward(summary: dict[str, Any]) -> Any:
    """The job's reward table with a baseline-relative target in ms (as its trials' rewards were computed)."""
    from nasapp.engine.rewards.options import RewardSpec

    spec = RewardSpec.model_validate(summary["reward"])
    baseline = summary.get("baseline") or {}
    return spec.with_baseline(baseline["latency_ms"]) if baseline.get("latency_ms") else spec


def _baseline_line(baseline: dict[str, Any], metric: str) -> str:
    """Trial 0, the baseline: what the search is measured against, and the latency target it set."""
    parts = [f"baseline: trial 0 ({baseline['name']}) {baseline['status']}"]
    if baseline["metric"] is not None:
        parts.append(f"{metric} {baseline['metric']:.4f}")
    if baseline["latency_ms"] is not None:
        parts.append(f"latency {baseline['latency_ms']:.4g} ms")
    if baseline["reward"] is not None:
        parts.append(f"reward {baseline['reward']:.4f}")
    if baseline["target_ms"] is not None:
        parts.append(f"so the latency target is {baseline['target_ms']:.4g} ms")
    return ", ".join(parts)


def _pruned_line(pruned: dict[str, Any]) -> str:
    """How many trials early stopping cut short, by which rule and where (they have no reward)."""
    low, high = pruned["min_step"], pruned["max_step"]
    where = "" if low is None else f" at step {low:g}" if low == high else f" at steps {low:g} to {high:g}"
    return (f"pruned: {pruned['count']} trial(s) stopped early by early_stopping.rule = {pruned['rule']!r}{where}"
            " (no reward: never a best trial)")


@app.command()
def stop(job: JobArg, db: DbOption = None) -> None:
    """Ask a running job to stop (running trials are cancelled; `nasapp resume` continues it)."""
    from nasapp.engine.jobs.control import stop_job

    store = _store(db)
    found = _job(store, job)
    was_running, status = stop_job(store, found)
    out.print(f"job {found.id}: {status}" if was_running else f"job {found.id} is not running ({status})")


# ---- ls / show -----------------------------------------------------------------------------------

@app.command("ls")
def list_jobs(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List the jobs in the store."""
    from nasapp.app.progress import format_duration
    from nasapp.engine.results.summary import summarize

    store = _store(db)
    summaries = [summarize(store, job) for job in store.jobs()]
    if as_json:
        out.print(json_document(summaries), markup=False)
        return
    if not summaries:
        out.print(f"no jobs in {store.path}; `nasapp run` starts the demo")
        return
    from rich.table import Column

    names = {s["id"]: s["name"] + (f" (stage 2 of job {s['stage2_of']})" if s["stage2_of"] else "")
             for s in summaries}
    longest = max(len(plain(text, False)) for text in names.values())
    name = Column("name", min_width=min(40, longest))  # the name wraps last: other columns are short numbers
    table = Table("id", name, "status", "trials", "failed", "pruned", "best", "elapsed", box=None)
    for s in summaries:
        best = f"{s['best']['reward']:.4f}" if s["best"] else "-"
        table.add_row(str(s["id"]), plain(names[s["id"]], False), s["status"], f"{s['finished']}/{s['max_trials']}",
                      str(s["counts"]["failed"]), str(s["counts"]["pruned"]), best, format_duration(s["elapsed_s"]))
    out.print(table)
    for s in summaries:
        if s["waiting"]:
            out.print(plain(f"job {s['id']} waiting: {s['waiting']}", False))


@app.command()
def show(
    job: JobArg,
    top: Annotated[int, typer.Option(help="How many of the best trials to list.")] = 5,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """A job's summary and its best trials."""
    from nasapp.engine.results.stage2 import stage2_line, stage2_runs
    from nasapp.engine.results.summary import summarize

    if top < 0:
        raise NasappError(f"--top {top}: give 0 or more (how many of the best trials to list)")
    store = _store(db)
    found = _job(store, job)
    summary = summarize(store, found, best_k=max(1, min(top, MAX_TOP)))
    summary["top"] = summary["top"][:top]
    summary["stage2_jobs"] = [child.id for child in stage2_runs(store, found.id)]
    if as_json:
        out.print(json_document(summary), markup=False)
        return
    _print_outcome(summary)
    line = stage2_line(store, found.id, summary["reward"]["direction"])
    if line:
        out.print(plain(f"{line} (nasapp stage2 --resume {summary['stage2_jobs'][-1]} for the models)"))
    if summary["top"]:
        out.print(_top_table(summary["top"], summary["reward"]["metric"]))
        for t in summary["top"]:  # one line each, the dashboard's inline form (a table column would wrap it)
            out.print(plain(f"trial {t['trial']}: {inline_value(t['arch'])}", False), soft_wrap=True)


def _top_table(top: list[dict[str, Any]], metric: str) -> Table:
    """The best trials: a column per objective the trials have (the metric, latency, memory, MACs, params) and
    where each ran (its slot: `cpu0`, `cuda:1`, or `host:device` on Ray)."""
    columns = [(metric, metric, "")] + [o for o in OBJECTIVES if any(o[0] in t["metrics"] for t in top)]
    table = Table("trial", "reward", *(label + (f" ({unit.strip()})" if unit else "") for _, label, unit in columns),
                  "ran on", box=None)
    for t in top:
        cells = []
        for key, _, unit in columns:
            value = t["metrics"].get(key)
            cells.append("-" if not isinstance(value, int | float) else f"{value:.4f}" if key == metric
                         else f"{value:.4g}" if unit else fmt_count(value, ".3g"))
        table.add_row(str(t["trial"]), f"{t['reward']:.4f}", *cells, t.get("device") or "-")
    return table


@app.command()
def pareto(
    job: JobArg,
    x: Annotated[str, typer.Option("--x", help="Metric on the x axis.")] = "latency_ms",
    y: Annotated[str, typer.Option("--y", help="Metric on the y axis (or 'reward').")] = "accuracy",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The trade-off front of a job's trials over two metrics (accuracy vs latency by default)."""
    from nasapp.app.pareto_command import pareto_command

    store = _store(db)
    pareto_command(store, _job(store, job), x, y, as_json, out)


@app.command()
def analyze(  # --sample defaults to engine/analysis DEFAULT_SAMPLE (not imported: scipy would load with every command)
    job: JobArg,
    sample: Annotated[int, typer.Option(help="Analyse at most this many succeeded trials: the best tenth of them"
                                             " and the rest drawn at random (the same on every run).")] = 2000,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Which decisions of the job's space mattered for its reward.

    Ranks every decision (each slot of the space: an edge, a block's kernel, a width) by its importance, the
    share of the reward's variance it explains (fANOVA, through Optuna, seeded), with a significance test
    (Kruskal-Wallis across a choice's options, Spearman for numbers; Holm-corrected) and, for the top decisions,
    the reward per value (count, mean, median, quartiles, best). Needs 20 succeeded trials; reads only the store,
    so it works while the job runs.
    """
    from nasapp.app.analyze_command import analyze_command

    store = _store(db)
    analyze_command(store, _job(store, job), sample, as_json, out)


@app.command()
def report(
    job: JobArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path("report.html"),
    against: Annotated[str | None, typer.Option("--against", help="Compare with this job (id or name); without"
                                                " it, the newest random-search job of the store on the same"
                                                " space, data, trainer and reward.")] = None,
    sample: Annotated[int, typer.Option(help="Analyse at most this many succeeded trials (as `nasapp analyze`)."
                                        )] = 2000,
    db: DbOption = None,
) -> None:
    """Write a self-contained HTML report of a job: one page that opens without a network.

    It holds the search curve, the Pareto front (against latency_ms, params, flops, macs or memory_mb, the first
    the trials reported), the best architectures, the analysis of `nasapp analyze` (importance chart, parallel
    coordinates, reward per choice, learning curves), the comparison with random search on the same problem, and
    the reproducibility record: seeds, the space's hash, the code and library versions, the hardware, the
    device-hours and wall time.
    """
    from nasapp.app.report_command import report_command

    store = _store(db)
    other = _job(store, against) if against is not None else None
    report_command(store, _job(store, job), output, other, sample, out)


@app.command()
def export(
    job: JobArg,
    trial: Annotated[int | None, typer.Option("--trial", help="Export this trial (its number).")] = None,
    best: Annotated[int | None, typer.Option("--best", help="Export the K best trials by reward (without --trial"
                                                            " or --best: the best one).")] = None,
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder to write trial-N/ into.")] = Path("export"),
    db: DbOption = None,
) -> None:
    """Export trials as ONNX (checked against PyTorch) with arch.json, state_dict.pt, report.json and a README.md
    that says how to feed the model and load it in PyTorch."""
    from nasapp.app.export_command import export_command

    store = _store(db)
    export_command(store, _job(store, job), trial, best, out_dir, out)


@app.command()
def latency(
    target: Annotated[str | None, typer.Argument(help="An ONNX file to time.")] = None,
    space: Annotated[str | None, typer.Option(help="A prebuilt space whose architecture to build and time.")] = None,
    arch: Annotated[str | None, typer.Option(help="The architecture as JSON.")] = None,
    arch_file: Annotated[str | None, typer.Option(help="A JSON file holding the architecture.")] = None,
    seed: Annotated[int | None, typer.Option(help="Time a random architecture of --space sampled with this seed.")]
    = None,
    baseline: Annotated[str | None, typer.Option(help="Time a named baseline of --space, e.g. mnasnet-b1"
                                                      " (`nasapp spaces NAME` lists them).")] = None,
    input_shape: Annotated[str | None, typer.Option(help="Model input, e.g. 3,32,32 (tabular: 64).")] = None,
    num_classes: Annotated[int, typer.Option(help="Output classes of the built model.")] = 10,
    width: Annotated[float, typer.Option(help="Width multiplier (scale) of the built model.")] = 1.0,
    depth: Annotated[float, typer.Option(help="Depth multiplier (scale) of the built model.")] = 1.0,
    threads: Annotated[int | None, typer.Option(help="ONNX Runtime intra-op threads (default 1; --job: the"
                                                     " job's).")] = None,
    runs: Annotated[int | None, typer.Option(help="Timed runs (default 200; --job: the job's).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Untimed warm-up runs (default 10; --job: the job's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size of the exported model (default 1; --job: the"
                                                        " job's).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset of the export.")] = 17,
    output: Annotated[str | None, typer.Option("-o", "--output", help="Keep the exported ONNX file here.")] = None,
    job: Annotated[str | None, typer.Option(help="Re-time a trial of this job (id or name) with the job's"
                                                 " [latency] settings; with --trial.")] = None,
    trial: Annotated[int | None, typer.Option(help="The trial number to re-time (with --job).")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Time a model with ONNX Runtime on the CPU: an ONNX file, an architecture of a prebuilt space, or a trial.

    Prints the median and p90 latency (ms), MACs (multiply-accumulates, as papers count them), FLOPs (2 x MACs),
    parameters, file size and inference memory.
    """
    from nasapp.app.latency_command import latency_command

    store = found = None
    if job is not None:
        store = _store(db)
        found = _job(store, job)
    latency_command(target=target, space=space, arch=arch, arch_file=arch_file, seed=seed, baseline=baseline,
                    store=store, job=found, trial=trial, input_shape=input_shape,
                    num_classes=num_classes, width=width, depth=depth, threads=threads, runs=runs, warmup=warmup,
                    batch_size=batch_size, opset=opset, output=output, as_json=as_json, console=out)


@app.command()
def spaces(
    name: Annotated[str | None, typer.Argument(
        help="A prebuilt space, or a custom one as path/to/space.py:name or module:name: show its dimensions.")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """List the prebuilt search spaces with their sizes, or show one space's dimensions (a prebuilt one, or your
    own: `nasapp spaces my_space.py:space`)."""
    from nasapp.engine.spaces.prebuilt import get_prebuilt, list_prebuilt

    if name is None:
        rows = [{"name": p.name, "size": p.space.size(), "continuous": p.space.num_continuous(), "kind": p.kind,
                 "description": p.description} for p in list_prebuilt()]
        if as_json:
            out.print(json_document(rows), markup=False)
            return
        table = Table("space", "size", "kind", "description", box=None)
        for p in list_prebuilt():
            table.add_row(p.name, p.space.size_text(), p.kind, p.description)
        out.print(table)
        return
    if ":" in name:
        from nasapp.engine.jobs.refs import load_space_ref

        if os.getcwd() not in sys.path:  # `module:name` finds a module in the current folder, as `python -m` does
            sys.path.insert(0, os.getcwd())
        _print_space(name, "a custom space", load_space_ref(name), {}, as_json)
        return
    found = get_prebuilt(name)
    _print_space(found.name, found.description, found.space, found.baselines, as_json)


def _print_space(name: str, description: str, space, baselines: Any, as_json: bool) -> None:
    """One space's size and dimensions (`nasapp spaces NAME`)."""
    if as_json:
        out.print(json_document({"name": name, "size": space.size(), "continuous": space.num_continuous(),
                                 "size_text": space.size_text(), "space": space.to_json(),
                                 "baselines": dict(baselines)}), markup=False)
        return
    lines = space_lines(name, description, space, baselines)
    out.print(plain(lines[0]))
    for line in lines[1:]:
        out.print(plain(line, False), markup=False)


@app.command()
def strategies(as_json: JsonOption = False) -> None:
    """List the search strategies ([strategy] name = ...) with the options each one takes."""
    _print_plugins(["strategy"], as_json)


proxy_app = typer.Typer(help="Proxy-task design tools: how noisy a proxy task is (variance), which models to judge"
                        " proxies against (select), and the cheapest proxy that ranks them as full training"
                        " does (search).",
                        rich_markup_mode=None)
app.add_typer(proxy_app, name="proxy")


@proxy_app.command("variance")
def proxy_variance(
    job_file: Annotated[Path | None, typer.Argument(help="The job file whose proxy task to measure.")] = None,
    copies: Annotated[int | None, typer.Option(
        help="Training runs of the one model, each with its own seed (default 5; a resumed run keeps its own).")
    ] = None,
    resume: Annotated[str | None, typer.Option(
        help="Continue the run with this id or name (after a crash or Ctrl-C) instead of starting one.")] = None,
    max_cv: Annotated[float, typer.Option(
        help="Coefficient of variation of the final score above which the proxy is called too noisy.")] = 0.01,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Train copies of one model of the job's space with the job's proxy settings and different seeds; report
    the coefficient of variation of the final score, how smooth the validation curves are, and advice when the
    proxy task is too noisy to rank models. A model that runs out of memory or diverges is replaced by
    another sample. The run is a job in the store (`<job>-variance`), shown by ls, show and the dashboard.

    Example: nasapp proxy variance examples/mnasnet-digits.toml --copies 5
    """
    from nasapp.app.proxy_command import variance_command

    store = _store(db, create=True)
    variance_command(job_file, copies, resume, max_cv, as_json, store, _quiet_follow(as_json), out)


# --resume of the tools whose run is a row of the store's tool_runs table (not a job)
ToolRunOption = Annotated[str | None, typer.Option(
    "--resume", help="Continue the run with this id (after a crash or Ctrl-C) instead of starting one.")]


@proxy_app.command("select")
def proxy_select(
    job_file: Annotated[Path | None, typer.Argument(help="The job file whose space, data and trainer to use.")]
    = None,
    begin: Annotated[int, typer.Option(help="Models sampled for the first round.")] = 30,
    end: Annotated[int, typer.Option(help="Models left after the last round; they train to full training.")] = 10,
    drop: Annotated[int, typer.Option(help="Models dropped after each round.")] = 5,
    full_steps: Annotated[int | None, typer.Option(
        help="Steps of full training (default: the job's trainer.schedule_steps, else its trainer.steps).")] = None,
    resume: ToolRunOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Pick the correlation-candidate models a proxy task is judged against. Samples --begin models of the
    job's space, trains them to 1/30 of full training, then 1/25, 1/20, ... (each round continuing from the
    last one's checkpoints), dropping after each round the --drop models that add least to the spread of
    accuracy (and latency, when the job measures it), until --end are left; those train to full training.
    Stops after the first round when more than 20% of the sampled models failed, saying why. Each round is
    a job in the store (`<job>-select<RUN>-r<K>`).

    Example: nasapp proxy select examples/mnasnet-hard-digits.toml --begin 16 --end 8 --drop 2
    """
    from nasapp.app.proxy_select import select_command

    store = _store(db, create=True)
    select_command(job_file, begin, end, drop, full_steps, resume, as_json, store, _quiet_follow(as_json), out,
                   err if as_json else out)


@proxy_app.command("search")
def proxy_search(
    job_file: Annotated[Path | None, typer.Argument(help="The job file whose proxy settings to start from.")]
    = None,
    models: Annotated[str | None, typer.Option(
        help="The finished `nasapp proxy select` run whose models and full-training scores to rank.")] = None,
    steps: Annotated[str | None, typer.Option(
        help="Candidate lengths, comma-separated (default: the job's trainer.steps); each is the length its"
             " learning-rate schedule spans, and a candidate may stop earlier.")] = None,
    data_fraction: Annotated[str | None, typer.Option(
        help="Candidate shares of the training data, comma-separated (default: the job's).")] = None,
    scale: Annotated[str | None, typer.Option(
        help="Candidate model sizes: multipliers on the job's width and depth, comma-separated (default 1).")]
    = None,
    target: Annotated[float | None, typer.Option(
        help="Kendall rank correlation with full training to reach (default 0.65).")] = None,
    max_p: Annotated[float | None, typer.Option(
        help="Largest p-value of that correlation that counts (default 0.05).")] = None,
    time_limit: Annotated[float | None, typer.Option(
        help="Seconds of training a candidate may spend before it stops (default: no limit).")] = None,
    checks: Annotated[int | None, typer.Option(
        help="Chunks a candidate trains in; the correlation is judged after each (default 4).")] = None,
    resume: ToolRunOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Find the cheapest proxy task that ranks models as full training does. Every candidate (each
    combination of --steps, --data-fraction and --scale; an option not given comes from the job file's
    [proxy_search] table, which takes the same keys) trains the models of a `proxy select` run, in
    --checks chunks that continue from one another; after each chunk the Kendall rank correlation between
    their scores and their full-training scores is computed at every evaluation step. A candidate stops when
    the correlation reaches --target with p <= --max-p, when --time-limit passes, or when its steps are done.
    Prints each candidate's correlation over steps, median score, training time and cost as a share of full
    training, then the job-file lines of the cheapest candidate that met the target.

    Example: nasapp proxy search examples/mnasnet-hard-digits.toml --models 1 --steps 120,240 --scale 0.5,1
    """
    from nasapp.app.proxy_search import search_command

    options = {"steps": _numbers(steps, int, "--steps"),
               "data_fraction": _numbers(data_fraction, float, "--data-fraction"),
               "scale": _numbers(scale, float, "--scale"), "target": target, "max_p": max_p,
               "time_limit_s": time_limit, "checks": checks}
    store = _store(db, create=True)
    search_command(job_file, models, options, resume, as_json, store, _quiet_follow(as_json), out,
                   err if as_json else out)


def _numbers(text: str | None, kind: type, option: str) -> list[Any]:
    """A comma-separated list of numbers from the command line (empty when the option was not given)."""
    if text is None:
        return []
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NasappError(f"{option} {text!r}: give numbers separated by commas, e.g. 100,200") from None


@app.command()
def stage2(
    job: Annotated[str | None, typer.Argument(help="The search job (id or name) whose best models to retrain.")]
    = None,
    top: Annotated[int, typer.Option(help="How many of its best distinct models to retrain.")] = 10,
    steps: Annotated[int | None, typer.Option(
        help="Training steps (default: the search's trainer.schedule_steps, else its steps).")] = None,
    data_fraction: Annotated[float | None, typer.Option(help="Share of the training data (e.g. 1 for all).")] = None,
    scale: Annotated[float | None, typer.Option(
        help="Width and depth multiplier of the model (1: the full model; default: the search's scale).")] = None,
    resume: Annotated[str | None, typer.Option(
        help="Continue the stage-2 run with this id or name (after a crash or Ctrl-C).")] = None,
    every: Annotated[int | None, typer.Option(
        help="Run beside the search: each time this many more of its trials finished, retrain the top models"
             " that are new since; ends after the search does.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Retrain a search's best models with full settings, as trials of a child job (`<job>-stage2`), then
    report each model's search and stage-2 rewards and Kendall's rank correlation between them. With
    --every K it runs alongside the search (start it in a second terminal) and keeps the stage-2 job up to
    date with the search's top models.

    Example: nasapp stage2 1 --top 5 --steps 600 --data-fraction 1 --scale 1
    """
    from nasapp.app.stage2_command import stage2_command

    store = _store(db)
    stage2_command(job, top, steps, data_fraction, scale, resume, as_json, store, _quiet_follow(as_json), out,
                   every=every, progress=err if as_json else out)


def _quiet_follow(as_json: bool) -> Callable[[Any, int], None]:
    """``_follow`` for commands that run a job of their own and then print a report: with --json the run's own
    lines go to stderr (stdout holds the JSON document alone), and a run that ended with every trial failed
    (exit 1) is left for the report to say so."""

    def follow(store: Any, job_id: int) -> None:
        try:
            _follow(store, job_id, console=err if as_json else out)
        except typer.Exit as stop:
            if stop.exit_code != 1:  # Ctrl-C (130) ends the command; the job stays resumable
                raise

    return follow


@app.command()
def bench(
    table: Annotated[Path, typer.Option("--table", help="CSV of a tabular benchmark: one row per architecture.")],
    space: Annotated[str, typer.Option(
        "--space", help="The table's search space: a prebuilt name (nb201) or module:name / file.py:name.")] = "nb201",
    arch_column: Annotated[str, typer.Option(
        help="Column naming the architecture: the space's own text form (NAS-Bench-201 strings) or JSON.")] = "arch",
    metric_column: Annotated[str, typer.Option(help="Column the search maximises (or minimises).")] = "test_accuracy",
    direction: Annotated[str, typer.Option(help="max: higher metric is better; min: lower is.")] = "max",
    strategies: Annotated[str, typer.Option(
        help="Strategies to compare, separated by commas (random search is always included); LABEL=NAME"
        " benchmarks another setting of a strategy under its own label, e.g. tpe,tpe-uni=tpe with --option"
        " tpe-uni.multivariate=false.")] = "evolution",
    seeds: Annotated[int, typer.Option(help="Complete searches per strategy (seeds 0, 1, ...).")] = 30,
    budget: Annotated[int, typer.Option(help="Trials per search.")] = 200,
    at: Annotated[str | None, typer.Option(
        help="Budgets to report, e.g. 50,100,200 (default: a quarter, half and all of --budget).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="A strategy option, LABEL.KEY=VALUE (repeatable; LABEL is the strategy's name or its"
        " label), e.g. evolution.population=10.")] = None,
    objectives: Annotated[str | None, typer.Option(
        help="Columns to minimise alongside the metric (multi-objective: Pareto-aware strategies use them and"
        " the hypervolume of each front is reported), e.g. flops.")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes running seeds (default: one per core).")] = None,
    as_json: JsonOption = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write every trial's value to this CSV.")] = None,
) -> None:
    """Compare search strategies on a tabular benchmark: the table is the trainer, so hundreds of complete
    searches run in seconds. Per strategy: mean best and regret at several budgets with 95% confidence
    intervals, the share of seeds that found the optimum, and a chart of mean regret against trials. A
    zero-cost pre-screen (prescreen) scores its candidates with the table column its proxy option names.

    Example: nasapp bench --table nb201_cifar10.csv --space nb201 --strategies evolution,tpe --seeds 30
    """
    from nasapp.app.bench_command import bench_command

    bench_command(table, space, arch_column, metric_column, direction, strategies, seeds, budget, at, option or [],
                  objectives, workers, as_json, csv_out, out, err)


@app.command()
def plugins(
    kind: Annotated[str | None, typer.Argument(
        help="One kind: strategy, early_stopping, trainer, data, latency or executor.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List every registered part a job file can pick: strategies, early-stopping rules, prebuilt trainers,
    data kinds, latency devices and executors, with the options each one adds to its table."""
    from nasapp.engine.plugins import REGISTRIES

    if kind is not None and kind not in REGISTRIES:
        raise NasappError(f"unknown kind {kind!r}; choose one of: {', '.join(REGISTRIES)}")
    _print_plugins([kind] if kind else list(REGISTRIES), as_json)


def _print_plugins(kinds: list[str], as_json: bool) -> None:
    from nasapp.engine.plugins import describe

    rows = [row for kind in kinds for row in describe(kind)]
    if as_json:
        out.print(json_document(rows), markup=False)
        return
    table = Table("key", "name", "description", "its own options (defaults)", box=None)
    for row in rows:
        options = ", ".join(f"{k}={v!r}" for k, v in row["options"].items()) or "-"
        table.add_row(row["key"], row["name"], row["description"], options)
    out.print(table)


def _send_command(job: str, db: Path | None, command: str) -> None:
    from nasapp.engine.jobs.liveness import runner_alive

    store = _store(db)
    found = _job(store, job)
    if not runner_alive(found):
        raise NasappError(f"job {found.id} is not running ({found.status})")
    store.add_command(found.id, command, runner_token=found.runner_token)  # for this runner only
    out.print(f"job {found.id}: {command} requested")


@app.command()
def pause(job: JobArg, db: DbOption = None) -> None:
    """Stop starting new trials (running ones finish); `nasapp unpause` starts them again."""
    _send_command(job, db, "pause")


@app.command()
def unpause(job: JobArg, db: DbOption = None) -> None:
    """Start new trials again after `nasapp pause`."""
    _send_command(job, db, "resume")


def main() -> None:
    """The console script: a user's mistake, or a store or file that cannot be used, is one line and exit 2."""
    try:
        app()
    except (NasappError, StoreError) as error:
        _fail(str(error))
    except sqlite3.Error as error:  # the store went bad while in use: disk full, damaged, -wal file deleted
        from nasapp.store.db import default_db_path, describe_sqlite_error

        _fail(describe_sqlite_error(_opened[-1] if _opened else default_db_path(), error))
    except OSError as error:  # a file or folder nasapp had to write or read (disk full, permissions)
        where = f": {error.filename}" if error.filename else ""
        _fail(f"{error.strerror or type(error).__name__}{where}")
    except KeyboardInterrupt:
        sys.exit(130)


def _fail(message: str) -> None:
    try:
        err.print(plain(f"error: {message}"))
    finally:
        sys.exit(2)


if __name__ == "__main__":
    main()
