"""GPU scheduling: runs only on a machine with an NVIDIA GPU (CI has none and skips)."""

from __future__ import annotations

import pytest
from helpers import nasapp_cli

from nasapp.engine.execution.pool import plan_slots, visible_gpus

pytestmark = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not visible_gpus(), reason="no NVIDIA GPU visible (nvidia-smi / CUDA_VISIBLE_DEVICES)")


def test_cpu_slots_split_the_cores():
    slots = plan_slots("cpu", 2)
    assert [s.device for s in slots] == ["cpu", "cpu"] and all(s.threads >= 1 for s in slots)


@needs_gpu
def test_auto_gives_one_slot_per_gpu():
    slots = plan_slots("auto", "auto")
    assert [s.gpu for s in slots] == visible_gpus() and {s.device for s in slots} == {"cuda"}


@pytest.mark.slow
@needs_gpu
def test_the_demo_trains_on_the_gpu(tmp_path):
    import json

    db = str(tmp_path / "gpu.db")
    nasapp_cli("run", "--max-trials", "4", "--db", db, check=True)
    (job,) = json.loads(nasapp_cli("ls", "--json", "--db", db, check=True).stdout)
    assert job["counts"]["succeeded"] == 4
    from nasapp.store import Store

    assert {t.device.split(":")[0] for t in Store(db).trials(job["id"])} == {"cuda"}
