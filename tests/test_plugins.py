"""The plug-in seams: registries validate their tables by name, a part registered from outside runs in a real
search, the early-stopping seam prunes trials, and one validation path refuses bad jobs before they exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, toy_job, write_job
from pydantic import Field

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import job_spec, load_job
from nasapp.engine.jobs.validation import create_job, validate_job
from nasapp.engine.plugins import REGISTRIES, describe
from nasapp.engine.strategies import STRATEGIES, Strategy, StrategyEntry, StrategyOptions, TrialOutcome
from nasapp.store import Store

DOCS = Path(__file__).resolve().parents[1] / "docs"


# ---- a toy strategy, registered from this test: one module + one registration -------------------------

class CountUpOptions(StrategyOptions):
    name: Literal["count-up"] = "count-up"
    start: int = Field(0, ge=0)


class CountUp(Strategy):
    """Proposes x = start, start + 1, ... in order and records every outcome it is told."""

    told: list[TrialOutcome] = []

    def __init__(self, space: Any, seed: int, options: CountUpOptions) -> None:
        super().__init__(space, seed, options)
        self.next_x = options.start

    def propose(self) -> Any:
        arch = {"x": self.next_x % 31, "op": "a"}
        self.next_x += 1
        return arch

    def tell(self, outcome: TrialOutcome) -> None:
        CountUp.told.append(outcome)


@pytest.fixture
def count_up():
    STRATEGIES.register(StrategyEntry("count-up", "x = start, start + 1, ...", CountUpOptions, CountUp))
    CountUp.told = []
    try:
        yield
    finally:
        STRATEGIES.unregister("count-up")


@pytest.mark.slow
def test_a_strategy_registered_from_outside_runs_a_real_search(tmp_path, count_up):
    job = toy_job(tmp_path, strategy="count-up", max_trials=5, parallel=1, extra="")
    text = job.read_text().replace('name = "count-up"', 'name = "count-up"\nstart = 3')
    job.write_text(text)
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    assert [t.arch["x"] for t in store.trials(job_id)] == [3, 4, 5, 6, 7]
    assert [(o.number, o.state) for o in CountUp.told] == [(n, "succeeded") for n in range(5)]
    assert all(o.score == o.reward and o.metrics["accuracy"] == o.reward for o in CountUp.told)
    assert job_spec(store.job(job_id)).strategy == CountUpOptions(start=3)


def test_a_table_is_validated_by_the_options_of_the_entry_it_names(tmp_path):
    bad = {
        'name = "random"\npopulation = 4': "strategy.population: unknown key",
        'name = "evolution"\npopulation = 1': "strategy.population: Input should be greater than or equal to 2",
        'name = "bayes"': "strategy.name: unknown strategy 'bayes'; choose one of: cmaes, copies, evolution, given,"
                          " gp, local, nsga2, predictor, prescreen, random, rl, tpe",
    }
    for table, message in bad.items():
        job = write_job(tmp_path, f'name = "j"\n[space]\nref = "{TOY}:space"\n[trainer]\nref = "{TOY}:train"\n'
                                  f'[strategy]\n{table}\n')
        with pytest.raises(NasappError, match=message):
            load_job(job)
    job = write_job(tmp_path, f'name = "j"\n[space]\nref = "{TOY}:space"\n[trainer]\nref = "{TOY}:train"\n'
                              '[latency]\ndevice = "gpu"\n')
    with pytest.raises(NasappError, match="latency.device: unknown latency device 'gpu'; choose one of: cpu-ort"):
        load_job(job)


def test_every_registered_part_is_listed_by_the_cli_and_in_the_docs():
    listed = json.loads(nasapp_cli("plugins", "--json", check=True).stdout)
    assert {(row["key"], row["name"]) for row in listed} == \
        {(registry.key, entry.name) for registry in REGISTRIES.values() for entry in registry}
    assert [row["name"] for row in json.loads(nasapp_cli("strategies", "--json", check=True).stdout)] == \
        STRATEGIES.names()
    jobs_doc = (DOCS / "jobs.md").read_text()
    for kind in REGISTRIES:
        for row in describe(kind):
            assert f"`{row['name']}`" in jobs_doc and row["description"] in jobs_doc, row


# ---- the early-stopping seam ------------------------------------------------------------------------

@pytest.mark.slow
def test_the_median_rule_prunes_trials_in_a_real_search(tmp_path):
    job = toy_job(tmp_path, trainer="long_curve", max_trials=12, parallel=1,
                  extra='[early_stopping]\nrule = "median"\nmin_trials = 2\n')
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    trials = store.trials(job_id)
    pruned = [t for t in trials if t.status == "pruned"]
    assert len(trials) == 12 and pruned and any(t.status == "succeeded" for t in trials)
    for trial in pruned:
        step = trial.metrics["pruned_at_step"]
        assert trial.reason == "early_stopping" and f"stopped at step {step:g}" in trial.message
        assert trial.reward is None
        reports = store.metrics(trial.id)
        assert reports and reports[0]["step"] <= step
    assert store.counts(job_id)["pruned"] == len(pruned)  # pruned trials count towards max_trials


# ---- one validation path ------------------------------------------------------------------------------

def _job_with_trainer(tmp_path: Path, trainer: str) -> Path:
    return write_job(tmp_path, f'name = "j"\n[space]\nref = "{TOY}:space"\n[trainer]\n{trainer}\n')


def test_trainers_that_cannot_run_are_refused_before_the_job_exists(tmp_path):
    store = Store(tmp_path / "nasapp.db")
    cases = {
        f'ref = "{TOY}:no_such_function"': "has no attribute 'no_such_function'",
        f'ref = "{TOY}:space"': "is a Space, not a function",
        'command = ["no-such-program-nasapp", "x"]': "program 'no-such-program-nasapp' not found",
    }
    for trainer, message in cases.items():
        with pytest.raises(NasappError, match=message):
            validate_job(load_job(_job_with_trainer(tmp_path, trainer)))
        run = nasapp_cli("run", str(_job_with_trainer(tmp_path, trainer)), "--db", str(store.path))
        assert run.returncode == 2 and message.split("'")[0] in run.stderr and "Traceback" not in run.stderr
    assert store.jobs() == []


def test_a_reward_that_needs_latency_is_refused_without_a_latency_device(tmp_path):
    job = write_job(tmp_path, f'name = "j"\n[space]\nref = "{TOY}:space"\n[trainer]\nref = "{TOY}:train"\n'
                              '[reward]\nformula = "accuracy / latency_ms"\n')
    with pytest.raises(NasappError, match="measured latency, but no latency device is set"):
        validate_job(load_job(job))
