"""What a user can do wrong on the command line, and what a user's strings can do to the output.

Every mistake gets one line on stderr (`error: ...`), exit 2 and no traceback, and creates nothing it should
not (no job row, no store, no folder). Job names, messages and architectures print as themselves: never as Rich
markup or emoji codes, and never with raw control characters (ESC) that a terminal would obey. A job that ends
with no succeeded trial exits non-zero and says why; a triple Ctrl-C never leaves a job marked running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store


def one_line_error(result, *needles: str) -> str:
    """The command failed as a user's mistake: exit 2, one `error:` line naming `needles`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def toy_spec(name: str = "toy", **search) -> dict:
    return {"name": name, "seed": 1, "space": {"ref": f"{TOY}:space"}, "trainer": {"ref": f"{TOY}:train"},
            "search": {"max_trials": 2, "parallel": 1, "devices": "cpu", **search}}


def store_with_jobs(db: Path, *names: str) -> Store:
    """A store holding created (never run) toy jobs named `names`, ids 1, 2, ..."""
    store = Store(db)
    for name in names:
        create_job(store, parse_job(toy_spec(name)))
    return store


# ---- 7: markup and control characters ---------------------------------------------------------------------

MARKUP_NAME = "[/bold] oops :smile: [red]x"


@pytest.mark.slow  # a real (toy) search
def test_a_name_holding_markup_runs_and_lists_as_plain_text(tmp_path):
    """Before: `run` crashed on the name after the job row existed, then `ls` and `resume` crashed for the store."""
    db = str(tmp_path / "s.db")
    job = toy_job(tmp_path, max_trials=2, parallel=1)
    job.write_text(job.read_text().replace('name = "toy"', f"name = {json.dumps(MARKUP_NAME)}"))
    ran = nasapp_cli("run", str(job), "--db", db, env=NO_TORCH)
    assert ran.returncode == 0, ran.stderr
    assert MARKUP_NAME in ran.stdout.splitlines()[0]
    listed = nasapp_cli("ls", "--db", db)
    assert listed.returncode == 0 and MARKUP_NAME in listed.stdout, listed.stderr
    shown = nasapp_cli("show", MARKUP_NAME, "--db", db)  # found by its name, printed as it is
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    one_line_error(nasapp_cli("resume", "1", "--db", db), "already finished")


def test_stored_control_characters_never_reach_the_terminal(tmp_path):
    """A name or message with ESC (stored by an older nasapp, or a trainer's message) prints escaped."""
    db = tmp_path / "s.db"
    store = store_with_jobs(db, "plain")
    store.update_job(1, name="evil\x1b[2J\x1b]0;pwned\x07", message="boom \x1b[31mred\x9b")
    store.close()
    for args in (["ls"], ["show", "1"]):
        result = nasapp_cli(*args, "--db", str(db))
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x9b" not in result.stdout
        assert ("evil\\x1b[2J" if args == ["ls"] else "boom \\x1b[31mred\\x9b") in result.stdout


@pytest.mark.parametrize("name", ["", "   ", "a\x1b[31mb", "two\nlines", "tab\there", "x" * 101, "bidi\u202eevil"])
def test_a_name_must_be_1_to_100_printable_characters(name):
    with pytest.raises(NasappError) as caught:
        parse_job(toy_spec(name))
    message = str(caught.value)
    assert "\n" not in message and "name: must be 1 to 100 printable characters" in message
    assert "\x1b" not in message


@pytest.mark.parametrize("name", ["digits-mnasnet", "[/bold] oops", "ünïcødé 名前 🙂", "x" * 100, "12345"])
def test_printable_names_are_accepted(name):
    assert parse_job(toy_spec(name)).name == name


def test_the_dashboard_shows_markup_in_names_and_messages_as_text(tmp_path):
    pytest.importorskip("textual_plotext")
    from nasapp.app.screens.job import JobScreen
    from nasapp.app.tui import NasApp

    db = tmp_path / "s.db"
    store = store_with_jobs(db, MARKUP_NAME)
    store.update_job(1, message="[b]bold?[/b] \x1b[31m")
    store.close()

    async def scenario() -> None:
        app = NasApp(db, refresh_s=0.2, export_root=tmp_path / "exports")
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("down")
            await pilot.pause()
            detail = str(app.screen.query_one("#detail").render())
            assert MARKUP_NAME in detail and "[b]bold?[/b]" in detail and "\x1b" not in detail
            app.open_job(1)
            await pilot.pause(0.3)
            assert isinstance(app.screen, JobScreen) and MARKUP_NAME in app.screen.title
            summary = str(app.screen.query_one("JobSummary").render())
            assert MARKUP_NAME in summary and "[b]bold?[/b]" in summary

    asyncio.run(scenario())


# ---- 12: one line, exit 2, nothing created ----------------------------------------------------------------

def test_job_ids_beyond_sqlite_integers_and_huge_or_negative_top(tmp_path):
    db = tmp_path / "s.db"
    store_with_jobs(db, "toy").close()
    one_line_error(nasapp_cli("show", str(2**64), "--db", str(db)), "no job")
    one_line_error(nasapp_cli("show", "toy", "--top", "-1", "--db", str(db)), "--top -1")
    shown = nasapp_cli("show", "1", "--top", str(10**20), "--json", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == 1


def test_a_job_named_with_digits_is_found_by_its_name(tmp_path):
    """An id wins when a job has it; otherwise digits are a name (before: `show 12345` said "no job")."""
    db = tmp_path / "s.db"
    store_with_jobs(db, "first", "12345", "1").close()
    by_name = json.loads(nasapp_cli("show", "12345", "--json", "--db", str(db)).stdout)
    assert (by_name["id"], by_name["name"]) == (2, "12345")
    by_id = json.loads(nasapp_cli("show", "1", "--json", "--db", str(db)).stdout)
    assert (by_id["id"], by_id["name"]) == (1, "first")


@pytest.mark.parametrize(("args", "needles"), [
    (["--seed", "-1"], ["seed: must be an integer from 0 to 4294967295"]),
    (["--seed", str(2**63)], ["seed: must be an integer from 0 to 4294967295"]),
    (["--max-trials", str(2**63)], ["search.max_trials: must be from 1 to 1,000,000"]),
])
def test_seed_and_max_trials_out_of_range_name_the_valid_range(tmp_path, args, needles):
    db = tmp_path / "s.db"
    one_line_error(nasapp_cli("run", str(toy_job(tmp_path)), *args, "--db", str(db), env=NO_TORCH), *needles)
    assert not db.exists()  # refused before the store is opened: no store, no job row


def test_a_job_file_that_is_not_utf8_is_one_line(tmp_path):
    job = tmp_path / "job.toml"
    job.write_bytes(b'name = "caf\xe9"\n[space]\nprebuilt = "mlp"\n')
    one_line_error(nasapp_cli("run", str(job), "--db", str(tmp_path / "s.db")), "not UTF-8", "line 1")
    one_line_error(nasapp_cli("run", str(tmp_path), "--db", str(tmp_path / "s.db")), "is a folder")
    assert not (tmp_path / "s.db").exists()


def test_devices_cuda_without_a_gpu_leaves_no_job_behind(tmp_path):
    from nasapp.engine.execution.pool import visible_gpus

    if visible_gpus():
        pytest.skip("a GPU is visible here: devices = \"cuda\" is valid")
    db = tmp_path / "s.db"
    store_with_jobs(db, "earlier").close()
    job = toy_job(tmp_path)
    job.write_text(job.read_text().replace('devices = "cpu"', 'devices = "cuda"'))
    one_line_error(nasapp_cli("run", str(job), "--db", str(db), env=NO_TORCH), 'search.devices = "cuda"')
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT name, status FROM jobs").fetchall() == [("earlier", "created")]


def test_an_onnx_file_with_a_huge_input_shape_is_refused_before_allocating(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    shape = [1, 100_000, 100_000, 100]  # 4e12 float32 values: no machine has that memory
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "huge",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "huge.onnx"))
    one_line_error(nasapp_cli("latency", str(tmp_path / "huge.onnx")), "input 'x' has shape", "smaller input shape")


@pytest.mark.slow  # imports torch to rebuild the model
def test_export_of_a_corrupt_model_pt_or_to_an_unwritable_folder_is_one_line(tmp_path):
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    db = tmp_path / "s.db"
    store = Store(db)
    job_id = create_job(store, parse_job({"name": "mlp", "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"},
                                          "search": {"max_trials": 1, "devices": "cpu"}}))
    arch = get_prebuilt("mlp").space.sample(0)
    trial_id = store.add_trial(job_id, 0, arch, "fp", 0)
    store.finish_trial(trial_id, "succeeded", reward=0.5, metrics={"accuracy": 0.5})
    weights = store.trial_dir(job_id, 0) / "model.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"PK\x03\x04 this is not a torch checkpoint")
    store.close()
    one_line_error(nasapp_cli("export", "1", "--trial", "0", "-o", str(tmp_path / "out"), "--db", str(db)),
                   "model.pt is damaged")
    weights.unlink()
    (tmp_path / "a-file").write_text("keep me")
    one_line_error(nasapp_cli("export", "1", "--trial", "0", "-o", str(tmp_path / "a-file" / "sub"), "--db", str(db)),
                   "cannot write the export")
    assert (tmp_path / "a-file").read_text() == "keep me"


# ---- 10: a job with no succeeded trial ----------------------------------------------------------------------

@pytest.mark.slow  # two real (toy) searches
@pytest.mark.parametrize("max_trials", [3, 12])  # 12: the failure policy stops it after 10
def test_a_job_with_no_succeeded_trial_exits_non_zero_with_the_first_failure_and_its_log(tmp_path, max_trials):
    db = str(tmp_path / "s.db")
    job = toy_job(tmp_path, trainer="always_fails", max_trials=max_trials, parallel=1)
    result = nasapp_cli("run", str(job), "--db", db, env=NO_TORCH)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "first failure: trial 0 (error: ValueError: broken trainer" in error[0], result.stderr
    log = Path(error[0].rsplit("its log: ", 1)[1])
    assert log.is_file() and "broken trainer" in log.read_text()
    shown = json.loads(nasapp_cli("show", "1", "--json", "--db", db, check=True).stdout)
    failures = shown["failures"]
    assert failures["count"] == shown["counts"]["failed"] >= min(max_trials, 10)
    assert failures["by_reason"] == {"error": failures["count"]}
    assert failures["first"]["trial"] == 0 and Path(failures["first"]["log"]) == log
    assert "broken trainer" in failures["first"]["message"]
    assert "first: trial 0 (error: ValueError: broken trainer" in nasapp_cli("show", "1", "--db", db).stdout


# ---- 12: a triple Ctrl-C ----------------------------------------------------------------------------------

def _job_row(db: Path) -> tuple[str, list[str]] | None:
    try:
        with closing(sqlite3.connect(db, timeout=5)) as conn:
            (status,) = conn.execute("SELECT status FROM jobs WHERE id = 1").fetchone()
            return status, [row[0] for row in conn.execute("SELECT status FROM trials WHERE job_id = 1")]
    except (sqlite3.Error, TypeError):
        return None


@pytest.mark.slow  # real searches, interrupted
@pytest.mark.parametrize("store_busy", [True, False])
def test_a_triple_ctrl_c_never_leaves_the_job_running(tmp_path, store_busy):
    """Before: a second Ctrl-C during the graceful stop cut it short: job `running`, trials `running`.

    With `store_busy` another connection holds the store's write lock while the keys are pressed, so the stop
    is under way (waiting to write) when the second and third Ctrl-C arrive, as on a slow disk."""
    db = tmp_path / "s.db"
    job = toy_job(tmp_path, trainer="sleeper", max_trials=20, parallel=min(2, len(os.sched_getaffinity(0))))
    log = tmp_path / "run.log"
    process = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    try:
        wait_for(lambda: (row := _job_row(db)) and "running" in row[1], "a trial running", proc=process, log=log)
        with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as blocker:
            if store_busy:
                blocker.execute("BEGIN IMMEDIATE")
            for gap_s in (0.5, 0.05, 0.5):  # a person pressing Ctrl-C three times
                os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
                time.sleep(gap_s)
            if store_busy:
                blocker.execute("ROLLBACK")
        process.wait(timeout=60)
    finally:
        stop_process(process)
    assert "Traceback" not in log.read_text(), log.read_text()
    status, trials = _job_row(db)
    assert status == "stopped" and "running" not in trials, (status, trials, log.read_text())
    assert process.returncode == 130, log.read_text()
