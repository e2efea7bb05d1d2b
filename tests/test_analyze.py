"""`nasapp analyze JOB`: on an NAS-Bench-201 job replayed from a table whose decisive edges are known, the analysis
ranks those edges first; the sample is bounded and keeps the best; the chart records; the errors; --json."""

from __future__ import annotations

import csv
import io
import itertools
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, toy_job, write_job
from rich.console import Console

from nasapp.app.analyze_command import analyze_command
from nasapp.engine.analysis import MIN_TRIALS, analyze_job
from nasapp.engine.analysis.curves import learning_curves, parallel_rows
from nasapp.engine.analysis.report import table_of
from nasapp.engine.analysis.significance import holm
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.spaces import Space, nb201
from nasapp.store import Store

SHARED_TABLE = Path(__file__).resolve().parents[1].parent / "shared/benchmarks/nb201_cifar10.csv"
NEEDS_SHARED = pytest.mark.skipif(not SHARED_TABLE.is_file(),
                                  reason="the shared NAS-Bench-201 table is not beside this checkout")

# The synthetic table follows NAS-Bench-201's structure: nor_conv_3x3 on an edge helps, none and avg_pool hurt;
# the edge from the input to the output (3<-0) matters most, then the input's first edge (1<-0), the rest little.
EFFECT = {"none": -2.0, "skip_connect": 0.0, "nor_conv_1x1": 0.5, "nor_conv_3x3": 2.0, "avg_pool_3x3": -1.0}
WEIGHT = {"1<-0": 1.5, "2<-0": 0.2, "2<-1": 0.2, "3<-0": 3.0, "3<-1": 0.2, "3<-2": 0.2}
DECISIVE = ["3<-0", "1<-0"]
TRIALS = 150


def write_nb201_table(path: Path) -> Path:
    """Every cell of NAS-Bench-201 with an accuracy of the structure above plus seeded noise (sd 0.5)."""
    noise = np.random.default_rng(0).normal(0.0, 0.5, 5**6)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "accuracy"])
        for ops, jitter in zip(itertools.product(nb201.OPS, repeat=6), noise, strict=True):
            # the benchmark's edge order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
            cell = f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"
            value = 80 + sum(WEIGHT[edge] * EFFECT[op] for edge, op in zip(nb201.EDGE_KEYS, ops, strict=True))
            writer.writerow([cell, round(value + jitter, 4)])
    return path


def tabular_job(folder: Path, table: Path, metric: str, trials: int, seed: int = 0) -> Path:
    return write_job(folder, f"""
        name = "nb201-table"
        seed = {seed}
        [space]
        prebuilt = "nb201"
        [trainer]
        prebuilt = "tabular"
        options = {{ table = "{table}", space = "nb201", metric_column = "{metric}" }}
        [strategy]
        name = "random"
        [reward]
        metric = "{metric}"
        [search]
        max_trials = {trials}
        parallel = 1
        [latency]
        device = "none"
    """)


def run_job(store: Store, job_file: Path) -> int:
    job_id = create_job(store, load_job(job_file))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    return job_id


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """A real nb201 job of 150 random trials, replayed from the synthetic table by the tabular trainer."""
    folder = tmp_path_factory.mktemp("analyze")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NASAPP_HOME", str(folder / "home"))
        store = Store(folder / "nasapp.db")
        job_id = run_job(store, tabular_job(folder, write_nb201_table(folder / "nb201.csv"), "accuracy", TRIALS))
    return store, store.job(job_id)


def test_the_decisive_edges_of_a_replayed_nb201_job_rank_first(replayed):
    store, job = replayed
    analysis = analyze_job(store, job)
    ranked = [d.path for d in analysis.decisions]
    assert ranked[:2] == DECISIVE and sorted(ranked) == sorted(nb201.EDGE_KEYS)
    assert analysis.total == analysis.sampled == TRIALS and analysis.direction == "max"
    top = analysis.decisions[:2]
    assert all(d.significant and d.p_holm < 1e-4 and d.test == "kruskal" for d in top)
    assert sum(d.importance for d in top) > 0.8
    assert sum(d.importance for d in analysis.decisions) == pytest.approx(1.0)
    for decision in top:  # the reward per choice says why: conv3x3 best, none and avg_pool worst
        means = {c.value: c.mean for c in decision.choices}
        assert max(means, key=means.get) == "nor_conv_3x3"
        assert sorted(means, key=means.get)[:2] in (["none", "avg_pool_3x3"], ["avg_pool_3x3", "none"])
        assert sum(c.count for c in decision.choices) == TRIALS
        assert all(c.q1 <= c.median <= c.q3 and c.best >= c.q3 for c in decision.choices)
    assert analyze_job(store, job) == analysis  # seeded: the same figures on every run


def test_the_sample_is_bounded_deterministic_and_keeps_the_best(replayed):
    store, job = replayed
    analysis = analyze_job(store, job, sample=40)
    assert (analysis.sampled, analysis.total, analysis.best_kept) == (40, TRIALS, 4)
    table = table_of(store, job, sample=40)
    best = sorted((t.reward for t in store.trials(job.id, "succeeded")), reverse=True)[:4]
    assert sorted(table.rewards, reverse=True)[:4] == best
    assert table_of(store, job, sample=40).numbers == table.numbers
    assert analysis.decisions[0].path == "3<-0"
    with pytest.raises(NasappError, match=f"--sample 5: give at least {MIN_TRIALS}"):
        analyze_job(store, job, sample=5)


def test_chart_records_parallel_rows_and_learning_curves(replayed):
    store, job = replayed
    table = table_of(store, job)
    rows = parallel_rows(table, "max", limit=10)
    assert len(rows) == 10 and rows[0].reward == max(table.rewards)
    assert [r.reward for r in rows] == sorted((r.reward for r in rows), reverse=True)
    assert set(rows[0].values) == set(nb201.EDGE_KEYS)
    assert all(0.0 <= v <= 1.0 for r in rows for v in r.values.values())
    arch = store.trial_by_number(job.id, rows[0].trial).arch
    assert rows[0].values["3<-0"] == nb201.OPS.index(arch["3<-0"]) / 4
    curves = learning_curves(store, table, "accuracy", "max", limit=3)
    assert [c.trial for c in curves] == [r.trial for r in rows[:3]]
    assert all(c.values[-1] == pytest.approx(r.reward) for c, r in zip(curves, rows, strict=False))


def test_nasapp_analyze_prints_the_ranking_and_one_json_document(replayed):
    store, job = replayed
    console = Console(file=io.StringIO(), width=200)
    analyze_command(store, job, 2000, False, console)
    text = console.file.getvalue()
    assert f"its {TRIALS} succeeded trials" in text and "higher is better" in text
    ranking = [line.split() for line in text.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [row[1] for row in ranking] == DECISIVE and all(row[5] == "yes" for row in ranking)
    assert "3<-0: reward by choice value" in text and "nor_conv_3x3" in text

    result = nasapp_cli("analyze", str(job.id), "--db", str(store.path), "--json", "--sample", "60", check=True,
                        env=NO_TORCH)
    document = json.loads(result.stdout)
    assert (document["job"], document["sampled"], document["total"]) == (job.id, 60, TRIALS)
    first = document["decisions"][0]
    assert first["path"] == "3<-0" and first["significant"] is True and 0 < first["p_holm"] < 0.05
    assert {c["value"] for c in first["choices"]} == set(nb201.OPS)


def test_analyze_refuses_an_unknown_job_too_few_trials_and_a_reward_that_never_varies(tmp_path):
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(toy_job(tmp_path, max_trials=100)))
    space = Space.from_json(store.job(job_id).space)
    archs = [{"x": x, "op": op} for x in range(0, 30, 3) for op in "abc"]  # 30 distinct architectures
    add_trials(store, job_id, space, [(arch, 0.5) for arch in archs[:5]])
    with pytest.raises(NasappError, match=f"has 5 succeeded trial\\(s\\) with a reward; the analysis needs at least"
                                          f" {MIN_TRIALS}"):
        analyze_job(store, store.job(job_id))
    add_trials(store, job_id, space, [(arch, 0.5) for arch in archs[5:]], first=5)
    with pytest.raises(NasappError, match="all 30 succeeded trials have the same reward \\(0.5\\)"):
        analyze_job(store, store.job(job_id))

    result = nasapp_cli("analyze", "42", "--db", str(store.path), env=NO_TORCH)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: no job '42' in {store.path} (`nasapp ls` lists the jobs)"]


def add_trials(store: Store, job_id: int, space: Space, rows: list[tuple[dict, float]], first: int = 0) -> None:
    """Succeeded trials written as a runner writes them (for figures a test chooses: no training)."""
    for number, (arch, reward) in enumerate(rows, start=first):
        trial_id = store.add_trial(job_id, number, arch, space.fingerprint(arch), ask_seq=number)
        store.add_metrics(trial_id, 1, {"accuracy": reward})
        store.finish_trial(trial_id, "succeeded", reward=reward, metrics={"accuracy": reward}, tell_seq=number)


def test_conditional_and_continuous_decisions_are_analysed(tmp_path):
    """A choice that only one head option uses, an integer and a float: each one a decision; a trial that does
    not use the conditional one is left out of its test and its per-choice figures."""
    (tmp_path / "cond.py").write_text(textwrap.dedent("""
        import nasapp as nas
        space = nas.space({"head": nas.choice({"pool": {}, "mlp": {"width": nas.choice([64, 128, 256])}}),
                           "depth": nas.integer(1, 40), "lr": nas.floating(1e-4, 1e-1, log=True)})
    """))
    job = write_job(tmp_path, f"""
        name = "cond"
        [space]
        ref = "{tmp_path / 'cond.py'}:space"
        [trainer]
        ref = "{TOY}:train"
        [reward]
        metric = "loss"
        direction = "min"
    """)
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    space = Space.from_json(store.job(job_id).space)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(120)]
    add_trials(store, job_id, space, [(a, 1.0 + a["depth"] / 10 + rng.normal(0, 0.1)) for a in archs])
    analysis = analyze_job(store, store.job(job_id))
    by_path = {d.path: d for d in analysis.decisions}
    assert set(by_path) == {"head", "head{mlp}.width", "depth", "lr"}
    assert analysis.decisions[0].path == "depth" and by_path["depth"].test == "spearman"
    assert by_path["depth"].statistic > 0.9 and by_path["depth"].significant  # loss grows with depth
    uses_mlp = sum("mlp" in a["head"] for a in archs)
    assert by_path["head{mlp}.width"].used_by == uses_mlp < 120
    assert sum(c.count for c in by_path["head{mlp}.width"].choices) == uses_mlp
    assert len(by_path["lr"].choices) == 4 and by_path["lr"].choices[0].value.startswith("[0.0001, ")
    depth_bins = by_path["depth"].choices
    assert [c.value for c in depth_bins][0].startswith("1..") and depth_bins[0].best < depth_bins[-1].best


def test_holm_correction_is_step_down_and_monotone():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.9, 0.8]) == [1.0, 1.0]


@NEEDS_SHARED
@pytest.mark.slow
def test_on_the_real_nb201_table_the_edges_where_conv3x3_matters_rank_first(tmp_path):
    """300 random trials replayed from NAS-Bench-201's CIFAR-10 table. On the whole table (15,625 cells) fANOVA
    ranks 3<-0 first (0.67 of the variance), then 3<-2 (0.12), 1<-0 (0.10), 3<-1, 2<-0, and 2<-1 last
    (0.002); nor_conv_3x3 has the best mean accuracy on every edge."""
    store = Store(tmp_path / "nasapp.db")
    job_id = run_job(store, tabular_job(tmp_path, SHARED_TABLE, "test_accuracy", 300))
    analysis = analyze_job(store, store.job(job_id))
    assert analysis.total == analysis.sampled == 300
    ranked = [d.path for d in analysis.decisions]
    assert "3<-0" in ranked[:2] and set(ranked[:2]) <= {"3<-0", "1<-0", "3<-2"} and ranked[-1] == "2<-1"
    for decision in analysis.decisions[:3]:
        means = {c.value: c.mean for c in decision.choices}
        assert decision.significant and max(means, key=means.get) == "nor_conv_3x3"
