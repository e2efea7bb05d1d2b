"""Summaries from SQL aggregates (store/aggregates.py): the same figures as reading every trial would give,
NaN metrics (which SQLite's JSON functions refuse) included."""

from __future__ import annotations

import math

from nasapp.engine.jobs.demo import demo_job
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.latency.accuracy import within
from nasapp.engine.results.summary import failures, predictor_accuracy, pruned, summarize
from nasapp.store import Store
from nasapp.store.aggregates import metric_points, newest_pairs, pruned_step_range


def _job(store: Store) -> int:
    raw = demo_job()
    raw["latency"] = {"device": "cpu-ort"}
    spec = parse_job(raw, source="test")
    return store.create_job("agg", spec.model_dump(mode="json"), {"t": 1}, 100, 0)


def _trial(store: Store, job_id: int, number: int, status: str, clock: list[float], **fields) -> None:
    trial_id = store.add_trial(job_id, number, {"n": number}, f"f{number}", number)
    store.start_trial(trial_id, "cpu0")
    store.finish_trial(trial_id, status, tell_seq=number, **fields)
    clock[0] += 1.0  # finish times in a known order, not the clock's
    store.conn.execute("UPDATE trials SET finished_at = ? WHERE id = ?", (clock[0], trial_id))


def _filled(tmp_path) -> tuple[Store, int]:
    store = Store(tmp_path / "agg.db")
    job_id = _job(store)
    clock = [1000.0]
    for number in range(30):
        if number % 7 == 3:
            _trial(store, job_id, number, "failed", clock, reason="oom" if number % 2 else None,
                   message=f"boom {number}", metrics={"loss": float("nan")})
        elif number % 5 == 4:
            _trial(store, job_id, number, "pruned", clock, metrics={"pruned_at_step": 10 * number})
        else:
            measured = 1.0 + number / 10
            predicted = measured * (1.05 if number % 3 else 1.5)
            metrics = {"accuracy": number / 30, "latency_ms": measured, "predicted_latency_ms": predicted}
            if number == 8:
                metrics["loss"] = float("nan")  # metrics SQLite cannot read as JSON
            _trial(store, job_id, number, "succeeded", clock, reward=number / 30, metrics=metrics)
    _trial(store, job_id, 30, "pruned", clock, metrics={"pruned_at_step": 5, "loss": float("inf")})
    return store, job_id


def test_summary_figures_match_a_pass_over_every_trial(tmp_path):
    store, job_id = _filled(tmp_path)
    job = store.job(job_id)
    failed = sorted(store.trials(job_id, "failed"), key=lambda t: (t.finished_at, t.number))
    got = failures(store, job, len(failed))
    assert got["count"] == len(failed) == 4
    assert (got["first"]["trial"], got["last"]["trial"]) == (failed[0].number, failed[-1].number) == (3, 24)
    assert got["by_reason"] == {"oom": 2, "error": 2}

    steps = [t.metrics["pruned_at_step"] for t in store.trials(job_id, "pruned")
             if math.isfinite(t.metrics.get("loss", 0.0))]  # the trial with inf in its metrics is not readable
    assert pruned_step_range(store, job_id) == (min(steps), max(steps)) == (40, 290)
    assert pruned(store, job, 6)["count"] == 6

    succeeded = store.trials(job_id, "succeeded")
    readable = [t for t in succeeded if t.number != 8]
    pairs = [(t.metrics["predicted_latency_ms"], t.metrics["latency_ms"]) for t in readable]
    assert predictor_accuracy(store, job_id) == within(*zip(*pairs, strict=True))
    assert newest_pairs(store, job_id, "predicted_latency_ms", "latency_ms", 2) == pairs[::-1][:2]

    summary = summarize(store, job, best_k=3)
    assert [t["trial"] for t in summary["top"]] == [28, 27, 26]  # 29 was pruned
    assert summary["finished"] == 31


def test_metric_points_read_rows_sqlite_cannot_parse_in_python(tmp_path):
    store, job_id = _filled(tmp_path)
    total, points = metric_points(store, job_id, "latency_ms", "accuracy")
    succeeded = store.trials(job_id, "succeeded")
    assert total == len(succeeded)
    assert points == [(t.number, t.reward, t.metrics["latency_ms"], t.metrics["accuracy"]) for t in succeeded]
    _, with_reward = metric_points(store, job_id, "reward", "loss")
    assert [p[2] for p in with_reward] == [t.reward for t in succeeded]
    assert math.isnan(next(p[3] for p in with_reward if p[0] == 8))


def test_a_trial_with_nan_metrics_can_still_be_stored(tmp_path):
    """Migration 4 indexes an expression over the metrics JSON: it must not refuse NaN."""
    store = Store(tmp_path / "nan.db")
    job_id = _job(store)
    _trial(store, job_id, 0, "pruned", [0.0], metrics={"pruned_at_step": 3, "loss": float("nan")})
    assert math.isnan(store.trials(job_id)[0].metrics["loss"])


def test_the_trials_table_sorts_a_job_holding_nan_metrics(tmp_path):
    """The dashboard's windowed table sorts in SQL: a row SQLite cannot read as JSON sorts as empty (last)."""
    from nasapp.store.queries import ordered_trial_ids

    store, job_id = _filled(tmp_path)
    by_accuracy = ordered_trial_ids(store, job_id, "succeeded", "m:accuracy", True)
    numbers = {t.id: t.number for t in store.trials(job_id)}
    assert [numbers[i] for i in by_accuracy][:3] == [28, 27, 26]
    assert numbers[by_accuracy[-1]] == 8  # its metrics hold NaN
