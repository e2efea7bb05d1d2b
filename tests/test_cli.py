"""The real `nasapp` console script, as a user runs it."""

from __future__ import annotations

import json
import re

import pytest
from helpers import NO_TORCH, nasapp_cli, toy_job, write_job

from nasapp.store import Store


@pytest.mark.slow
def test_run_prints_the_job_id_first_then_ls_and_show_give_json(tmp_path):
    db = str(tmp_path / "cli.db")
    result = nasapp_cli("run", str(toy_job(tmp_path, max_trials=4)), "--db", db, check=True, env=NO_TORCH)
    first = result.stdout.splitlines()[0]
    job_id = int(re.match(r"job (\d+) ", first).group(1))
    assert "best: trial" in result.stdout and "architecture:" in result.stdout
    assert "trials 4/4" in result.stderr  # the progress line

    listed = json.loads(nasapp_cli("ls", "--json", "--db", db, check=True).stdout)
    assert [j["id"] for j in listed] == [job_id]
    shown = json.loads(nasapp_cli("show", str(job_id), "--json", "--db", db, check=True).stdout)
    for key in ("id", "name", "status", "max_trials", "counts", "best"):
        assert key in shown
    assert shown["status"] == "finished" and shown["counts"]["succeeded"] == 4
    assert set(shown["best"]) >= {"trial", "reward", "metrics", "arch"}
    assert "trial" in nasapp_cli("show", "toy", "--db", db, check=True).stdout  # by name too


@pytest.mark.slow
def test_the_end_of_a_run_says_what_happened_and_resume_extends_the_budget(tmp_path):
    """The best trial with its objectives and how its reward was formed, its folder, the next commands (with
    this --db); an ETA on the progress line; `show` prints a column per objective and one line per architecture;
    `resume --max-trials` takes a finished job on to a larger total, continuing the same proposals."""
    db = str(tmp_path / "cli.db")
    result = nasapp_cli("run", str(toy_job(tmp_path, max_trials=3, parallel=1)), "--db", db, check=True,
                        env=NO_TORCH)
    assert re.search(r"best: trial \d+, reward [0-9.]+; accuracy [0-9.]+", result.stdout)
    assert "  reward = accuracy " in result.stdout and "  files: " in result.stdout
    assert f"next: nasapp show 1 --db {db} · nasapp pareto 1 --db {db} · nasapp export 1 --best 1" in result.stdout
    assert re.search(r"elapsed \d+:\d\d  eta \d+:\d\d", result.stderr)
    shown = nasapp_cli("show", "1", "--db", db, check=True).stdout
    assert re.search(r"trial +reward +accuracy", shown) and re.search(r"^trial \d+: op=\"[abc]\" x=\d+$", shown, re.M)
    refused = nasapp_cli("resume", "1", "--db", db)
    assert refused.returncode == 2 and "--max-trials N` raises its budget" in refused.stderr
    nasapp_cli("resume", "1", "--max-trials", "5", "--db", db, check=True, env=NO_TORCH)
    (job,) = json.loads(nasapp_cli("ls", "--json", "--db", db).stdout)
    assert job["max_trials"] == 5 and job["counts"]["succeeded"] == 5 and job["status"] == "finished"
    store = Store(tmp_path / "cli.db")
    straight = tmp_path / "straight"
    straight.mkdir()
    nasapp_cli("run", str(toy_job(straight, max_trials=5, parallel=1)), "--db", db, check=True, env=NO_TORCH)
    assert [t.arch for t in store.trials(1)] == [t.arch for t in store.trials(2)]


@pytest.mark.slow
def test_overrides_change_the_budget(tmp_path):
    db = str(tmp_path / "cli.db")
    nasapp_cli("run", str(toy_job(tmp_path, max_trials=9)), "--max-trials", "3", "--parallel", "1",
               "--db", db, check=True, env=NO_TORCH)
    (job,) = json.loads(nasapp_cli("ls", "--json", "--db", db).stdout)
    assert job["max_trials"] == 3 and job["counts"]["succeeded"] == 3


@pytest.mark.slow  # six runs of the CLI
def test_user_mistakes_get_one_message_and_exit_2(tmp_path):
    cases = {
        "missing.toml": "job file not found",
        write_job(tmp_path, 'name = "x"\n[space]\nprebuilt = "mlp"\n[search]\nmax_trials = "many"\n',
                  "bad_type.toml"): "search.max_trials",
        write_job(tmp_path, 'name = "x"\n[space]\nprebuilt = "mlp"\n[strategy]\nname = "bayes"\n',
                  "bad_strategy.toml"): "unknown strategy 'bayes'",
        write_job(tmp_path, 'name = "x"\ncolour = 1\n[space]\nprebuilt = "mlp"\n', "unknown.toml"):
            "colour: unknown key",
        write_job(tmp_path, 'name = "x"\n[space]\nprebuilt = "mlp"\n[trainer]\nref = "nofile.py:train"\n',
                  "missing_file.toml"): "trainer.ref: file not found",
        write_job(tmp_path, 'name = "x"\n[space\n', "broken.toml"): "not valid TOML",
    }
    for job, expected in cases.items():
        result = nasapp_cli("run", str(job), "--db", str(tmp_path / "e.db"))
        assert result.returncode == 2, (job, result.stderr)
        assert expected in result.stderr, (job, result.stderr)
        assert "Traceback" not in result.stderr


def test_unknown_job_is_a_clear_error(tmp_path):
    Store(tmp_path / "e.db").close()  # reading commands never create a store: make an empty one
    result = nasapp_cli("show", "42", "--db", str(tmp_path / "e.db"))
    assert result.returncode == 2 and "no job '42'" in result.stderr


def test_help_reads_like_a_manual():
    result = nasapp_cli("run", "--help", check=True)
    assert "--max-trials" in result.stdout and "Ctrl-C" in result.stdout


@pytest.mark.slow
def test_the_builtin_demo_runs_with_a_small_budget(tmp_path):
    result = nasapp_cli("run", "--max-trials", "2", "--db", str(tmp_path / "demo.db"), check=True)
    assert result.stdout.startswith("job 1 demo-digits-mnasnet")
    assert "2/2 trials finished (2 succeeded" in result.stdout
    # the best mnasnet architecture on one line, the dashboard's inline form: its seven blocks
    (line,) = [text for text in result.stdout.splitlines() if text.startswith("  architecture: blocks=[")]
    assert line.count("op=") == 7


def test_spaces_lists_the_prebuilt_spaces():
    listed = json.loads(nasapp_cli("spaces", "--json", check=True).stdout)
    sizes = {row["name"]: row["size"] for row in listed}
    assert sizes["nb201"] == 15625 and sizes["mnasnet"] > 10**13 and "mlp" in sizes
    detail = nasapp_cli("spaces", "mnasnet", check=True).stdout
    assert "blocks[*].kernel" in detail
    assert nasapp_cli("spaces", "resnet").returncode == 2


def test_spaces_shows_a_custom_space_by_file_or_module_and_says_its_continuous_dimensions(tmp_path):
    (tmp_path / "my_space.py").write_text(
        "import nasapp as nas\n"
        "space = nas.space({'width': nas.choice([8, 16, 32]), 'depth': nas.integer(1, 4096),\n"
        "                   'lr': nas.floating(1e-4, 1e-1, log=True), 'dropout': nas.floating(0.0, 0.5)})\n")
    shown = nasapp_cli("spaces", f"{tmp_path / 'my_space.py'}:space", check=True).stdout.splitlines()
    assert shown[1] == "size: 12,288 discrete combinations × 2 continuous dimensions"
    assert "  lr  floating  [0.0001, 0.1] log" in shown and "  width  choice  [8, 16, 32]" in shown
    document = json.loads(nasapp_cli("spaces", "my_space:space", "--json", cwd=tmp_path, check=True).stdout)
    assert (document["size"], document["continuous"]) == (12288, 2)  # size() keeps its meaning
    assert document["size_text"] == "12,288 discrete combinations × 2 continuous dimensions"
    bad = nasapp_cli("spaces", "my_space.py:nothing", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: my_space.py:nothing: 'my_space.py' has no attribute 'nothing'"]


@pytest.mark.slow
def test_a_search_runs_from_a_folder_holding_another_nasapp_package(tmp_path):
    """Run from a clone's root, the repository's own nasapp/ folder must not shadow the installed package."""
    decoy = tmp_path / "cwd" / "nasapp"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    db = str(tmp_path / "cwd.db")
    nasapp_cli("run", str(toy_job(tmp_path, max_trials=2)), "--db", db, check=True, cwd=decoy.parent, env=NO_TORCH)
    (job,) = json.loads(nasapp_cli("ls", "--json", "--db", db).stdout)
    assert job["counts"]["succeeded"] == 2, job
