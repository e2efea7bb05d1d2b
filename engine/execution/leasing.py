"""Device leases for the local executor: a runner runs a trial only on a pool slot whose devices it leased in the
store (store/leases.py), so jobs started on one machine share its GPUs and cores instead of each taking all.

A slot is leased for one trial and released when its worker is idle again (after the trial's end is stored):
between two trials a waiting job can take the slot, so the second job's trials start as the first one's end.
Workers on slots the job does not hold stay idle. A paused job takes no new lease and stops waiting; its running
trials keep theirs until they end. Stop, finish and crash: the lock's release (or, after `kill -9`, the next
runner's `take`, by liveness) frees them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from nasapp.engine.execution.pool import Slot
from nasapp.engine.jobs.liveness import runner_alive
from nasapp.store import Store
from nasapp.store import leases as store_leases
from nasapp.store.leases import Claim, Taken

RETRY_S = 0.5  # while waiting, how often to try again (each try is one short write transaction)


class LeasedExecutor(Protocol):
    def device_units(self) -> list[tuple[str, ...]] | None: ...
    def idle_slots(self) -> list[int]: ...
    def submit(self, message: dict[str, Any], slot: int | None = None) -> str: ...


def slot_units(slots: list[Slot], cores: list[int] | None) -> list[tuple[str, ...]]:
    """Each slot's device units: its GPU ("cuda:0"), or its set of CPU cores ("cpu:0", "cpu:1"): the cores split
    evenly among the slots, or one core each, round-robin, when there are more slots than cores."""
    core_ids = list(cores) if cores else sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(os.cpu_count() or 1))
    cpu_slots = [s for s in slots if s.gpu is None]
    per = max(1, len(core_ids) // max(1, len(cpu_slots)))
    out = []
    for slot in slots:
        if slot.gpu is not None:
            out.append((f"cuda:{slot.gpu}",))
        elif len(cpu_slots) <= len(core_ids):
            out.append(tuple(f"cpu:{c}" for c in core_ids[slot.index * per:(slot.index + 1) * per]))
        else:
            out.append((f"cpu:{core_ids[slot.index % len(core_ids)]}",))
    return out


def claims_for(units: list[tuple[str, ...]], per_trial: float) -> list[Claim]:
    """A claim per slot. Its share of each unit is `devices_per_trial`, at most 1/k when the job itself puts k of
    its slots on one unit (parallel above the devices: they share it round-robin, as without leases)."""
    count: dict[str, int] = {}
    for slot_units_ in units:
        for unit in slot_units_:
            count[unit] = count.get(unit, 0) + 1
    return [Claim(i, u, min(per_trial, 1.0 / max(count[x] for x in u))) for i, u in enumerate(units)]


def units_text(units: list[str]) -> str:
    """["cuda:0", ..., "cuda:3"] -> "GPUs 0–3"; ["cpu:0", "cpu:1", "cpu:4"] -> "cpu cores 0–1, 4"."""
    parts = []
    for kind, one, many in (("cuda", "GPU", "GPUs"), ("cpu", "cpu core", "cpu cores")):
        numbers = sorted(int(u.split(":")[1]) for u in units if u.split(":")[0] == kind)
        if numbers:
            parts.append(f"{one if len(numbers) == 1 else many} {_ranges(numbers)}")
    return ", ".join(parts)


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def waiting_note(taken: Taken) -> str:
    """Why a job waits, for `ls`, `show` and the dashboard: "cpu cores 0–1 leased by job 7"."""
    by_job: dict[int, list[str]] = {}
    for unit, jobs in taken.holders.items():
        for job in jobs:
            by_job.setdefault(job, []).append(unit)
    parts = [f"{units_text(units)} leased by job {job}" for job, units in sorted(by_job.items())]
    if taken.ahead:
        names = ", ".join(map(str, taken.ahead))
        parts.append(f"job{'s' if len(taken.ahead) > 1 else ''} {names} first (priority or fair share)")
    return "; ".join(parts) or "devices leased by other jobs"


class SlotLeases:
    """One runner's leases: take a slot for the next trial, release slots whose worker is idle."""

    def __init__(self, store: Store, job_id: int, token: str, executor: LeasedExecutor,
                 claims: list[Claim], *, max_devices: int | None, priority: int) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self.executor = executor
        self.claims = claims
        self.max_devices = max_devices
        self.priority = priority
        self.held: set[int] = set()
        self.waiting = False
        self._note: str | None = None
        self._last_try = 0.0

    @classmethod
    def for_job(cls, store: Store, job_id: int, token: str, executor: Any, search: Any) -> SlotLeases | None:
        """The leases of a job whose executor runs on this machine's devices; None for one that does not."""
        units = executor.device_units()
        if units is None:
            return None
        claims = claims_for(units, getattr(search, "devices_per_trial", 1.0))
        return cls(store, job_id, token, executor, claims, max_devices=getattr(search, "max_devices", None),
                   priority=getattr(search, "priority", 0))

    def take(self) -> int | None:
        """Lease a free slot for the next trial; None when none can be had now (the job's max_devices reached,
        every slot's devices leased, a job ahead waiting), tried again at most every RETRY_S seconds."""
        if self.max_devices is not None and len(self.held) >= self.max_devices:
            return None
        now = time.monotonic()
        if self.waiting and now - self._last_try < RETRY_S:
            return None
        self._last_try = now
        idle = set(self.executor.idle_slots()) - self.held
        claims = [c for c in self.claims if c.slot in idle]
        if not claims:
            return None
        taken = store_leases.take(self.store, self.job_id, self.token, claims, self.priority, runner_alive)
        if taken.slot is not None:
            self.held.add(taken.slot)
            self.waiting, self._note = False, None
            return taken.slot
        self.waiting = True
        note = waiting_note(taken)
        if note != self._note:
            self._note = note
            store_leases.note_wait(self.store, self.job_id, self.token, note)
        return None

    def release_idle(self) -> None:
        """Give back the slots whose worker has no trial (call after the trial's end is stored)."""
        idle = self.held & set(self.executor.idle_slots())
        for slot in sorted(idle):
            store_leases.release(self.store, self.token, slot)
        self.held -= idle
        if idle:
            self._last_try = 0.0  # a fresh chance at once: the order between jobs is the waits', not the clock's

    def stop_waiting(self) -> None:
        """No work to place now (paused, or nothing queued): let other jobs go first."""
        if self.waiting:
            store_leases.stop_waiting(self.store, self.job_id, self.token)
            self.waiting, self._note = False, None
