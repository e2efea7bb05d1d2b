"""Every --json output is standard JSON, also for a store that holds NaN or infinities (an older nasapp wrote
them): they come out as null."""

from __future__ import annotations

import json

from helpers import nasapp_cli

from nasapp.engine.jobs.spec import parse_job
from nasapp.store import Store


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_show_ls_and_pareto_print_standard_json_for_non_finite_values(tmp_path):
    store = Store(tmp_path / "old.db")
    spec = parse_job({"name": "old", "space": {"prebuilt": "nb201"}, "data": {"kind": "digits"}})
    job_id = store.create_job("old", spec.model_dump(mode="json"), {}, 2, 0)
    for number, reward in enumerate((float("inf"), 0.5)):
        trial_id = store.add_trial(job_id, number, {"x": number}, f"fp{number}", number)
        store.finish_trial(trial_id, "succeeded", reward=reward,
                           metrics={"accuracy": reward, "latency_ms": float("nan") if number else 1.0})
    store.close()
    db = str(tmp_path / "old.db")
    shown = _strict(nasapp_cli("show", "1", "--json", "--db", db, check=True).stdout)
    assert shown["best"]["reward"] is None  # inf, printed as null
    _strict(nasapp_cli("ls", "--json", "--db", db, check=True).stdout)
    pareto = nasapp_cli("pareto", "1", "--json", "--db", db)
    if pareto.returncode == 0:
        _strict(pareto.stdout)
