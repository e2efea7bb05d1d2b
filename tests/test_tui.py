"""The dashboard (app/tui.py, app/screens/): Pilot tests of every screen and action against real stores made
by real runs, and snapshot tests of the main screens (pytest-textual-snapshot; `--snapshot-update` rewrites
them after a deliberate change).

Searches run as `nasapp` processes given NASAPP_NO_TORCH in their own environment (a runner the dashboard
itself launches inherits it from a test-scoped monkeypatch.setenv), and every process a test starts is ended
by its PID. A live search has a budget it never reaches in a test (it is stopped explicitly), and every
wait has a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import shutil
import sqlite3
import subprocess
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, start_nasapp, stop_process, toy_job
from helpers import wait_for as wait_until
from textual.widgets import Input

pytest.importorskip("textual_plotext")

from nasapp.app.chart_points import CurvePoints, ParetoPoints  # noqa: E402
from nasapp.app.screens.analysis import AnalysisScreen, chart_lines  # noqa: E402
from nasapp.app.screens.common import space_summary  # noqa: E402
from nasapp.app.screens.compare import CompareScreen  # noqa: E402
from nasapp.app.screens.help import HelpScreen  # noqa: E402
from nasapp.app.screens.job import ChartsPanel, JobScreen, TrialsPanel  # noqa: E402
from nasapp.app.screens.jobs import JobsScreen  # noqa: E402
from nasapp.app.screens.new_job import NewJobScreen, check_job, to_toml  # noqa: E402
from nasapp.app.screens.proxy import ProxyScreen  # noqa: E402
from nasapp.app.screens.space import SpaceScreen  # noqa: E402
from nasapp.app.screens.trial import TrialScreen  # noqa: E402
from nasapp.app.trial_filter import Fields, FilterError, parse_filter  # noqa: E402
from nasapp.app.trials_model import TrialsModel, tone  # noqa: E402
from nasapp.app.trials_window import TrialsWindow  # noqa: E402
from nasapp.app.tui import NasApp  # noqa: E402
from nasapp.app.widgets import (  # noqa: E402
    ChoiceScreen,
    ConfirmScreen,
    LearningCurve,
    ParetoChart,
    PromptScreen,
    SearchCurve,
    SeriesChart,
    VirtualTable,
    running_best,
    thin_points,
)
from nasapp.engine.analysis.decisions import decisions_of  # noqa: E402
from nasapp.engine.errors import NasappError  # noqa: E402
from nasapp.engine.jobs.demo import demo_job  # noqa: E402
from nasapp.engine.jobs.spec import parse_job  # noqa: E402
from nasapp.engine.rewards.pareto import pareto_front  # noqa: E402
from nasapp.store import Store  # noqa: E402
from nasapp.store.queries import ordered_trial_ids  # noqa: E402

ENDLESS = 100_000  # the budget of a live search: never reached in a test, which stops the search itself

# A trainer with everything the screens show: intermediate reports, a measured-looking latency (so the
# Pareto front has points), log lines, failures for some architectures and an ONNX file (export).
TRAINER = textwrap.dedent("""
    from pathlib import Path

    def _save_onnx(path):
        import onnx
        from onnx import TensorProto, helper
        graph = helper.make_graph(
            [helper.make_node("Identity", ["input"], ["output"])], "toy",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))

    def train(arch, ctx):
        x = arch["x"]
        if x % 7 == 3:
            print(f"about to fail on {arch}")
            raise ValueError(f"x = {x} is unlucky")
        accuracy = 1.0 - abs(x - 21) / 30 + {"a": 0.0, "b": 0.05, "c": 0.02}[arch["op"]]
        for step in range(1, 5):
            ctx.report(step, accuracy=accuracy * step / 4, loss=1.0 / step)
        print(f"trained {arch}")
        _save_onnx(Path(ctx.workdir) / "model.onnx")
        latency = 1.0 + x / 3 + {"a": 0.5, "b": 2.0, "c": 1.0}[arch["op"]]
        return {"accuracy": accuracy, "latency_ms": latency, "params": float(x)}
""")


def rich_job(folder: Path, max_trials: int = 14, parallel: int = 2) -> Path:
    (folder / "tui_trainer.py").write_text(TRAINER)
    path = folder / "rich.toml"
    path.write_text(textwrap.dedent(f"""
        name = "rich"
        seed = 3
        [space]
        ref = "{TOY}:space"
        [trainer]
        ref = "tui_trainer.py:train"
        [strategy]
        name = "random"
        [search]
        max_trials = {max_trials}
        parallel = {parallel}
        devices = "cpu"
        trial_timeout_s = 60
        max_failure_rate = 0.6
    """))
    return path


# ---- processes: each given NO_TORCH in its own environment, always ended by PID ------------------------

def runner_started(db: Path) -> bool:
    """The runner created the store, migrated it and recorded its PID (polling never races the migration)."""
    if not db.exists():
        return False
    try:
        with closing(sqlite3.connect(db)) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM jobs WHERE runner_pid IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:  # no jobs table yet (or the migration holds the lock)
        return False


def run_job(job_file: Path, db: Path, timeout: float = 240.0) -> None:
    """`nasapp run JOB --db DB` to the end (ended by PID if it overruns)."""
    log = db.parent / f"{job_file.stem}.log"
    process = start_nasapp("run", str(job_file), "--db", str(db), log=log, env=NO_TORCH)
    try:
        code = process.wait(timeout=timeout)
    finally:
        stop_process(process)
    assert code == 0, log.read_text()


@pytest.fixture(scope="session")
def real_store(tmp_path_factory) -> Path:
    """A store made by two real runs: job 1 "rich" (failures, reports, latency, ONNX files), job 2 "toy"."""
    folder = tmp_path_factory.mktemp("tui-store")
    db = folder / "nasapp.db"
    run_job(rich_job(folder), db)
    run_job(toy_job(folder, max_trials=5, parallel=1), db)
    return db


@pytest.fixture
def store_copy(real_store, tmp_path) -> Path:
    """A private copy of the real store (with its runs folder) for tests that write commands or files."""
    target = tmp_path / "copy"
    shutil.copytree(real_store.parent, target)
    return target / real_store.name


def run_async(test):
    """Run an async test function in its own event loop (no pytest-asyncio needed)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return wrapper


def make_app(db: Path, tmp_path: Path, **kwargs) -> NasApp:
    return NasApp(db, refresh_s=0.2, export_root=tmp_path / "exports", **kwargs)


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.1)


async def open_job_screen(app: NasApp, pilot, job_id: int = 1) -> None:
    """Open a job's screen and wait until it shows its trials and its footer (a busy machine mounts slowly)."""
    app.open_job(job_id)

    def ready() -> bool:
        screen = app.screen
        tables = screen.query("#trials") if isinstance(screen, JobScreen) else []
        return bool(tables) and bool(tables[0].rows) and bool(screen.query("FooterKey"))

    await wait_for(pilot, ready, what=f"the screen of job {job_id}")


def table_cells(table: VirtualTable, column: str) -> list[str]:
    index = [c.key for c in table.columns].index(column)
    return [row.cells[index] for row in table.rows]


# ---- the jobs screen -----------------------------------------------------------------------------------

@run_async
async def test_jobs_screen_lists_every_job_with_its_figures(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(VirtualTable)
        assert [row.key for row in table.rows] == [2, 1]  # newest first
        store = Store(real_store)
        rich = {row.key: row.cells for row in table.rows}[1]
        counts = store.counts(1)
        done = counts["succeeded"] + counts["failed"]
        assert rich[1] == "rich" and rich[2] == "finished" and rich[3] == f"{done}/14"
        assert rich[5] == str(counts["failed"]) and counts["failed"] > 0
        assert rich[6] == f"{store.best_trials(1)[0].reward:.4f}"
        assert rich[8] == "-"  # no ETA for a finished job
        await pilot.press("down")
        assert "job 1 rich: finished" in str(screen.query_one("#detail").render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job_id == 1)


@run_async
async def test_an_empty_store_says_how_to_start(tmp_path):
    app = make_app(tmp_path / "empty.db", tmp_path)
    async with app.run_test(size=(80, 24)):
        assert app.screen.has_class("-empty")
        assert "No jobs" in str(app.screen.query_one("#empty").render())


# ---- the job screen ------------------------------------------------------------------------------------

@run_async
async def test_job_screen_shows_spec_curve_pareto_trials_and_events(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    store = Store(real_store)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_job_screen(app, pilot)
        screen = app.screen
        assert isinstance(screen, JobScreen)
        summary = str(screen.query_one("#summary").render())
        failed = store.counts(1)["failed"]
        for text in ("rich", "toy.py:space (93 architectures)", "strategy random", "budget 14 trials",
                     "parallel 2", "reward max accuracy", "14/14 trials", f"{failed} failed"):
            assert text in summary, text
        succeeded = store.trials(1, "succeeded")
        curve = screen.query_one(SearchCurve)
        assert curve.xs == sorted(float(t.number) for t in succeeded)
        pareto = screen.query_one(ParetoChart)
        assert pareto.has_data and len(pareto.points[0]) == len(succeeded)
        assert 1 <= len(pareto.front[0]) < len(succeeded)
        assert pareto.display and screen.has_class("-wide")  # room for both charts side by side
        table = screen.query_one("#trials", VirtualTable)
        assert table.row_count == 14
        assert [c.label for c in table.columns] == ["#", "status", "reward", "accuracy", "latency_ms",
                                                      "params", "time", "device", "note"]
        assert any("ValueError" in cell for cell in table_cells(table, "note"))

        await pilot.press("l")  # the event log
        log = screen.query_one("#events")
        assert any("job finished" in line for line in log.lines)
        assert any("failed (error)" in line for line in log.lines)
        await pilot.press("l")
        assert screen.query_one("#switcher").current == "trials"
        await pilot.click("#bar")  # the mouse switches too
        assert screen.query_one("#switcher").current == "events"


@run_async
async def test_trials_table_sorts_by_any_column_and_filters_by_status(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    store = Store(real_store)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_job_screen(app, pilot)
        panel = app.screen.query_one(TrialsPanel)
        table = panel.table
        assert table_cells(table, "number") == [str(n) for n in range(14)]
        await pilot.press("o", "o")  # number -> status -> reward, best first (the job maximises it)
        assert panel.sort == "reward" and panel.reverse
        rewards = [float(r) for r in table_cells(table, "reward") if r != "-"]
        assert rewards == sorted(rewards, reverse=True) and table_cells(table, "reward")[-1] == "-"  # empty last
        await pilot.press("O")
        rewards = [float(r) for r in table_cells(table, "reward") if r != "-"]
        assert rewards == sorted(rewards)
        for column in [c.key for c in table.columns]:  # every column sorts
            panel.sort_by(column)
            assert table.row_count == 14 and table.header_marks == {column: "▲"}
        # a click on a header sorts by that column; a second click reverses
        latency_x = 1 + sum(w + 1 for w in table._widths[:4])
        await pilot.click("#trials", offset=(latency_x + 1, 0))
        assert panel.sort == "m:latency_ms" and not panel.reverse  # best (fastest) first
        await pilot.click("#trials", offset=(latency_x + 1, 0))
        assert panel.reverse
        latencies = [float(v) for v in table_cells(table, "m:latency_ms") if v != "-"]
        assert latencies == sorted(latencies, reverse=True)

        failed = store.trials(1, "failed")
        while panel.filter != "failed":
            await pilot.press("f")
        assert sorted(table_cells(table, "number"), key=int) == [str(t.number) for t in failed]
        assert "failed (f)" in str(panel.query_one("#bar").render())
        panel.filter = "all"
        assert table.row_count == 14


@run_async
async def test_keyboard_and_mouse_open_a_trial(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_job_screen(app, pilot)
        table = app.screen.query_one("#trials", VirtualTable)
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialScreen) and app.screen.trial is not None)
        assert app.screen.trial.number == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, JobScreen))
        await pilot.click("#trials", offset=(3, 2))  # row 1: highlight ...
        assert table.cursor == 1 and isinstance(app.screen, JobScreen)
        await pilot.click("#trials", offset=(3, 2))  # ... a second click opens it
        await wait_for(pilot, lambda: isinstance(app.screen, TrialScreen) and app.screen.trial is not None)
        assert app.screen.trial.number == 1


@run_async
async def test_zoom_and_chart_switch_make_room_on_a_small_terminal(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_job_screen(app, pilot)
        screen = app.screen
        curve, pareto, charts = screen.query_one(SearchCurve), screen.query_one(ParetoChart), \
            screen.query_one(ChartsPanel)
        assert screen.has_class("-narrow") and curve.region.height > 0 and pareto.region.width == 0
        await pilot.press("v")
        await pilot.pause()
        assert charts.show_pareto and pareto.region.width > 0 and curve.region.width == 0
        table = screen.query_one("#trials")
        before = table.region.height
        await pilot.press("z")  # table only
        await pilot.pause()
        assert screen.zoom == "table" and charts.region.height == 0 and table.region.height > before
        await pilot.press("z")  # charts only
        await pilot.pause()
        assert screen.zoom == "charts" and table.region.height == 0 and charts.region.height > 10
        await pilot.press("z")
        await pilot.pause()
        assert screen.zoom == "split" and table.region.height == before
        await pilot.press("v")
        await pilot.pause()
        assert not charts.show_pareto and curve.region.width > 0 and pareto.region.width == 0


@run_async
async def test_export_the_selected_trial_and_the_best_k_to_onnx(store_copy, tmp_path):
    app = make_app(store_copy, tmp_path)
    store = Store(store_copy)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_job_screen(app, pilot)
        screen = app.screen
        table = screen.query_one("#trials", VirtualTable)
        first_ok = store.trials(1, "succeeded")[0]
        table.move_to_key(first_ok.id)
        await pilot.press("e")
        out = tmp_path / "exports" / "job-1"
        await wait_for(pilot, lambda: (out / f"trial-{first_ok.number}" / "report.json").is_file(),
                       what="the selected trial's export")
        assert (out / f"trial-{first_ok.number}" / "model.onnx").is_file()

        failed = store.trials(1, "failed")[0]
        table.move_to_key(failed.id)
        await pilot.press("e")
        await pilot.pause()
        assert any("only succeeded" in n.message for n in app._notifications)

        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("backspace", "2", "enter")
        best = [t.number for t in store.best_trials(1, 2)]
        await wait_for(pilot, lambda: all((out / f"trial-{n}" / "report.json").is_file() for n in best),
                       what="the best 2 exported")
        await wait_for(pilot, lambda: any("exported to" in n.message for n in app._notifications))


# ---- the proxy screen ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy_store(tmp_path_factory) -> Path:
    """A store with a proxy select run (tool run 1), a proxy search run on it (2) and a variance run."""
    folder = tmp_path_factory.mktemp("proxy-store")
    db = folder / "nasapp.db"
    job = toy_job(folder, trainer="cycles", max_trials=6)
    for args in (("select", str(job), "--begin", "8", "--end", "6", "--drop", "1", "--full-steps", "300"),
                 ("search", str(job), "--models", "1", "--steps", "40,120", "--checks", "4"),
                 ("variance", str(job), "--copies", "3")):
        nasapp_cli("proxy", *args, "--db", str(db), check=True, env=NO_TORCH)
    return db


@run_async
async def test_the_proxy_screen_shows_each_tool_run_with_its_chart(proxy_store, tmp_path):
    app = make_app(proxy_store, tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ProxyScreen), what="the proxy screen")
        screen = app.screen
        table = screen.query_one("#runs", VirtualTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="three runs")
        detail = lambda: str(screen.query_one("#detail").render())  # noqa: E731
        chart = screen.query_one(SeriesChart)
        seen = {}
        for _ in range(3):
            kind = table.cursor_key[0]
            await wait_for(pilot, lambda kind=kind: f"proxy {kind} run" in detail(), what=f"the {kind} view")
            seen[kind] = (detail(), dict(chart.series))
            await pilot.press("down")
        assert set(seen) == {"variance", "select", "search"}
        assert "coefficient of variation" in seen["variance"][0] and len(seen["variance"][1]) == 3
        assert "6 selected" in seen["select"][0] and len(seen["select"][1]["selected models"][0]) == 6
        text, series = seen["search"]
        assert "steps=40 data=1 scale=1: met" in text and "best: " in text
        assert set(series) == {"steps=40 data=1 scale=1", "steps=120 data=1 scale=1"}
        assert all(len(xs) >= 1 for xs, _ in series.values())


# ---- the trial screen ----------------------------------------------------------------------------------

@run_async
async def test_trial_screen_shows_tree_metrics_curve_and_log(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    store = Store(real_store)
    trial = store.trials(1, "succeeded")[0]
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_trial(1, trial.id)
        await pilot.pause()
        screen = app.screen
        tree = screen.query_one("#arch")
        labels = [str(node.label) for node in tree.root.children]
        assert f"x: {trial.arch['x']}" in labels and f"op: \"{trial.arch['op']}\"" in labels
        metrics = str(screen.query_one("#metrics").render())
        for name in ("reward", "accuracy", "latency_ms", "params"):
            assert name in metrics
        curve = screen.query_one(LearningCurve)
        assert list(curve.series) == ["accuracy", "loss"] and curve.series["accuracy"][0] == [1, 2, 3, 4]
        log = screen.query_one("#log")
        assert any("trained" in line for line in log.lines)
        assert not screen.has_class("-failed")

        number = trial.number
        await pilot.press("right_square_bracket")
        assert screen.trial.number == number + 1
        await pilot.press("left_square_bracket")
        assert screen.trial.number == number
        await pilot.press("m")
        assert screen.maximized is tree
        await pilot.press("m")
        assert screen.maximized is None


@run_async
async def test_trial_screen_shows_the_failure_reason_and_the_log_tail(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    failed = Store(real_store).trials(1, "failed")[0]
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_trial(1, failed.id)
        await pilot.pause()
        screen = app.screen
        assert screen.has_class("-failed")
        failure = str(screen.query_one("#failure").render())
        assert "failed (error)" in failure and "is unlucky" in failure
        log_text = "\n".join(screen.query_one("#log").lines)
        assert "about to fail" in log_text and "Traceback" in log_text
        await pilot.press("e")
        assert any("only succeeded" in n.message for n in app._notifications)


# ---- help and the command palette ---------------------------------------------------------------------

@run_async
async def test_help_lists_the_keys_of_the_current_screen(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.query_one("#help-text").source
        for words in ("## Jobs", "Pause", "Resume", "Stop", "New job", "command palette"):
            assert words in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        await open_job_screen(app, pilot)
        await pilot.press("question_mark")
        text = app.screen.query_one("#help-text").source
        for words in ("## Job", "Export best K", "Filter", "Zoom", "Pareto"):
            assert words in text


@run_async
async def test_command_palette_finds_screens_jobs_and_actions(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Jobs screen", "New job", "Help", "Open job 1 rich", "Open job 2 toy", "Pause", "Stop"):
            assert title in titles, title
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open job 2")
        await wait_for(pilot, lambda: app.screen.query("CommandList") and
                       app.screen.query_one("CommandList").option_count > 0, what="palette hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobScreen), what="job screen from the palette")
        assert app.screen.job_id == 2
        job_titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export best K" in job_titles and "Stage 2" in job_titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"trials/log")
        await wait_for(pilot, lambda: app.screen.query("CommandList") and
                       app.screen.query_one("CommandList").option_count > 0, what="palette hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobScreen)
                       and app.screen.query_one("#switcher").current == "events", what="palette action")


# ---- the new job screen --------------------------------------------------------------------------------

def test_new_job_validation_gives_the_cli_s_messages(tmp_path):
    job = toy_job(tmp_path, max_trials=3)
    for overrides, cli in (({"max_trials": "0"}, ["--max-trials", "0"]),
                           ({"parallel": "0"}, ["--parallel", "0"])):
        with pytest.raises(Exception) as raised:
            check_job(job, **overrides)
        result = nasapp_cli("run", str(job), *cli, "--db", str(tmp_path / "x.db"))
        assert result.returncode != 0
        assert result.stderr.strip() == f"error: {raised.value}"
    with pytest.raises(Exception, match="unknown strategy 'nope'"):
        check_job(job, strategy="nope")
    checked = check_job(job, name="renamed", max_trials="7", parallel="auto", strategy="evolution")
    assert (checked.spec.name, checked.spec.search.max_trials, checked.spec.strategy.name) == \
        ("renamed", 7, "evolution")
    assert checked.space_size == "93 architectures"
    # picking another strategy than the file's drops the options only the file's strategy knows
    (tmp_path / "evolution").mkdir()
    evolution = toy_job(tmp_path / "evolution", max_trials=3, strategy="evolution")
    assert check_job(evolution, strategy="random").spec.strategy.name == "random"
    assert check_job(evolution).spec.strategy.population == 4
    # what the screen writes for the runner reads back as the same job
    again = parse_job(tomllib.loads(to_toml(checked.spec.model_dump(mode="json", exclude_none=True))))
    assert again == checked.spec


@pytest.mark.parametrize("bad", [
    pytest.param({"trainer": "no_such_function"}, id="a trainer.ref to a missing function"),
    pytest.param({"extra": """
        [reward]
        formula = "accuracy * (latency_ms / 20) ** -0.07"
    """}, id="a reward that needs latency, with no latency device"),
])
def test_new_job_validation_is_the_one_nasapp_run_uses(tmp_path, bad):
    """A file that parses but cannot run (the engine's validate_job says why) is invalid on the screen too,
    with the message `nasapp run` prints."""
    job = toy_job(tmp_path, max_trials=3, **bad)
    parse_job(tomllib.loads(job.read_text()), base=tmp_path)  # the file itself is well-formed
    with pytest.raises(NasappError) as raised:
        check_job(job)
    result = nasapp_cli("run", str(job), "--db", str(tmp_path / "x.db"))
    assert result.returncode != 0
    assert result.stderr.strip() == f"error: {raised.value}"


class RecordingApp(NasApp):
    """The dashboard, remembering every process it launches (so that a test can end them by PID)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[subprocess.Popen] = []

    def watch_launch(self, process: subprocess.Popen, log: Path, what: str) -> None:
        self.started.append(process)
        super().watch_launch(process, log, what)


@run_async
async def test_stage2_retrains_the_best_k_in_the_background_and_the_header_follows_it(store_copy, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setenv("NASAPP_NO_TORCH", "1")  # the stage-2 process the dashboard launches inherits it
    app = RecordingApp(store_copy, refresh_s=0.2, export_root=tmp_path / "exports")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            app.open_job(2)  # the toy search
            await wait_for(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.model is not None)
            screen = app.screen
            assert app.screen.active_bindings["t"].enabled
            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="the K prompt")
            await pilot.press("backspace", "backspace", "3", "enter")
            await wait_for(pilot, lambda: app.started, what="stage 2 launched")
            assert app.started[0].wait(timeout=120) == 0
            header = lambda: str(screen.query_one("#summary").render())  # noqa: E731
            await wait_for(pilot, lambda: "3/3 retrained" in header(), timeout=30, what="the stage-2 line")
            assert "stage 2: job 3" in header() and "Kendall tau 1.00" in header() and "finished" in header()
    finally:
        for launched in app.started:
            stop_process(launched)


@run_async
async def test_new_job_screen_validates_and_launches_a_detached_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("NASAPP_NO_TORCH", "1")  # for this test only: the runner the dashboard launches inherits it
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    toy_job(jobs, max_trials=3, sleep=0.3)
    db = tmp_path / "nasapp.db"
    app = RecordingApp(db, refresh_s=0.2, export_root=tmp_path / "exports", new_job_dirs=[jobs])
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n")
            screen = app.screen
            assert isinstance(screen, NewJobScreen)
            errors = screen.query_one("#errors")
            assert [s.label for s in screen.sources] == ["built-in demo", "jobs/job.toml"]
            await wait_for(pilot, lambda: screen.checked is not None, timeout=60, what="the demo validated")
            assert screen.checked.spec.name == "demo-digits-mnasnet" and not screen.validating
            await pilot.press("down", "enter")  # the toy job file
            assert screen.query_one("#name").value == "toy"
            await wait_for(pilot, lambda: screen.checked is not None and screen.checked.spec.name == "toy",
                           what="the toy job validated")
            screen.query_one("#max_trials").value = "0"
            await wait_for(pilot, lambda: screen.checked is None and "search.max_trials" in str(errors.render()),
                           what="max_trials = 0 refused")
            await pilot.press("ctrl+r")
            assert isinstance(app.screen, NewJobScreen)  # an invalid job is not launched
            assert any("not launched" in n.message for n in app._notifications)
            screen.query_one("#max_trials").value = "3"
            screen.query_one("#name").value = "from-the-tui"
            await pilot.press("ctrl+r")  # launches once the form as it is now is validated
            await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="launched")
            process, job_file, log = screen.launched
            assert job_file.is_file() and app.started == [process]
            await wait_for(pilot, lambda: app.screen.query_one(VirtualTable).row_count == 1, timeout=60,
                           what="the launched job on the jobs screen")
        # the dashboard is closed: the runner goes on by itself and finishes the job
        assert process.wait(timeout=120) == 0, log.read_text()
        store = Store(db)
        (job,) = store.jobs()
        assert (job.name, job.status, job.max_trials) == ("from-the-tui", "finished", 3)
    finally:
        for launched in app.started:
            stop_process(launched)


# ---- live: a real search running beside the dashboard --------------------------------------------------

@pytest.fixture
def live_job(tmp_path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """`nasapp run` of a toy job in its own process, with a budget no test reaches: tests stop it. The test
    ends the runners the dashboard starts (resume) by PID; this fixture ends this one."""
    db, log = tmp_path / "live.db", tmp_path / "live.log"
    job = toy_job(tmp_path, max_trials=ENDLESS, parallel=1, sleep=0.3)
    process = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    try:
        wait_until(lambda: runner_started(db), "the runner", timeout=60, proc=process, log=log)
        yield db, process
    finally:
        stop_process(process)


@run_async
async def test_live_refresh_and_pause_resume_stop_through_the_commands_table(live_job, tmp_path, monkeypatch):
    monkeypatch.setenv("NASAPP_NO_TORCH", "1")  # for this test only: the runner the dashboard resumes inherits it
    db, process = live_job
    store = Store(db)
    app = RecordingApp(db, refresh_s=0.2, export_root=tmp_path / "exports")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            line = lambda: screen.lines[1]  # noqa: E731
            await wait_for(pilot, lambda: 1 in screen.lines and line().done >= 1, timeout=60,
                           what="a first finished trial")
            first = line().done
            await wait_for(pilot, lambda: line().done > first, timeout=60, what="the trial count growing")
            assert line().status == "running" and line().eta_s is not None and line().total == ENDLESS

            await pilot.press("p")
            await wait_for(pilot, lambda: line().status == "paused", timeout=60, what="paused")
            commands = store.db.execute("SELECT command FROM commands").fetchall()
            assert [c[0] for c in commands] == ["pause"]
            await pilot.press("r")
            await wait_for(pilot, lambda: line().status == "running", timeout=60, what="running again")

            await open_job_screen(app, pilot)  # the job screen follows the run live too
            job_screen = app.screen
            table = job_screen.query_one("#trials", VirtualTable)
            rows = table.row_count
            await wait_for(pilot, lambda: table.row_count > rows, timeout=60, what="new trials in the table")
            await wait_for(pilot, lambda: store.trials(1, "running"), timeout=60, what="a running trial")
            app.open_trial(1, store.trials(1, "running")[-1].id)  # its screen follows it until it ends
            await pilot.pause()
            trial_screen = app.screen
            await wait_for(pilot, lambda: trial_screen.trial.status == "succeeded"
                           and len(trial_screen.query_one(LearningCurve).series.get("accuracy", ([], []))[0]) == 3
                           and any("trained" in line for line in trial_screen.query_one("#log").lines),
                           timeout=60, what="the running trial to finish on its screen")
            assert "succeeded" in str(trial_screen.query_one("#title").render())
            await pilot.press("escape")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: job_screen.job.status == "stopped", timeout=60, what="stopped")
            assert process.wait(timeout=60) == 130
            assert "stopped" in str(job_screen.query_one("#summary").render())

            await pilot.press("r")  # a stopped job resumes in a new detached runner
            await wait_for(pilot, lambda: job_screen.job.status == "running"
                           and job_screen.job.runner_pid not in (None, process.pid), timeout=60, what="resumed")
            assert [p.pid for p in app.started] == [job_screen.job.runner_pid]
            await pilot.press("s", "y")
            await wait_for(pilot, lambda: job_screen.job.status == "stopped", timeout=60, what="stopped again")
        assert app.started[0].wait(timeout=60) == 130
        assert store.job(1).status == "stopped"
        assert [c[0] for c in store.db.execute("SELECT command FROM commands ORDER BY id").fetchall()] == \
            ["pause", "resume", "stop", "stop"]
    finally:
        for launched in app.started:
            stop_process(launched)
        store.close()


@run_async
async def test_commands_are_refused_for_jobs_without_a_runner(real_store, store_copy, tmp_path):
    app = make_app(store_copy, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await pilot.press("s")  # a finished job: said at once, no "Stop job 2?" question first
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")
        messages = [n.message for n in app._notifications]
        assert "job 2 is not running (finished)" in messages
        assert "job 2 already finished its 5 trials" in messages
    assert Store(store_copy).db.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0


# ---- pieces --------------------------------------------------------------------------------------------

def test_thinning_keeps_one_point_per_cell_and_the_extremes():
    xs = [float(i) for i in range(10_000)]
    ys = [((i * 7919) % 1000) / 1000 for i in range(10_000)]
    tx, ty = thin_points(xs, ys, 80, 20)
    assert len(tx) <= 80 * 20 + 4
    assert min(ty) == min(ys) and max(ty) == max(ys) and tx[0] == 0 and tx[-1] == 9_999
    assert thin_points(xs[:50], ys[:50], 80, 20, keep=200) == (xs[:50], ys[:50])
    assert running_best([0, 1, 2, 3], [0.5, 0.4, 0.7, 0.6]) == ([0, 2, 2, 3], [0.5, 0.5, 0.7, 0.7])
    assert running_best([0, 1], [0.5, 0.4], "min") == ([0, 1, 1], [0.5, 0.5, 0.4])


def test_the_trials_model_reads_only_what_changed(real_store):
    store = Store(real_store)
    model = TrialsModel(store.job(1))
    assert model.update(store) and model.total == 14 and not model.open
    assert not model.update(store)  # nothing new: nothing changed
    assert model.metric_keys == ["accuracy", "latency_ms", "params"]
    succeeded = store.trials(1, "succeeded")
    assert model.counts["succeeded"] == len(succeeded) and model.counts["failed"] == store.counts(1)["failed"]
    assert model.best_max == max(t.reward for t in succeeded)
    assert model.curve.scatter() == ([float(t.number) for t in succeeded], [t.reward for t in succeeded])
    assert model.pareto.count == len(succeeded)
    assert model.column_keys() == ["number", "status", "reward", "m:accuracy", "m:latency_ms", "m:params",
                                   "time", "device", "note"]
    first = succeeded[0]
    cells = model.cells(first)
    assert cells[:3] == (str(first.number), "succeeded", f"{first.reward:.4f}") and tone(first) == "good"
    window = TrialsWindow(store, model)
    window.show("all", "reward", True)
    assert window.ids[0] == max(succeeded, key=lambda t: t.reward).id
    assert window.trial(window.ids[-1]).reward is None  # empty values last, either way
    window.show("failed", "number", False)
    assert len(window) and all(row.tone == "bad" and "ValueError" in row.cells[-1] for row in window[:])


def _synthetic_job(path: Path, count: int, seed: int = 3) -> tuple[Store, int]:
    """A job of `count` finished trials with random metrics (some missing, some failed), and two
    running, written straight into a store: no training, no runner."""
    rng = random.Random(seed)
    store = Store(path)
    raw = demo_job()
    raw["latency"] = {"device": "cpu-ort"}
    spec = parse_job(raw, source="test")
    job_id = store.create_job("synthetic", spec.model_dump(mode="json"), {}, count + 10, 0)
    for number in range(count + 2):
        trial_id = store.add_trial(job_id, number, {"n": number}, f"fp{number}", number)
        store.start_trial(trial_id, f"cpu{number % 3}")
        if number >= count:
            continue
        if rng.random() < 0.1:
            store.finish_trial(trial_id, "failed", reason="error", message="x" * rng.randrange(1, 30))
            continue
        metrics = {"accuracy": round(rng.random(), 2), "latency_ms": round(rng.uniform(1, 40), 1)}
        if rng.random() < 0.1:
            del metrics["latency_ms"]
        store.finish_trial(trial_id, "succeeded", reward=metrics["accuracy"], metrics=metrics)
    return store, job_id


def _full_sort(trials: list, column: str, descending: bool) -> list[int]:
    """What the table showed when it sorted every trial in Python: empty values last, ties by number."""
    def value(trial):
        if column == "reward":
            found = trial.reward
        elif column.startswith("m:"):
            found = trial.metrics.get(column[2:])
        elif column == "note":
            found = trial.reason or trial.message or None
        else:
            found = getattr(trial, column)
        return found

    trials = sorted(trials, key=lambda t: t.number)
    present = [t for t in trials if value(t) is not None]
    present.sort(key=value, reverse=descending)
    return [t.id for t in present] + [t.id for t in trials if value(t) is None]


def test_the_windowed_table_gives_the_rows_a_full_sort_gives(tmp_path):
    store, job_id = _synthetic_job(tmp_path / "nasapp.db", 300)
    model = TrialsModel(store.job(job_id))
    model.update(store)
    everything = store.trials(job_id)
    window = TrialsWindow(store, model)
    for status in ("all", "succeeded", "failed", "running"):
        chosen = [t for t in everything if status == "all" or t.status == status]
        for column in ("number", "reward", "m:accuracy", "m:latency_ms", "status", "device", "note"):
            for descending in (False, True):
                window.show(status, column, descending)
                expected = ([t.id for t in sorted(chosen, key=lambda t: t.number, reverse=descending)]
                            if column == "number" else _full_sort(chosen, column, descending))
                assert window.ids == expected, (status, column, descending)
                assert [row.key for row in window[:]] == expected  # read a page at a time
    window.show("all", "m:latency_ms", False)
    scrolled = window[130:150]  # a window in the middle: the same rows, formatted as the model does
    by_id = {t.id: t for t in everything}
    assert [row.cells for row in scrolled] == [model.cells(by_id[i]) for i in window.ids[130:150]]


def test_the_window_follows_new_trials_and_the_cursor_stays_on_its_trial(tmp_path):
    store, job_id = _synthetic_job(tmp_path / "nasapp.db", 50)
    model = TrialsModel(store.job(job_id))
    model.update(store)
    window = TrialsWindow(store, model)
    window.show("all", "number", True)
    kept = window.ids[5]
    trial_id = store.add_trial(job_id, 52, {"n": 52}, "fp52", 52)
    assert model.update(store) and model.new_ids == [trial_id]
    window.show("all", "number", True)  # the default view follows new trials without a query
    assert window.ids[0] == trial_id and len(window) == 53 and window.ids.index(kept) == 6
    running = min(model.open)
    store.finish_trial(running, "succeeded", reward=1.5, metrics={"accuracy": 1.5})
    assert model.update(store) and running not in model.open
    window.show("succeeded", "reward", True)  # another view: queried
    assert window.ids[0] == running and window[0].cells[2] == "1.5000"


def test_the_charts_take_a_bounded_number_of_points_the_best_and_the_front_exact():
    rng = random.Random(5)
    numbers = list(range(20_000))
    rewards = [rng.random() for _ in numbers]
    for direction in ("max", "min"):
        whole, one_by_one = CurvePoints(direction, buckets=100), CurvePoints(direction, buckets=100)
        whole.extend(numbers, rewards)
        for i in rng.sample(numbers, len(numbers)):  # finishing out of order, as parallel trials do
            one_by_one.add(numbers[i], rewards[i])
        exact = running_best([float(n) for n in numbers], rewards, direction)
        assert whole.best_line() == exact and one_by_one.best_line() == exact
        for curve in (whole, one_by_one):
            xs, ys = curve.scatter()
            assert len(xs) <= 200 and min(ys) == min(rewards) and max(ys) == max(rewards)
    xs = [rng.uniform(1, 40) for _ in numbers]
    ys = [round(0.9 - 10 / x + rng.gauss(0, 0.05), 2) for x in xs]  # ties on y, as rounded accuracies have
    exact = pareto_front([{"metrics": {"x": x, "y": y}} for x, y in zip(xs, ys, strict=True)], x="x", y="y")
    exact_xy = ([p["metrics"]["x"] for p in exact], [p["metrics"]["y"] for p in exact])
    at_once, live = ParetoPoints(limit=500), ParetoPoints(limit=500)
    at_once.extend(xs[:15_000], ys[:15_000])
    at_once.extend(xs[15_000:], ys[15_000:])
    for x, y in zip(xs, ys, strict=True):
        live.add(x, y)
    for points in (at_once, live):
        assert points.front_xy() == exact_xy and points.count == len(xs)
        px, py = points.points()
        assert len(points.sample) == 500 and 500 <= len(px) <= 500 + len(exact)
        assert set(zip(*exact_xy, strict=True)) <= set(zip(px, py, strict=True))  # every front point is plotted


# ---- analysis, filter, marks and compare, columns, the space ------------------------------------------

@pytest.fixture(scope="session")
def analysis_store(tmp_path_factory) -> Path:
    """A store with one toy job of 30 trials: enough for the analysis (it needs 20 succeeded)."""
    folder = tmp_path_factory.mktemp("tui-analysis")
    db = folder / "nasapp.db"
    run_job(toy_job(folder, max_trials=30, parallel=2), db)
    return db


def analysed(screen) -> bool:
    return isinstance(screen, AnalysisScreen) and not screen.has_class("-loading")


@run_async
async def test_the_analysis_screen_ranks_the_decisions_on_a_sample_it_names(analysis_store, tmp_path):
    app = make_app(analysis_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_job_screen(app, pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: analysed(app.screen), timeout=60, what="the analysis")
        screen = app.screen
        assert not screen.has_class("-failed"), str(screen.query_one("#message").render())
        succeeded = len(Store(analysis_store).trials(1, "succeeded"))
        assert f"all {succeeded} succeeded trials" in str(screen.query_one("#heading").render())
        decisions = screen.query_one("#decisions", VirtualTable)
        assert sorted(table_cells(decisions, "decision")) == ["op", "x"]
        assert table_cells(decisions, "decision")[0] == "x"  # the toy reward is mostly a function of x
        choices = screen.query_one("#choices", VirtualTable)
        assert choices.columns[0].label == "x" and choices.row_count >= 2
        await pilot.press("down")  # the reward per choice follows the highlighted decision
        assert choices.columns[0].label == "op"
        assert sorted(table_cells(choices, "value")) == ["a", "b", "c"]
        chart = screen.query_one("#parallel")
        assert chart.has_data and chart.paths == ["x", "op"] and len(chart.rows) <= 50


@run_async
async def test_the_analysis_of_too_small_a_job_says_why_in_the_screen(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_analysis(2)  # 5 trials
        await wait_for(pilot, lambda: analysed(app.screen), timeout=60, what="the analysis")
        assert app.screen.has_class("-failed")
        assert "needs at least 20" in str(app.screen.query_one("#message").render())


def test_the_parallel_chart_draws_a_bounded_number_of_lines_the_best_first():
    rows = list(range(500))
    lines = chart_lines(rows, limit=50)  # type: ignore[arg-type]
    assert len(lines) == 50 and lines[:10] == list(range(10)) and len(set(lines)) == 50


def test_filters_read_metrics_status_and_decisions_and_refuse_bad_text():
    fields = Fields(["accuracy", "latency_ms"], decisions_of(toy_space()))
    assert parse_filter("accuracy > 0.9 and op = b", fields) == (("m:accuracy", ">", 0.9), ("a:$.\"op\"", "=", "b"))
    assert parse_filter("status = failed, # < 5", fields) == (("status", "=", "failed"), ("number", "<", 5))
    assert parse_filter("x>=20", fields) == (("a:$.\"x\"", ">=", 20),)
    for bad in ("bogus = 1", "accuracy > high", "status = done", "nonsense", "x = 1 or x = 2"):
        with pytest.raises(FilterError):
            parse_filter(bad, fields)


def toy_space():
    import importlib.util

    spec = importlib.util.spec_from_file_location("toy_for_tui", TOY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.space


def test_the_store_filters_in_sql_and_a_nan_metric_matches_nothing(tmp_path):
    store, job_id = _synthetic_job(tmp_path / "f.db", 300)
    trials = store.trials(job_id)
    store.conn.execute("UPDATE trials SET metrics = '{\"accuracy\": NaN}' WHERE number = 3")
    store.conn.commit()
    ids = ordered_trial_ids(store, job_id, None, "reward", True, (("m:accuracy", ">", 0.5),))
    expected = {t.id for t in trials if t.number != 3 and isinstance(t.metrics.get("accuracy"), float)
                and t.metrics["accuracy"] > 0.5}
    assert set(ids) == expected and ids
    failed = ordered_trial_ids(store, job_id, None, "number", False, (("status", "=", "failed"),))
    assert failed == [t.id for t in trials if t.status == "failed"]


@run_async
async def test_the_filter_prompt_filters_the_table_and_bad_text_only_says_why(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_job_screen(app, pilot)
        screen = app.screen
        table = screen.query_one("#trials", VirtualTable)
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="the filter prompt")
        app.screen.query_one(Input).value = "accuracy > 0.9 and op = b"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.trials.where, what="the filter")
        trials = {t.number: t for t in Store(real_store).trials(1)}
        shown = [int(n) for n in table_cells(table, "number")]
        assert shown == sorted(n for n, t in trials.items()
                               if (t.metrics.get("accuracy") or 0) > 0.9 and t.arch["op"] == "b")
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="the filter prompt")
        app.screen.query_one(Input).value = "bogus = 3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the job screen")
        assert [int(n) for n in table_cells(table, "number")] == shown  # the filter stays as it was
        assert any("no field 'bogus'" in str(n.message) for n in app._notifications)


@run_async
async def test_marked_trials_compare_side_by_side_with_their_curves_on_one_chart(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_job_screen(app, pilot)
        await pilot.press("m")  # nothing marked: says how
        assert any("mark trials with space" in str(n.message) for n in app._notifications)
        await pilot.press("space", "space")  # trials 0 and 1
        table = app.screen.query_one("#trials", VirtualTable)
        assert len(table.marked) == 2
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare screen")
        fields = app.screen.query_one("#fields", VirtualTable)
        assert [c.label for c in fields.columns] == ["field", "#0", "#1"]
        rows = {row.key: row for row in fields.rows}
        assert rows["arch x"].tone == "active" and rows["status"].cells[1:] != ()
        curves = app.screen.query_one(SeriesChart)
        assert list(curves.series) == ["#0", "#1"] and all(len(xs) == 4 for xs, _ in curves.series.values())


@run_async
async def test_the_metric_columns_can_be_picked(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_job_screen(app, pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), what="the column picker")
        await pilot.press("space")  # unticks the first one: accuracy
        await pilot.press("enter")
        screen = app.screen
        await wait_for(pilot, lambda: isinstance(screen, JobScreen), what="back on the job screen")
        labels = [c.label for c in screen.query_one("#trials", VirtualTable).columns]
        assert "accuracy" not in labels and "latency_ms" in labels


@run_async
async def test_the_space_screen_lists_the_dimensions_with_the_size_wording(real_store, tmp_path):
    app = make_app(real_store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_job_screen(app, pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="the space screen")
        text = str(app.screen.query_one("#space").render())
        assert "size: 93 architectures" in text and "x  integer  [0, 30]" in text and "op  choice" in text


def test_a_space_with_floats_is_sized_in_discrete_combinations_and_continuous_dimensions(real_store):
    import nasapp as nas

    job = Store(real_store).job(1)
    floats = nas.space({"op": nas.choice(["a", "b"]), "lr": nas.floating(0.001, 0.1, log=True)})
    job = dataclasses.replace(job, space=floats.to_json())
    assert "(2 discrete combinations × 1 continuous dimension)" in space_summary(job)


# ---- snapshots -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def snapshot_store(real_store, tmp_path_factory) -> Path:
    """A copy of the real store with its clocks, devices and logs made fixed, so pictures are stable."""
    folder = tmp_path_factory.mktemp("tui-snapshot")
    shutil.copy(real_store, folder / "nasapp.db")
    conn = sqlite3.connect(folder / "nasapp.db")
    base = 1_700_000_000.0
    conn.execute("UPDATE jobs SET created_at = ?, updated_at = ?, started_at = ?, finished_at = ? + 42 * id",
                 (base, base, base, base))
    conn.execute("UPDATE trials SET device = 'cpu0', created_at = ? + number, started_at = ? + number,"
                 " finished_at = ? + number + 1.5", (base, base, base))
    conn.commit()
    conn.close()
    store = Store(folder / "nasapp.db")
    for trial in store.trials(1):
        log = store.trial_dir(1, trial.number) / "trial.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"=== trial {trial.number} ===\ntrained {trial.arch}\n")
    store.close()
    return folder / "nasapp.db"


def snapshot_app(db: Path, tmp_path: Path, **kwargs) -> NasApp:
    app = NasApp(db, refresh_s=3600, export_root=tmp_path, **kwargs)
    app.sub_title = "nasapp.db"
    return app


def test_snapshot_jobs_screen(snap_compare, snapshot_store, tmp_path):
    assert snap_compare(snapshot_app(snapshot_store, tmp_path), terminal_size=(80, 24))


def test_snapshot_job_screen_80x24(snap_compare, snapshot_store, tmp_path):
    assert snap_compare(snapshot_app(snapshot_store, tmp_path), press=["down", "enter"],
                        terminal_size=(80, 24))


def test_snapshot_job_screen_wide(snap_compare, snapshot_store, tmp_path):
    assert snap_compare(snapshot_app(snapshot_store, tmp_path), press=["down", "enter"],
                        terminal_size=(160, 48))


def test_snapshot_trial_screen(snap_compare, snapshot_store, tmp_path):
    assert snap_compare(snapshot_app(snapshot_store, tmp_path), press=["down", "enter", "down", "enter"],
                        terminal_size=(80, 24))


def test_snapshot_new_job_screen(snap_compare, snapshot_store, tmp_path):
    jobs = tmp_path / "examples"
    jobs.mkdir()
    (jobs / "job.toml").write_text(toy_job(tmp_path, max_trials=3).read_text().replace(str(TOY), "toy.py"))
    shutil.copy(TOY, jobs / "toy.py")

    async def open_and_validate(pilot) -> None:
        await pilot.press("n")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.checked is not None and not screen.validating, timeout=60,
                       what="the demo job validated")

    assert snap_compare(snapshot_app(snapshot_store, tmp_path, new_job_dirs=[jobs]), run_before=open_and_validate,
                        terminal_size=(80, 24))


def test_snapshot_analysis_screen_80x24(snap_compare, analysis_store, tmp_path):
    async def analyse(pilot) -> None:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobScreen), what="the job screen")
        await pilot.press("a")
        await wait_for(pilot, lambda: analysed(pilot.app.screen), timeout=60, what="the analysis")

    assert snap_compare(snapshot_app(analysis_store, tmp_path), run_before=analyse, terminal_size=(80, 24))
