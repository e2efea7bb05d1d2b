"""`nasapp bench`: a tabular benchmark replayed as the trainer, many seeds per strategy, figures that are right
for a table whose answers are known; the tabular trainer in a real job; Pareto ranking and the hypervolume."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from helpers import nasapp_cli, write_job

import nasapp as nas
from nasapp.engine.benchmarks.fronts import hypervolume_2d
from nasapp.engine.benchmarks.harness import run_search
from nasapp.engine.benchmarks.report import at_budget, confidence_interval
from nasapp.engine.benchmarks.table import load_table
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.strategies import STRATEGIES, TrialOutcome, make_strategy
from nasapp.engine.strategies.pareto_rank import crowding, front_ranks
from nasapp.store import Store

SPACE_REF = f"{__file__}:SPACE"
SPACE = nas.space({"a": nas.choice([0, 1, 2, 3]), "b": nas.choice([0, 1, 2, 3, 4])})  # 20 architectures


def accuracy(arch: dict) -> float:
    return 50.0 + 10 * arch["a"] + arch["b"]  # the optimum is a=3, b=4: 84


def write_table(path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "accuracy", "flops"])
        for arch in SPACE.enumerate():
            writer.writerow([json.dumps(arch), accuracy(arch), 1 + arch["a"] * 5 + arch["b"]])
    return path


def test_a_search_on_a_table_is_exact(tmp_path):
    table = load_table(write_table(tmp_path / "t.csv"), SPACE_REF, "arch", "accuracy")
    assert table.optimum == 84 and len(table.values) == 20
    run = run_search(table, STRATEGIES.validate({"name": "random"}), seed=0, budget=20)
    assert sorted(run.values) == sorted(accuracy(a) for a in SPACE.enumerate())  # every arch once
    figures = at_budget(table, [run], 20)
    assert figures.mean_regret == 0 and figures.hit_rate == 1


def test_the_confidence_interval_is_students_t():
    low, high = confidence_interval([1.0, 2.0, 3.0])
    assert math.isclose(high - 2.0, 4.302653 * 1.0 / math.sqrt(3), rel_tol=1e-5)  # t(0.975, 2) = 4.3027
    assert low == max(0.0, 2.0 - (high - 2.0))


@pytest.mark.slow
def test_nasapp_bench_prints_one_json_document(tmp_path):
    path = write_table(tmp_path / "t.csv")
    result = nasapp_cli("bench", "--table", str(path), "--space", SPACE_REF, "--metric-column", "accuracy",
                        "--strategies", "evolution,local,evo6=evolution", "--seeds", "4", "--budget", "12",
                        "--workers", "2", "--option", "evolution.population=4", "--option", "evo6.population=6",
                        "--json", "--csv", str(tmp_path / "trials.csv"),
                        check=True)
    document = json.loads(result.stdout)
    assert document["optimum"] == 84 and document["seeds"] == 4 and document["budget"] == 12
    assert list(document["strategies"]) == ["random", "evolution", "local", "evo6"]  # random always, first
    figures = document["strategies"]["evolution"]["budgets"]
    assert set(figures) == {"3", "6", "12"}
    for at in figures.values():
        assert at["ci95"][0] <= at["mean_regret"] <= at["ci95"][1] and 0 <= at["hit_rate"] <= 1
    assert document["strategies"]["evolution"]["options"]["population"] == 4
    assert document["strategies"]["evo6"]["options"] == {**document["strategies"]["evolution"]["options"],
                                                         "population": 6}
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert len(rows) == 4 * 4 * 12


@pytest.mark.slow
def test_a_multi_objective_bench_reports_hypervolumes(tmp_path):
    path = write_table(tmp_path / "t.csv")
    result = nasapp_cli("bench", "--table", str(path), "--space", SPACE_REF, "--metric-column", "accuracy",
                        "--objectives", "flops", "--strategies", "evolution", "--seeds", "3", "--budget", "20",
                        "--workers", "1", "--json", check=True)
    document = json.loads(result.stdout)
    assert document["strategies"]["evolution"]["options"]["objectives"] == ["flops"]
    volumes = document["strategies"]["random"]["hypervolume"]
    assert volumes["20"]["mean"] == pytest.approx(1.0)  # every architecture seen: the table's own front
    assert 0 < volumes["5"]["mean"] < 1


@pytest.mark.parametrize("args, message", [
    (["--metric-column", "nope"], "no column 'nope'"),
    (["--strategies", "bayes"], "unknown strategy 'bayes'"),
    (["--strategies", "b=bayes"], "unknown strategy 'bayes'"),
    (["--strategies", "=evolution"], "LABEL=NAME"),
    (["--strategies", "e=evolution,e=local"], "names two strategies"),
    (["--option", "evolution"], "STRATEGY.KEY=VALUE"),
    (["--seeds", "0"], "--seeds 0"),
    (["--at", "500"], "--at"),
])
def test_mistakes_are_one_line(tmp_path, args, message):
    path = write_table(tmp_path / "t.csv")
    result = nasapp_cli("bench", "--table", str(path), "--space", SPACE_REF, "--metric-column", "accuracy",
                        "--seeds", "2", "--budget", "10", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_row_that_is_not_an_architecture_names_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([["arch", "accuracy"], ['{"a": 0, "b": 0}', 1], ['{"a": 9, "b": 0}', 2]])
    result = nasapp_cli("bench", "--table", str(path), "--space", SPACE_REF, "--metric-column", "accuracy")
    assert result.returncode == 2 and "bad.csv:3" in result.stderr


@pytest.mark.slow
def test_the_tabular_trainer_runs_a_real_job(tmp_path):
    path = write_table(tmp_path / "t.csv")
    job = write_job(tmp_path, f"""
name = "tabular"
[space]
ref = "{SPACE_REF}"
[trainer]
prebuilt = "tabular"
options = {{ table = "{path}", space = "{SPACE_REF}", metric_column = "accuracy" }}
[strategy]
name = "local"
[reward]
metric = "accuracy"
[search]
max_trials = 8
parallel = 1
[latency]
device = "none"
""")
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id).run() == "finished"
    trials = store.trials(job_id)
    assert [t.status for t in trials] == ["succeeded"] * 8
    assert all(t.metrics["accuracy"] == accuracy(t.arch) and "flops" in t.metrics for t in trials)


def test_pareto_ranks_and_crowding():
    points = [(3, -3), (2, -2), (1, -1), (1, -4), (0, -0.5)]
    assert front_ranks(points) == [0, 0, 0, 1, 0]
    spread = crowding(points, front_ranks(points))
    assert math.isinf(spread[0]) or math.isinf(spread[4])
    assert hypervolume_2d([(1.0, 0.0), (0.0, 1.0)]) == 0
    assert hypervolume_2d([(0.5, 0.5), (1.0, 0.25)]) == pytest.approx(0.5 * 0.5 + 0.5 * 0.25)


def test_pareto_aware_evolution_keeps_cheap_and_accurate_parents():
    strategy = make_strategy({"name": "evolution", "population": 6, "sample_size": 6, "objectives": ["flops"]},
                             SPACE, seed=0)
    for number, arch in enumerate(strategy.ask(6)):
        value = accuracy(arch)
        strategy.tell(TrialOutcome(number, arch, "succeeded", score=value, reward=value,
                                   metrics={"flops": 1 + arch["a"] * 5 + arch["b"]}))
    winner = strategy.tournament_winner()
    points = [member[1] for member in strategy.population]
    assert front_ranks(points)[[m[0] for m in strategy.population].index(winner)] == 0
