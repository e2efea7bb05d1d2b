"""Device leases: which runner holds which device of this machine, shared by every runner on one store.

A device unit is a GPU ("cuda:0") or a CPU core ("cpu:3"); each holds shares up to 1. A runner leases one of its
pool's slots at a time (a slot covers one GPU, or a set of cores) by inserting one row per unit in one
`BEGIN IMMEDIATE` transaction that first checks every unit's free share, so two runners never overbook a unit.

A lease is held while its runner holds its job's runner lock and lives (the caller's `alive(job)`: the pid and
start time of engine/jobs/liveness.py). A lease of a dead runner, or of a token that no longer holds its job's
lock, is deleted by the next `take`: that is how a `kill -9` frees its devices. Releasing the job's lock
(`Store.release_job`) deletes its leases, and the runner's heartbeat refreshes them (`Store.heartbeat`).

A runner that has work but cannot lease records a wait (priority, the units it wants, when it started waiting,
a note for `ls`). Before taking a unit a runner gives way to a live waiting job that goes first: a higher
priority, or at equal priority fewer slots held, then the earlier wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nasapp.store.db import Store
from nasapp.store.records import Job

EPSILON = 1e-9  # shares are sums of floats (0.5 + 0.25 + 0.25 must fit in 1)
WAIT_FRESH_S = 10.0  # a wait not refreshed for this long is ignored (its runner stopped asking)


@dataclass(frozen=True)
class Claim:
    """A slot a runner could lease: its index in the runner's pool, its device units and the share of each."""

    slot: int
    units: tuple[str, ...]
    share: float


@dataclass(frozen=True)
class Taken:
    """What `take` found: the slot leased (None: none), who holds the units it wanted, who goes first."""

    slot: int | None
    holders: dict[str, list[int]] = field(default_factory=dict)  # unit -> other jobs holding a share of it
    ahead: list[int] = field(default_factory=list)  # waiting jobs this one gave way to


@dataclass(frozen=True)
class Wait:
    job_id: int
    runner_token: str
    priority: int
    devices: list[str]
    note: str | None
    since: float
    updated_at: float


@dataclass(frozen=True)
class _Rival:
    wait: Wait
    held: int


def take(store: Store, job_id: int, token: str, claims: list[Claim], priority: int,
         alive: Callable[[Job], bool], now: float | None = None) -> Taken:
    """Lease the first of `claims` whose units have room and that no waiting job ahead of this one wants.

    One transaction: dead leases and waits are reclaimed first; on success this job's wait is removed, else it
    is recorded (its `since` kept from an earlier try). Returns what was taken, or why nothing was."""
    now = time.time() if now is None else now
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        _reclaim(store, alive)
        used, holders = _usage(store)
        held = _held(store)
        mine = _wait(store, job_id)
        since = mine.since if mine is not None and mine.runner_token == token else now
        rivals = [r for r in _rivals(store, job_id, held, now) if _goes_first(r, priority, held.get(token, 0), since)]
        ahead_units = {unit for r in rivals for unit in r.wait.devices}
        for claim in claims:
            fits = all(used.get(unit, 0.0) + claim.share <= 1 + EPSILON for unit in claim.units)
            if fits and not ahead_units & set(claim.units):
                _insert(store, job_id, token, claim, now)
                conn.execute("DELETE FROM lease_waits WHERE job_id = ?", (job_id,))
                conn.execute("COMMIT")
                return Taken(claim.slot)
        wanted = sorted({unit for claim in claims for unit in claim.units})
        conn.execute(
            "INSERT INTO lease_waits (job_id, runner_token, priority, devices, since, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET runner_token = excluded.runner_token,"
            " priority = excluded.priority, devices = excluded.devices, since = excluded.since,"
            " updated_at = excluded.updated_at", (job_id, token, priority, json.dumps(wanted), since, now))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    blocking = {unit: sorted(j for j in holders.get(unit, ()) if j != job_id) for unit in wanted}
    return Taken(None, {u: jobs for u, jobs in blocking.items() if jobs}, sorted(r.wait.job_id for r in rivals))


def release(store: Store, token: str, slot: int) -> None:
    """Give back the lease `token` holds on pool slot `slot` (every unit of it)."""
    store.conn.execute("DELETE FROM leases WHERE runner_token = ? AND slot = ?", (token, slot))


def note_wait(store: Store, job_id: int, token: str, note: str) -> None:
    """Say why the job waits (shown by `ls`, `show` and the dashboard)."""
    store.conn.execute("UPDATE lease_waits SET note = ? WHERE job_id = ? AND runner_token = ?", (note, job_id, token))


def stop_waiting(store: Store, job_id: int, token: str) -> None:
    """The job wants no device now (no work left, or paused): it no longer holds back others."""
    store.conn.execute("DELETE FROM lease_waits WHERE job_id = ? AND runner_token = ?", (job_id, token))


def leases(store: Store) -> list[tuple[str, float, int, str, int]]:
    """Every lease row as (device, share, job id, runner token, slot), for tests and diagnostics."""
    return store.conn.execute("SELECT device, share, job_id, runner_token, slot FROM leases ORDER BY id").fetchall()


def waiting_notes(store: Store) -> dict[int, tuple[str, str | None]]:
    """Job id -> (runner token, note) of every recorded wait: one small query (a row per waiting job)."""
    rows = store.conn.execute("SELECT job_id, runner_token, note FROM lease_waits").fetchall()
    return {job_id: (token, note) for job_id, token, note in rows}


def job_wait(store: Store, job_id: int) -> tuple[str, str | None] | None:
    """(runner token, note) of the job's recorded wait, if any: one indexed read."""
    row = store.conn.execute("SELECT runner_token, note FROM lease_waits WHERE job_id = ?", (job_id,)).fetchone()
    return (row[0], row[1]) if row else None


def _reclaim(store: Store, alive: Callable[[Job], bool]) -> None:
    """Delete the leases and waits of runners that are gone (killed, or no longer holding their job's lock)."""
    pairs = store.conn.execute(
        "SELECT job_id, runner_token FROM leases UNION SELECT job_id, runner_token FROM lease_waits").fetchall()
    for job_id, token in pairs:
        job = store.job(job_id)
        if job is None or job.runner_token != token or not alive(job):
            store.conn.execute("DELETE FROM leases WHERE runner_token = ?", (token,))
            store.conn.execute("DELETE FROM lease_waits WHERE runner_token = ?", (token,))


def _insert(store: Store, job_id: int, token: str, claim: Claim, now: float) -> None:
    store.conn.executemany(
        "INSERT INTO leases (device, share, job_id, runner_token, slot, taken_at, heartbeat_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", [(unit, claim.share, job_id, token, claim.slot, now, now)
                                          for unit in claim.units])


def _usage(store: Store) -> tuple[dict[str, float], dict[str, set[int]]]:
    used: dict[str, float] = {}
    holders: dict[str, set[int]] = {}
    for device, share, job_id in store.conn.execute("SELECT device, share, job_id FROM leases").fetchall():
        used[device] = used.get(device, 0.0) + share
        holders.setdefault(device, set()).add(job_id)
    return used, holders


def _held(store: Store) -> dict[str, int]:
    """Runner token -> how many slots it holds."""
    return dict(store.conn.execute(
        "SELECT runner_token, COUNT(DISTINCT slot) FROM leases GROUP BY runner_token").fetchall())


def _wait(store: Store, job_id: int) -> Wait | None:
    row = store.conn.execute("SELECT job_id, runner_token, priority, devices, note, since, updated_at"
                             " FROM lease_waits WHERE job_id = ?", (job_id,)).fetchone()
    return _as_wait(row) if row else None


def _as_wait(row: tuple) -> Wait:
    job_id, token, priority, devices, note, since, updated_at = row
    return Wait(job_id, token, priority, json.loads(devices), note, since, updated_at)


def _rivals(store: Store, job_id: int, held: dict[str, int], now: float) -> list[_Rival]:
    rows = store.conn.execute("SELECT job_id, runner_token, priority, devices, note, since, updated_at"
                              " FROM lease_waits WHERE job_id != ? AND updated_at >= ?",
                              (job_id, now - WAIT_FRESH_S)).fetchall()
    return [_Rival(wait, held.get(wait.runner_token, 0)) for wait in map(_as_wait, rows)]


def _goes_first(rival: _Rival, priority: int, held: int, since: float) -> bool:
    """Higher priority first; at equal priority the job holding fewer slots (fair share), then the earlier wait."""
    return (-rival.wait.priority, rival.held, rival.wait.since) < (-priority, held, since)
