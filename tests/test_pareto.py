"""The Pareto front over two metrics, and `pareto_command` on a real store."""

from __future__ import annotations

import io
import json
import random
import re

import pytest
from rich.console import Console

from nasapp.app.pareto_command import pareto_command, staircase
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.rewards.nondominated import dominates, front_ranks, nondominated
from nasapp.engine.rewards.pareto import metric_direction, pareto_front
from nasapp.store import Store


def trial(number: int, **metrics) -> dict:
    return {"number": number, "metrics": metrics, "reward": metrics.get("accuracy"), "arch": {"n": number}}


def numbers(front: list[dict]) -> list[int]:
    return [t["number"] for t in front]


def brute_force(points, x, y, x_dir, y_dir):
    def better_or_equal(a, b, key, direction):
        return a[key] <= b[key] if direction == "min" else a[key] >= b[key]

    def strictly_better(a, b, key, direction):
        return a[key] < b[key] if direction == "min" else a[key] > b[key]

    kept = []
    for p in points:
        m = p["metrics"]
        dominated = any(
            better_or_equal(q["metrics"], m, x, x_dir) and better_or_equal(q["metrics"], m, y, y_dir)
            and (strictly_better(q["metrics"], m, x, x_dir) or strictly_better(q["metrics"], m, y, y_dir))
            for q in points)
        if not dominated:
            kept.append(p)
    return sorted(kept, key=lambda t: (t["metrics"][x], points.index(t)))


def test_a_known_front():
    points = [
        trial(0, latency_ms=10, accuracy=0.90),
        trial(1, latency_ms=5, accuracy=0.80),
        trial(2, latency_ms=12, accuracy=0.85),  # dominated by 0
        trial(3, latency_ms=20, accuracy=0.95),
        trial(4, latency_ms=6, accuracy=0.70),   # dominated by 1
        trial(5, latency_ms=2, accuracy=0.50),
    ]
    assert numbers(pareto_front(points)) == [5, 1, 0, 3]


def test_ties():
    points = [
        trial(0, latency_ms=10, accuracy=0.9),
        trial(1, latency_ms=10, accuracy=0.9),   # identical to 0: neither dominates, both stay
        trial(2, latency_ms=10, accuracy=0.8),   # same latency, worse accuracy: dominated
        trial(3, latency_ms=12, accuracy=0.9),   # same accuracy, slower: dominated
        trial(4, latency_ms=5, accuracy=0.7),
    ]
    assert numbers(pareto_front(points)) == [4, 0, 1]


def test_missing_and_non_finite_metrics_are_skipped():
    points = [
        trial(0, latency_ms=10, accuracy=0.9),
        trial(1, accuracy=0.99),                       # no latency
        trial(2, latency_ms=1),                        # no accuracy
        trial(3, latency_ms=float("nan"), accuracy=1.0),
        {"number": 4, "metrics": None},
        trial(5, latency_ms=3, accuracy=0.5),
    ]
    assert numbers(pareto_front(points)) == [5, 0]
    assert pareto_front([]) == []


def test_directions():
    points = [trial(0, a=1, b=1), trial(1, a=2, b=2), trial(2, a=3, b=0), trial(3, a=0, b=3)]
    assert numbers(pareto_front(points, "a", "b", "min", "max")) == [3]
    assert numbers(pareto_front(points, "a", "b", "max", "max")) == [3, 1, 2]
    assert numbers(pareto_front(points, "a", "b", "min", "min")) == [3, 0, 2]
    assert numbers(pareto_front(points, "a", "b", "max", "min")) == [2]
    with pytest.raises(NasappError, match="x_dir"):
        pareto_front(points, "a", "b", "lowest", "max")


def test_the_front_matches_brute_force_on_random_points():
    rng = random.Random(3)
    for _ in range(50):
        points = [trial(i, a=rng.randint(0, 6), b=rng.randint(0, 6)) for i in range(rng.randint(1, 25))]
        for x_dir in ("min", "max"):
            for y_dir in ("min", "max"):
                expected = numbers(brute_force(points, "a", "b", x_dir, y_dir))
                assert numbers(pareto_front(points, "a", "b", x_dir, y_dir)) == expected


def test_the_reward_can_be_an_axis_and_directions_are_guessed_from_names():
    points = [{"number": 0, "reward": 0.5, "metrics": {"params": 10}},
              {"number": 1, "reward": 0.7, "metrics": {"params": 30}},
              {"number": 2, "reward": 0.6, "metrics": {"params": 40}}]
    assert numbers(pareto_front(points, "params", "reward")) == [0, 1]
    assert metric_direction("latency_ms") == metric_direction("memory_mb") == metric_direction("params") == "min"
    assert metric_direction("accuracy") == "max"
    assert metric_direction("loss") == "min"
    assert metric_direction("top1", {"metric": "top1", "direction": "min"}) == "min"


def test_staircase():
    assert staircase([(1, 0.5), (2, 0.8)], "min") == [(1, 0.5), (2, 0.5), (2, 0.8)]
    assert staircase([(1, 0.8), (2, 0.5)], "max") == [(1, 0.8), (1, 0.5), (2, 0.5)]


# ---- the command on a real store ----------------------------------------------------------------------

@pytest.fixture
def store_with_job(tmp_path):
    store = Store(tmp_path / "nasapp.db")
    spec = parse_job({"name": "pj", "space": {"prebuilt": "nb201"}, "data": {"kind": "digits"},
                      "reward": {"metric": "accuracy", "direction": "max"}})
    job_id = store.create_job("pj", spec.model_dump(mode="json"), {}, 40, 0)
    rng = random.Random(0)
    for n in range(40):
        trial_id = store.add_trial(job_id, n, {"widths": [rng.choice([32, 64, 128])] * rng.randint(1, 4)},
                                   f"fp{n}", n)
        if n == 39:
            store.finish_trial(trial_id, "failed", reason="constraint", message="over",
                               metrics={"accuracy": 1.0, "latency_ms": 0.1})
            continue
        latency = rng.uniform(1, 20)
        accuracy = min(0.99, 0.5 + 0.1 * latency ** 0.5 + rng.uniform(-0.1, 0.05))
        metrics = {"accuracy": accuracy, "params": 1000 * n}
        if n != 7:
            metrics["latency_ms"] = latency
        store.finish_trial(trial_id, "succeeded", reward=accuracy, metrics=metrics)
    yield store, store.job(job_id)
    store.close()


def test_the_command_prints_a_table_and_a_plot_within_a_narrow_terminal(store_with_job):
    store, job = store_with_job
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=False)
    pareto_command(store, job, "latency_ms", "accuracy", False, console)
    text = buffer.getvalue()
    assert "trials on the front of latency_ms" in text
    assert "(1 succeeded trial(s) lacked latency_ms or accuracy)" in text
    assert "pareto front" in text and "┌" in text  # the plot
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "\x1b[" not in text  # no colour codes when not a terminal

    buffer = io.StringIO()
    pareto_command(store, job, "latency_ms", "accuracy", False, Console(file=buffer, width=60, force_terminal=True))
    visible = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    assert "\x1b[" in buffer.getvalue() and max(len(line) for line in visible.splitlines()) <= 60


def test_the_command_prints_one_json_document(store_with_job):
    store, job = store_with_job
    buffer = io.StringIO()
    pareto_command(store, job, "latency_ms", "accuracy", True, Console(file=buffer, width=80))
    doc = json.loads(buffer.getvalue())
    assert doc["x_dir"] == "min" and doc["y_dir"] == "max"
    assert doc["trials"] == 39 and doc["considered"] == 38 and doc["skipped"] == 1
    front = doc["front"]
    assert front and all({"trial", "latency_ms", "accuracy", "reward", "arch"} <= p.keys() for p in front)
    assert 39 not in [p["trial"] for p in front]  # failed (infeasible) trials are never on the front
    latencies = [p["latency_ms"] for p in front]
    assert latencies == sorted(latencies)
    accuracies = [p["accuracy"] for p in front]
    assert accuracies == sorted(accuracies)  # slower points on the front must be more accurate


def test_the_command_explains_a_metric_no_trial_reported(store_with_job):
    store, job = store_with_job
    with pytest.raises(NasappError, match=rf"no trial of job {job.id} reported memory_mb: set \[latency\]"
                                          r' device = "cpu-ort" in the job file'):
        pareto_command(store, job, "memory_mb", "accuracy", False, Console(file=io.StringIO()))
    with pytest.raises(NasappError, match="reported top5; its trials reported: accuracy, latency_ms, params"):
        pareto_command(store, job, "latency_ms", "top5", True, Console(file=io.StringIO()))


def _brute_front(points):
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def _brute_ranks(points):
    ranks, left, rank = [0] * len(points), list(range(len(points))), 0
    while left:
        front = [i for i in left if not any(dominates(points[j], points[i]) for j in left)]
        for i in front:
            ranks[i] = rank
        left, rank = [i for i in left if i not in front], rank + 1
    return ranks


@pytest.mark.parametrize("axes", [1, 2, 3, 4])
def test_nondominated_matches_brute_force_with_ties_in_any_number_of_axes(axes):
    """The 2-D sweep, the 3-D staircase and the N-D cull agree with comparing every pair (small integer values,
    so ties and duplicate points are frequent); so do the ranks the multi-objective strategies sort by."""
    rng = random.Random(axes)
    for _ in range(300):
        points = [tuple(rng.randint(0, 5) for _ in range(axes)) for _ in range(rng.randint(0, 40))]
        assert nondominated(points) == _brute_front(points), points
        assert front_ranks(points) == _brute_ranks(points), points


def test_nondominated_takes_a_sort_and_a_pass_on_100000_points_in_2_and_3_axes():
    rng = random.Random(0)
    for axes in (2, 3):
        points = [tuple(rng.random() for _ in range(axes)) for _ in range(100_000)]
        front = set(nondominated(points))
        sample = rng.sample(range(len(points)), 200)
        best = max(range(len(points)), key=lambda i: points[i])
        assert best in front
        for i in sample:  # spot checks against the definition
            assert (i in front) == (not any(dominates(q, points[i]) for q in (points[j] for j in front)))
