"""The Python API for notebooks (docs/api.md): nasapp.run, nasapp.attach, JobHandle and its SVG charts.

Searches use the torch-free toy trainers: in this process through ``env=NO_TORCH`` (the trial processes get it),
in the background likewise (the runner process and its trials)."""

from __future__ import annotations

import json
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, stop_process, wait_for

import nasapp
from nasapp.engine.results import svg_charts
from nasapp.engine.rewards.pareto import pareto_front
from nasapp.store import Store

SVG = "{http://www.w3.org/2000/svg}"


def toy(trainer: str = "train", max_trials: int = 4, **options: object) -> dict:
    return {"name": f"api-{trainer}", "seed": 1, "space": {"ref": f"{TOY}:space"},
            "trainer": {"ref": f"{TOY}:{trainer}", "options": options},
            "strategy": {"name": "random"},
            "search": {"max_trials": max_trials, "parallel": 2, "devices": "cpu", "trial_timeout_s": 30}}


def series_points(chart: svg_charts.SvgChart) -> dict[str, int]:
    root = ET.fromstring(chart.svg)
    return {g.get("data-series"): len(g.findall(f"{SVG}circle")) for g in root.iter(f"{SVG}g")
            if g.get("data-series")}


def test_run_in_this_process_agrees_with_show_json(tmp_path):
    db = tmp_path / "api.db"
    handle = nasapp.run(toy(max_trials=4), db=db, env=NO_TORCH, progress=False)
    assert handle.status() == "finished" and handle.name == "api-train"
    shown = json.loads(nasapp_cli("show", str(handle.id), "--json", "--top", "3", "--db", str(db), check=True).stdout)
    summary = handle.summary(best_k=3)
    assert summary["counts"] == shown["counts"] and summary["best"]["trial"] == shown["best"]["trial"]
    trials = handle.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.status == "succeeded" for t in trials)
    assert all(isinstance(t.metrics["accuracy"], float) and t.duration_s is not None and t.dir.is_dir()
               for t in trials)
    assert [(t.number, t.reward) for t in handle.best(3)] == [(t["trial"], t["reward"]) for t in shown["top"]]
    front = handle.pareto(x="params", y="accuracy")  # params: lower is better
    expected = pareto_front([{"metrics": t.metrics} for t in trials], x="params", y="accuracy", x_dir="min")
    assert [t.metrics for t in front] == [p["metrics"] for p in expected]
    assert handle.trials(status="failed") == []
    with pytest.raises(nasapp.NasappError, match="reported latency_ms"):
        handle.pareto()  # no latency device: the CLI's message

    curve = handle.plot_curve()
    assert series_points(curve) == {"trials": 4} and "<title>" in curve._repr_svg_()
    assert series_points(handle.plot_pareto("params", "accuracy")) == {"trials": 4 - len(front), "front": len(front)}
    learning = handle.plot_learning_curves(trials=[0, 1])
    assert len(ET.fromstring(learning.svg).findall(f"{SVG}polyline")) == 2  # three reports each
    assert learning.save(tmp_path / "lc.svg").read_text() == learning.svg


def test_a_background_run_returns_at_once_and_attach_waits_for_it(tmp_path):
    db = tmp_path / "api.db"
    handle = nasapp.run(toy(max_trials=3, sleep=0.3), db=db, env=NO_TORCH, wait=False)
    try:
        assert handle.status() in ("created", "running")  # it did not wait for the search
        assert handle.pid == handle.process.pid and handle.log is not None
        attached = nasapp.attach("api-train", db=db)  # by name
        assert attached.id == handle.id
        assert attached.wait(progress=False, timeout=120) == "finished"
        assert len(attached.trials(status="succeeded")) == 3
        handle.process.wait(timeout=30)
        assert handle.process.returncode == 0, handle.log.read_text()
    finally:
        stop_process(handle.process)


def test_stop_ends_a_background_run_and_wait_shows_progress(tmp_path, capsys):
    db = tmp_path / "api.db"
    gate = tmp_path / "gate"  # never created: every trial waits on it until stopped
    handle = nasapp.run(toy("gated", max_trials=6, gate=str(gate), free=0), db=db, env=NO_TORCH, wait=False)
    try:
        wait_for(lambda: handle.status() == "running" and handle.progress().running > 0, "running trials",
                 proc=handle.process, log=handle.log)
        with pytest.raises(TimeoutError, match="still running"):
            handle.wait(timeout=0.2, poll_s=0.05)
        assert re.search(r"trials 0/6  running \d  failed 0  best -", capsys.readouterr().out)
        assert handle.stop() == "stopped"
        assert handle.wait(progress=False, timeout=30) == "stopped"
        assert all(t.status == "cancelled" for t in handle.trials())
    finally:
        stop_process(handle.process)


def test_a_bad_job_is_one_nasapp_error_and_no_job(tmp_path):
    with pytest.raises(nasapp.NasappError, match="search.max_trials"):
        nasapp.run({**toy(), "search": {"max_trials": "many"}}, db=tmp_path / "api.db")
    assert not (tmp_path / "api.db").exists()  # refused before the store was made
    with pytest.raises(nasapp.NasappError, match="no store at"):
        nasapp.attach(1, db=tmp_path / "api.db")
    Store(tmp_path / "api.db").close()
    with pytest.raises(nasapp.NasappError, match="no job 'nope'"):
        nasapp.attach("nope", db=tmp_path / "api.db")


def test_frames_with_pandas(tmp_path):
    pandas = pytest.importorskip("pandas")
    handle = nasapp.run(toy(max_trials=3), db=tmp_path / "api.db", env=NO_TORCH, progress=False)
    frame = handle.trials(as_frame=True)
    assert isinstance(frame, pandas.DataFrame) and list(frame["number"]) == [0, 1, 2]
    assert {"reward", "accuracy", "params", "arch"} <= set(frame.columns)
    assert len(handle.best(2, as_frame=True)) == 2 and len(handle.trials_frame()) == 3


def test_frames_without_pandas_say_how_to_get_it(tmp_path, monkeypatch):
    from nasapp.engine.results.trial_records import TrialRecord, to_frame

    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(nasapp.NasappError, match="pip install pandas"):
        to_frame([TrialRecord(number=0, status="succeeded", reward=1.0)])


def test_the_search_curve_keeps_every_improvement_and_at_most_2000_points():
    rng = random.Random(0)
    rewards = [(n, rng.random() + n * 1e-5) for n in range(100_000)]
    chart = svg_charts.search_curve(rewards, "max")
    assert series_points(chart) == {"trials": svg_charts.MAX_POINTS}
    line = ET.fromstring(chart.svg).find(f"{SVG}polyline").get("points").split()
    best, improvements = -1.0, 0
    for _, value in rewards:
        if value > best:
            best, improvements = value, improvements + 1
    assert len(line) == 2 * improvements  # a step up per improvement, and the line holds to the last trial


def test_the_pareto_scatter_keeps_the_whole_front_and_escapes_text():
    rng = random.Random(1)
    points = [(rng.random() * 10, rng.random()) for _ in range(50_000)]
    front = [(p["metrics"]["x"], p["metrics"]["y"]) for p in
             pareto_front([{"metrics": {"x": x, "y": y}} for x, y in points], x="x", y="y")]
    chart = svg_charts.pareto_scatter(points, front, "latency <ms> & co", "accuracy", title='a "job" <1>')
    counts = series_points(chart)
    assert counts["front"] == len(front) and counts["front"] + counts["trials"] == svg_charts.MAX_POINTS
    root = ET.fromstring(chart.svg)  # parses: the labels were escaped
    assert root.find(f"{SVG}title").text == 'a "job" <1>'
    assert any(t.text == "latency <ms> & co (lower is better)" for t in root.iter(f"{SVG}text"))
    assert len(svg_charts.nice_ticks(0.0, 1.0)) >= 3


def test_the_docs_example_runs(tmp_path, monkeypatch):
    """Every python block of docs/api.md, in order, in a fresh folder."""
    text = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASAPP_NO_TORCH", "1")  # for this test only: its trial processes need no torch
    started = time.monotonic()
    namespace: dict = {"__name__": "__api_example__"}
    try:
        for block in blocks:
            exec(compile(block, "docs/api.md", "exec"), namespace)
    finally:
        if namespace.get("started") is not None:
            stop_process(namespace["started"].process)
    assert time.monotonic() - started < 60
    for name in ("curve.svg", "pareto.svg", "learning_curves.svg"):
        ET.parse(tmp_path / name)
    assert namespace["job_2"].status() == "finished"
