"""The Ray executor (engine/execution/ray_executor.py) against a real local Ray cluster: one per module,
`ray start --head --block` on 127.0.0.1 with 2 CPUs, ended by its PID (its process group) at the end."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, start_nasapp, stop_process, wait_for, write_job

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.ray_executor import MISSING, RayExecutor, RaySearch, write_files
from nasapp.store import Store

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install 'nasapp[ray]')")
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 2-CPU Ray cluster on 127.0.0.1 for this module's tests: (its address, the node IP Ray registered)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("ray") / "ray.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
             "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
             "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        wait_for(lambda: "Ray runtime started" in log.read_text(), "the Ray cluster to start", timeout=90,
                 proc=proc, log=log)
        node_ip = re.search(r"Local node IP: (\S+)", log.read_text())
        yield f"127.0.0.1:{port}", node_ip.group(1) if node_ip else "127.0.0.1"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # `ray start --block` ends the cluster's processes it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        stop_process(proc)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the cluster left in its group
        except ProcessLookupError:
            pass


def toy_ray_job(tmp_path: Path, executor: str, *, trainer: str = "train", max_trials: int = 6,
                options: str = "", name: str = "job.toml") -> Path:
    more = f", {options}" if options else ""
    return write_job(tmp_path, f"""
        name = "toy"
        seed = 1
        [space]
        ref = "{TOY}:space"
        [trainer]
        ref = "{TOY}:{trainer}"
        options = {{ sleep = 0.0{more} }}
        [strategy]
        name = "random"
        [search]
        max_trials = {max_trials}
        parallel = 2
        trial_timeout_s = 60
        max_failure_rate = 0.5
        {textwrap.dedent(executor)}
    """, name=name)


def results(db: Path) -> list[tuple]:
    store = Store(db)
    try:
        return [(t.number, json.dumps(t.arch, sort_keys=True), t.status, t.reward,
                 {k: v for k, v in t.metrics.items()}) for t in store.trials(1)]
    finally:
        store.close()


def devices(db: Path) -> list[str]:
    store = Store(db)
    try:
        return [t.device for t in store.trials(1)]
    finally:
        store.close()


@pytest.mark.slow
@needs_ray
def test_ray_runs_the_same_search_as_the_local_executor(tmp_path, cluster):
    address, node_ip = cluster
    local = toy_ray_job(tmp_path, 'devices = "cpu"', name="local.toml")
    ray = toy_ray_job(tmp_path, f'executor = "ray"\naddress = "{address}"', name="ray.toml")
    nasapp_cli("run", str(local), "--db", str(tmp_path / "local.db"), env=NO_TORCH, check=True)
    nasapp_cli("run", str(ray), "--db", str(tmp_path / "ray.db"), env=NO_TORCH, check=True)
    expected = results(tmp_path / "local.db")
    assert len(expected) == 6 and all(row[2] == "succeeded" for row in expected)
    assert results(tmp_path / "ray.db") == expected  # same proposals in the same order, same metrics
    assert set(devices(tmp_path / "ray.db")) == {f"{node_ip}:cpu"}  # where the trials ran (Ray's node IP)
    log = next((tmp_path / "runs").glob("ray-*/job-1/trial-00002/trial.log")).read_text()
    assert "trained" in log  # the trial wrote its folder on the driver's machine
    shown = nasapp_cli("show", "1", "--db", str(tmp_path / "ray.db"), check=True).stdout
    assert f"{node_ip}:cpu" in shown


@pytest.mark.slow
@needs_ray
def test_a_trial_folder_is_shipped_back_when_the_node_cannot_see_it(tmp_path, cluster):
    job = toy_ray_job(tmp_path, f'executor = "ray"\naddress = "{cluster[0]}"\nartefacts = "ship"', max_trials=2)
    nasapp_cli("run", str(job), "--db", str(tmp_path / "n.db"), env=NO_TORCH, check=True)
    assert [row[2] for row in results(tmp_path / "n.db")] == ["succeeded", "succeeded"]
    logs = sorted((tmp_path / "runs").glob("n-*/job-1/trial-*/trial.log"))
    assert len(logs) == 2 and all("trained" in log.read_text() for log in logs)


def _kill_victim(tmp_path: Path, cluster: tuple[str, str], retries: int) -> list[tuple]:
    pid_file = tmp_path / "victim.pid"
    job = toy_ray_job(tmp_path, f'executor = "ray"\naddress = "{cluster[0]}"\nmax_retries = {retries}',
                      trainer="victim", max_trials=4, options=f'victim = 1, pid_file = "{pid_file}"')
    log = tmp_path / "run.log"
    proc = start_nasapp("run", str(job), "--db", str(tmp_path / "n.db"), log=log, env=NO_TORCH)
    try:
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the victim's pid", timeout=90,
                           proc=proc, log=log))
        os.kill(pid, signal.SIGKILL)  # the Ray worker process running trial 1's actor
        assert proc.wait(timeout=90) == 0, log.read_text()
    finally:
        stop_process(proc)
    return results(tmp_path / "n.db")


@pytest.mark.slow
@needs_ray
def test_a_killed_ray_worker_fails_its_trial_as_a_crash_and_the_job_goes_on(tmp_path, cluster):
    rows = _kill_victim(tmp_path, cluster, retries=0)
    assert [row[2] for row in rows] == ["succeeded", "failed", "succeeded", "succeeded"]
    store = Store(tmp_path / "n.db")
    try:
        victim = store.trial_by_number(1, 1)
        assert victim.reason == "crash" and "Ray actor died" in victim.message
    finally:
        store.close()


@pytest.mark.slow
@needs_ray
def test_a_killed_ray_worker_s_trial_runs_again_with_max_retries(tmp_path, cluster):
    rows = _kill_victim(tmp_path, cluster, retries=1)
    assert [row[2] for row in rows] == ["succeeded"] * 4


def test_without_ray_the_job_file_and_the_executor_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, find_spec finds nothing
    with pytest.raises(ValueError, match="needs Ray: pip install 'nasapp\\[ray\\]'"):
        RaySearch.model_validate({"executor": "ray"})
    with pytest.raises(NasappError) as error:
        RayExecutor(RaySearch.model_construct(), tmp_path, {})
    assert str(error.value) == MISSING
    job = toy_ray_job(tmp_path, 'executor = "ray"')
    from nasapp.engine.jobs.spec import load_job

    with pytest.raises(NasappError, match="needs Ray"):
        load_job(job)


@needs_ray
@pytest.mark.parametrize(("table", "message"), [
    ({"address": "somewhere"}, "address"),
    ({"cpus_per_trial": 0}, "cpus_per_trial"),
    ({"devices": [0]}, "gpus_per_trial"),
    ({"devices": "cpu", "gpus_per_trial": 1}, "gpus_per_trial"),
    ({"artefacts": "nfs"}, "artefacts"),
])
def test_bad_ray_keys_are_refused_with_their_key(table, message):
    with pytest.raises(ValueError, match=message):
        RaySearch.model_validate({"executor": "ray", **table})


def test_shipped_files_land_in_the_trial_folder_and_cannot_leave_it(tmp_path):
    (tmp_path / "trial.log").write_text("before\n")
    result = write_files({"status": "succeeded", "onnx": "model.onnx",
                          "files": {"trial.log": b"after\n", "model.onnx": b"onnx", "../escape": b"x"}}, tmp_path)
    assert (tmp_path / "trial.log").read_text() == "before\nafter\n"
    assert result["onnx"] == str(tmp_path / "model.onnx") and "files" not in result
    assert not (tmp_path.parent / "escape").exists()


@needs_ray
def test_the_new_job_screen_s_executor_choice_switches_the_search_table(tmp_path):
    from nasapp.app.screens.new_job import check_job

    job = toy_ray_job(tmp_path, 'devices = "cpu"')
    checked = check_job(job, executor="ray")
    assert (checked.spec.search.executor, checked.spec.search.address) == ("ray", "auto")
    ray_job = toy_ray_job(tmp_path, 'executor = "ray"\ncpus_per_trial = 2', name="ray.toml")
    assert check_job(ray_job, executor="local").spec.search.executor == "local"  # its Ray keys dropped
