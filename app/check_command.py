"""`nasapp check JOB.toml`: try a job before running it.

1. validate the job file (the same checks `nasapp run` makes);
2. build the smallest and the largest of 64 sampled architectures (prebuilt spaces) for the job's data and run
   one training step each at the job's batch size, on the job's device: shape errors and running out of
   memory show now, not in trial 37;
3. run one short trial end to end (a tenth of the steps, at least 10), then a test stage of 5 trials with the
   job's own settings, both in a temporary store (the user's store gets nothing);
4. print each trial's time and metric, the failure rate, and the estimate for the whole job: device-hours
   (trials x mean trial time x devices per trial) and wall time at the job's parallelism.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from nasapp.app.formatting import json_document
from nasapp.engine.errors import NasappError

STAGE_TRIALS = 5


def check_command(job_file: Path | None, *, trials: int = STAGE_TRIALS, as_json: bool = False,
                  console: Console) -> dict[str, Any]:
    """Run the checks and the test stage of ``job_file`` (None: the built-in demo); print them (or JSON)."""
    from nasapp.engine.jobs.demo import demo_job
    from nasapp.engine.jobs.spec import load_job, parse_job
    from nasapp.engine.jobs.validation import validate_job

    if trials < 1:
        raise NasappError(f"--trials {trials}: give 1 or more")
    say = (lambda text: None) if as_json else (lambda text: console.print(text, markup=False, highlight=False))
    spec = load_job(job_file) if job_file is not None else parse_job(demo_job(), source="built-in demo job")
    checked = validate_job(spec)
    say(f"job file: valid ({spec.name}: space {spec.space.label}, {spec.search.max_trials} trials, strategy"
        f" {spec.strategy.name})")
    for note in checked.notes:
        say(f"  note: {note}")
    summary: dict[str, Any] = {"job": spec.name, "valid": True, "notes": list(checked.notes)}
    slots = _slots(spec)  # where the job's trials will run, as the local executor plans them
    summary["extremes"] = _extremes(spec, checked.data, slots[0], say)
    raw = spec.model_dump(mode="json")
    with tempfile.TemporaryDirectory(prefix="nasapp-check-") as folder:
        from nasapp.store import Store

        store = Store(Path(folder) / "check.db", create=True)
        steps = int(raw["trainer"].get("steps") or 0)
        short = max(10, steps // 10) if steps else None
        summary["short_trial"] = _stage(store, raw, f"{spec.name}-check-short", 1, short, say,
                                        f"one short trial ({short} steps)" if short else "one short trial")
        summary["test_stage"] = _stage(store, raw, f"{spec.name}-check-stage", trials, None, say,
                                       f"test stage: {trials} trials with the job's settings")
        store.close()
    summary["estimate"] = _estimate(spec, summary["test_stage"], len(slots), say)
    if as_json:
        console.print(json_document(summary), markup=False)
    return summary


def _slots(spec: Any) -> list[Any]:
    from nasapp.engine.execution.pool import plan_slots, training_cores

    cores = training_cores(spec.latency.pin_cores if spec.latency.enabled else None)
    return plan_slots(spec.search.devices, spec.search.parallel, cores)


def _extremes(spec: Any, data: Any, slot: Any, say: Any) -> dict[str, Any] | None:
    from nasapp.engine.jobs.check import extreme_archs, try_build

    if not spec.space.prebuilt or data is None:
        say("largest/smallest architectures: skipped (a custom space or trainer builds its own models; the"
            " trials below try them)")
        return None
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    prebuilt = get_prebuilt(spec.space.prebuilt)
    scale = spec.space.scale.model_dump()
    found = extreme_archs(prebuilt, tuple(data.input_shape), int(data.num_classes), scale, spec.seed)
    device = f"cuda:{slot.gpu}" if slot.gpu is not None else "cpu"
    batch = int(getattr(spec.trainer, "batch_size", None) or 64)
    out = {"device": device, "batch_size": batch, "sampled": found.sampled}
    for name, arch in (("smallest", found.smallest), ("largest", found.largest)):
        built = try_build(prebuilt, arch, data, scale, batch, device)
        out[name] = {"params": built["params"], "step_s": round(built["seconds"], 3), "arch": arch}
        say(f"{name} of {found.sampled} sampled architectures: {built['params']:,} params, one training step on"
            f" {device} (batch {batch}) in {built['seconds']:.2f} s")
    return out


def _stage(store: Any, raw: dict[str, Any], name: str, trials: int, steps: int | None, say: Any,
           title: str) -> dict[str, Any]:
    from nasapp.engine.execution.runner import Runner
    from nasapp.engine.jobs.check import outside_time, slot_seconds
    from nasapp.engine.jobs.spec import parse_job
    from nasapp.engine.jobs.validation import create_job

    table = copy.deepcopy(raw)
    table["name"] = name
    table["search"]["max_trials"] = trials
    if steps is not None:
        table["trainer"]["steps"] = steps
        if table["trainer"].get("eval_every"):
            table["trainer"]["eval_every"] = min(int(table["trainer"]["eval_every"]), steps)
    say(f"{title}:")
    job_id = create_job(store, parse_job(table, source=name))
    started = time.monotonic()
    status = Runner(store, job_id).run()
    wall = time.monotonic() - started
    metric = raw.get("reward", {}).get("metric", "accuracy")
    rows = []
    trials = store.trials(job_id)
    finished = [t for t in trials if t.started_at and t.finished_at]
    reports = {t.id: [(int(row["step"]), float(row["ts"])) for row in store.metrics(t.id)] for t in finished}
    held = dict(zip((t.id for t in finished), slot_seconds(
        [(t.device, t.started_at, t.finished_at, reports[t.id][-1][1] if reports[t.id] else None)
         for t in finished]), strict=True))
    for trial in trials:
        seconds = (trial.finished_at - trial.started_at) if trial.id in held else None
        slot_s = held.get(trial.id)
        value = trial.metrics.get(metric)
        rows.append({"trial": trial.number, "status": trial.status, "seconds": seconds, "slot_s": slot_s,
                     metric: value, "params": trial.metrics.get("params"),
                     "outside_s": outside_time(slot_s, reports[trial.id]) if slot_s is not None else None,
                     "baseline": bool(raw["search"].get("baseline")) and trial.number == 0,
                     "device": trial.device, "reason": trial.reason, "message": trial.message})
        shown = f"{metric} {value:.4f}" if isinstance(value, int | float) else (trial.message or trial.status)
        on_slot = f" ({slot_s:.1f} s on its slot)" if seconds and slot_s is not None and slot_s < 0.95 * seconds else ""
        say(f"  trial {trial.number}: {trial.status}, {seconds or 0:.1f} s{on_slot}, {shown}")
    failed = sum(r["status"] == "failed" for r in rows)
    say(f"  {status} in {wall:.1f} s; {failed} of {len(rows)} failed")
    return {"status": status, "wall_s": round(wall, 1), "trials": rows, "failed": failed,
            "failure_rate": failed / len(rows) if rows else None}


def _estimate(spec: Any, stage: dict[str, Any], slots: int, say: Any) -> dict[str, Any]:
    from nasapp.engine.jobs.check import StageTrial, estimate

    timed = [StageTrial(r["device"], r["slot_s"], r["outside_s"], r["params"], r["baseline"]) for r in stage["trials"]
             if r["slot_s"] is not None]
    # a Pareto-aware strategy, or a reward that weighs latency or memory, steers towards cheaper models too: no
    # drift towards the larger ones is assumed then
    reward = spec.reward
    weighs_cost = reward.latency_target_ms is not None or reward.memory_limit_mb is not None or reward.formula
    steered_from = None if getattr(spec.strategy, "objectives", None) or weighs_cost else spec.strategy.random_start
    found = estimate(timed, stage["wall_s"], slots, spec.search.max_trials, random_start=steered_from,
                     warm_workers=not spec.trainer.command)  # a command trainer starts a process per trial
    notes = []
    if spec.early_stopping.rule != "none":
        notes.append(f"early_stopping.rule = {spec.early_stopping.rule!r} stops some trials early: the real job"
                     " costs less than this")
    if stage["failure_rate"]:
        notes.append(f"{stage['failure_rate']:.0%} of the test stage failed: look at those trials' messages"
                     " before launching")
    found["notes"] = notes
    from nasapp.app.progress import format_duration

    wall = found["wall_s"]
    shown = f"{wall:.1f} s" if wall < 60 else format_duration(wall)
    say(f"estimate for {found['max_trials']} trials on {slots} slot(s): wall time {shown},"
        f" {found['device_hours']:.3f} device-hours (mean trial {found['mean_trial_s']:.1f} s,"
        f" start-up {found['startup_s']:.0f} s)")
    if found["steered_trials"]:
        say(f"  {found['steered_trials']} trials steered by results (after {spec.strategy.random_start} random ones)"
            f" at {found['steered_trial_s']:.1f} s each, not {found['stage_mean_s']:.1f} s: the stage's larger half,"
            " as searches move to larger models")
    for note in notes:
        say(f"  note: {note}")
    say("stage 2 (`nasapp stage2 JOB --top K`) costs K trials with its own steps on top: check it the same way"
        " with a job file of those settings")
    return found
