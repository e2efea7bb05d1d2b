"""The runner: the one process that writes a job's rows. It owns the strategy and the worker pool.

Every trial state change is committed to the store before the runner acts on it, and the order of asks
and tells is recorded (ask_seq/tell_seq), so `resume` can replay it into a fresh strategy.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.pool import WorkerPool, WorkerProcess, plan_slots, training_cores
from nasapp.engine.jobs.spec import JobSpec
from nasapp.engine.latency.gate import LatencyGate
from nasapp.engine.rewards.reward import compose_reward
from nasapp.engine.spaces import Space
from nasapp.engine.strategies import Strategy, make_strategy
from nasapp.store import Store
from nasapp.store.db import FINISHED

POLL_S = 0.2
COMMAND_POLL_S = 0.5
MIN_TRIALS_FOR_FAILURE_POLICY = 10
MAX_SKIPS_PER_ASK = 200
# what the latency service reports about its own settings, not about the model
_MEASUREMENT_SETTINGS = ("threads", "warmup", "runs", "batch_size", "session_ms", "latency_median_all_ms")


class StopRequested(Exception):
    """Ctrl-C, SIGTERM or a `stop` command: cancel running trials and leave the job resumable."""


@dataclass
class Progress:
    job_id: int
    done: int
    total: int
    running: int
    failed: int
    best: float | None
    elapsed_s: float
    status: str


def score(reward: float | None, direction: str) -> float | None:
    """Rewards as the strategy sees them: higher is better."""
    if reward is None:
        return None
    return reward if direction == "max" else -reward


class Runner:
    def __init__(self, store: Store, job_id: int, on_progress: Callable[[Progress], None] | None = None):
        self.store = store
        self.job_id = job_id
        self.on_progress = on_progress
        job = store.job(job_id)
        if job is None:
            raise NasappError(f"no job {job_id} in {store.path}")
        self.job = job
        self.spec = JobSpec.model_validate(job["spec"])
        self.space = Space.from_json(job["space"])
        self.direction = self.spec.reward.direction
        self.strategy: Strategy = make_strategy(
            self.spec.strategy.name, self.space, self.spec.seed, self.spec.strategy.model_dump()
        )
        self.seq = 0
        self.pending: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}  # trials per status; this runner is their only writer
        self.next_number = 0
        self.best: float | None = None
        self.running: dict[int, dict[str, Any]] = {}  # trial id -> a trial being trained or measured
        self.measuring: dict[int, dict[str, Any]] = {}  # trial id -> the worker's result, awaiting latency
        self.job_settings = job_settings(self.spec)
        self.reward_spec = self.spec.reward.model_dump()
        self._warned_scale = False
        self.infeasible = 0  # failed trials with reason "constraint": the search working, not broken
        self.paused = False
        self.started = time.monotonic()
        self._last_command_poll = 0.0

    # ---- the main loop ---------------------------------------------------------------------------
    def run(self) -> str:
        """Run until max_trials trials finished, the job is stopped, or the failure policy ends it."""
        cores = training_cores(self.spec.latency.pin_cores if self.spec.latency.enabled else None)
        slots = plan_slots(self.spec.search.devices, self.spec.search.parallel, cores)  # bad devices: fail first
        self._replay_history()
        self.pending = self.store.requeue_unfinished(self.job_id)
        self._load_tallies()
        self.store.update_job(self.job_id, status="running", runner_pid=os.getpid(), message=None,
                              started_at=self.job["started_at"] or time.time())
        resumed = " (resumed)" if self.seq else ""
        self.store.add_event(self.job_id, f"runner {os.getpid()} started{resumed}")
        job_dir = self.store.runs_dir / f"job-{self.job_id}"
        env = {"NASAPP_CPU_AFFINITY": ",".join(map(str, cores))} if cores else {}
        self.pool = WorkerPool(slots, job_dir / "workers.log", env)
        self.latency = self._latency_service(job_dir)
        self.gate = LatencyGate.for_job(self.spec, self.space) if self.latency is not None else None
        if self.gate is not None:
            for trial in self.store.trials(self.job_id, "succeeded"):
                if "latency_ms" in trial["metrics"]:
                    self.gate.observe(trial["arch"], trial["metrics"]["latency_ms"])
        previous = signal.signal(signal.SIGTERM, _raise_stop)
        try:
            self.pool.start()
            self.store.add_event(self.job_id, f"{len(slots)} workers on {', '.join(s.label for s in slots)}")
            return self._loop()
        except (KeyboardInterrupt, StopRequested):
            return self._stop("stopped", "stopped by the user; `nasapp resume` continues it")
        except Exception as error:  # leave the job resumable and say why, then let the caller see it
            self._stop("failed", f"the runner stopped on an error: {type(error).__name__}: {error}")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.pool.close()
            if self.latency is not None:
                self.latency.close()

    def _loop(self) -> str:
        while True:
            self._handle_commands()
            if not self.paused:
                self._dispatch()
            if self._finished_count() >= self.spec.search.max_trials and not self.running:
                return self._end("finished", None)
            for worker, message in self.pool.poll(POLL_S):
                self._handle(worker, message)
            self._collect_measurements()
            self._enforce_timeouts()
            failure = self._failure_policy()
            if failure:
                return self._stop("failed", failure)
            self._emit_progress("running")

    # ---- history and resume ----------------------------------------------------------------------
    def _load_tallies(self) -> None:
        self.counts = self.store.counts(self.job_id)
        trials = self.store.trials(self.job_id)
        self.next_number = max((t["number"] for t in trials), default=-1) + 1
        best = self.store.best_trials(self.job_id, 1, self.direction)
        self.best = best[0]["reward"] if best else None
        self.infeasible = sum(t["reason"] == "constraint" for t in self.store.trials(self.job_id, "failed"))

    def _finished_count(self) -> int:
        return sum(self.counts[s] for s in FINISHED)

    def _count(self, old: str | None, new: str) -> None:
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1

    def _replay_history(self) -> None:
        for seq, kind, trial in self.store.history(self.job_id):
            if kind == "ask":
                self.strategy.ask()
            else:
                self.strategy.tell(trial["arch"], self._trial_score(trial))
            self.seq = seq + 1

    def _trial_score(self, trial: dict[str, Any]) -> float | None:
        return score(trial["reward"], self.direction) if trial["status"] == "succeeded" else None

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    # ---- dispatch --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        for worker in self.pool.idle():
            trial = self._next_trial()
            if trial is None:
                return
            self.store.start_trial(trial["id"], worker.slot.label)
            self._count("queued", "running")
            self.running[trial["id"]] = trial
            self.pool.submit(worker, self._trial_message(trial))

    def _next_trial(self) -> dict[str, Any] | None:
        if self.pending:
            return self.pending.pop(0)
        planned = self._finished_count() + self.counts["running"] + self.counts["queued"]
        if planned >= self.spec.search.max_trials:
            return None
        for _ in range(MAX_SKIPS_PER_ASK):
            trial = self._ask_trial()
            if trial is not None:
                return trial
        raise NasappError(f"the latency gate skipped {MAX_SKIPS_PER_ASK} candidates in a row: raise"
                          " latency.skip_predicted_over or reward.latency_target_ms")

    def _ask_trial(self) -> dict[str, Any] | None:
        """A new trial from the strategy, or None when the latency gate skipped the candidate."""
        arch = self.strategy.ask()
        number, self.next_number = self.next_number, self.next_number + 1
        trial_id = self.store.add_trial(self.job_id, number, arch, self.space.fingerprint(arch),
                                        self._next_seq())
        predicted = self.gate.predict(arch) if self.gate is not None else None
        skip = self.gate.skip_reason(predicted) if self.gate is not None else None
        if skip:
            self.store.finish_trial(trial_id, "skipped", metrics={"predicted_latency_ms": predicted},
                                    reason="predicted_latency", message=skip, tell_seq=self._next_seq())
            self._count(None, "skipped")
            self.strategy.tell(arch, None)
            return None
        self._count(None, "queued")
        return {"id": trial_id, "number": number, "arch": arch, "predicted_latency_ms": predicted}

    def _trial_message(self, trial: dict[str, Any]) -> dict[str, Any]:
        workdir = self.store.trial_dir(self.job_id, trial["number"])
        return {
            **self.job_settings, "trial_id": trial["id"], "number": trial["number"], "arch": trial["arch"],
            "seed": self.spec.seed * 100_003 + trial["number"], "workdir": str(workdir),
            "log": str(workdir / "trial.log"),
        }

    # ---- messages from workers -------------------------------------------------------------------
    def _handle(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "report":
            self.store.add_metrics(message["trial"], message["step"], message["metrics"])
        elif kind == "done" and self.latency is not None and message.get("onnx") and message["status"] == "succeeded":
            trial = self.running[message["trial"]]
            self.measuring[trial["id"]] = message  # the trial stays running until its latency is in
            self.latency.submit(trial["id"], message["onnx"], self.space.fingerprint(trial["arch"]))
        elif kind == "done":
            self._finish(self.running.pop(message["trial"]), message)
        elif kind == "died" and message["trial"] is not None:
            reason = worker.extra.pop("kill_reason", "crash")
            text = (f"trial exceeded search.trial_timeout_s = {self.spec.search.trial_timeout_s:g}"
                    if reason == "timeout" else f"worker {message['description']}")
            self._finish(self.running.pop(message["trial"]),
                         {"status": "failed", "reason": reason, "message": text})
        elif kind == "fatal":
            raise NasappError(f"worker failed to start: {message['message']}")

    def _latency_service(self, job_dir: Any) -> Any:
        if not self.spec.latency.enabled:
            return None
        from nasapp.engine.latency.service import LatencyService

        service = LatencyService(self.spec.latency.model_dump(), job_dir / "latency_cache.json")
        service.start()
        return service

    def _collect_measurements(self) -> None:
        if self.latency is None:
            return
        for trial_id, measured in self.latency.poll(0):
            result = self.measuring.pop(trial_id)
            trial = self.running.pop(trial_id)
            if "error" in measured:
                result = {**result, "status": "failed", "reason": "latency", "message": measured["error"]}
            else:
                kept = {k: v for k, v in measured.items() if k not in _MEASUREMENT_SETTINGS and v is not None}
                result = {**result, "metrics": {**result.get("metrics", {}), **kept}}
                if self.gate is not None and "latency_ms" in kept:
                    self.gate.observe(trial["arch"], kept["latency_ms"])
            self._finish(trial, result)

    def _finish(self, trial: dict[str, Any], result: dict[str, Any]) -> None:
        metrics = dict(result.get("metrics") or {})
        if trial.get("predicted_latency_ms") is not None:
            metrics["predicted_latency_ms"] = trial["predicted_latency_ms"]
        status, reason, text = result["status"], result.get("reason"), result.get("message")
        reward = None
        if status == "succeeded":
            reward, reason, text = self._reward(metrics)
            status = "succeeded" if reason is None else "failed"
        self.store.finish_trial(trial["id"], status, reward=reward, metrics=metrics, reason=reason,
                                message=text, tell_seq=self._next_seq())
        self._count("running", status)
        self.infeasible += reason == "constraint"
        self.strategy.tell(trial["arch"], score(reward, self.direction))
        if reward is not None and (self.best is None or self._better(reward, self.best)):
            self.best = reward
        if status == "failed":
            self.store.add_event(self.job_id, f"trial {trial['number']} failed ({reason}): {text}", "warning")

    def _better(self, reward: float, other: float) -> bool:
        return score(reward, self.direction) > score(other, self.direction)  # type: ignore[operator]

    def _reward(self, metrics: dict[str, float]) -> tuple[float | None, str | None, str | None]:
        result = compose_reward(self.reward_spec, metrics)
        if result.warning and not self._warned_scale:
            self._warned_scale = True  # once per run: a metric on a 0-100 scale would flood the log
            self.store.add_event(self.job_id, result.warning, "warning")
        return result.reward, result.reason, result.message

    # ---- limits, commands and the failure policy -------------------------------------------------
    def _enforce_timeouts(self) -> None:
        limit = self.spec.search.trial_timeout_s
        now = time.monotonic()
        for worker in self.pool.busy():
            if now - worker.trial_started > limit and "kill_reason" not in worker.extra:
                worker.extra["kill_reason"] = "timeout"
                self.pool.kill(worker)

    def _handle_commands(self) -> None:
        now = time.monotonic()
        if now - self._last_command_poll < COMMAND_POLL_S:
            return
        self._last_command_poll = now
        for command in self.store.pending_commands(self.job_id):
            self.store.mark_command_handled(command["id"])
            name = command["command"]
            self.store.add_event(self.job_id, f"command: {name}")
            if name == "stop":
                raise StopRequested()
            if name in ("pause", "resume"):
                self.paused = name == "pause"
                self.store.update_job(self.job_id, status="paused" if self.paused else "running")

    def _failure_policy(self) -> str | None:
        failures = self.counts["failed"] - self.infeasible
        finished = self._finished_count()
        rate = self.spec.search.max_failure_rate
        if finished < MIN_TRIALS_FOR_FAILURE_POLICY or failures <= rate * finished:
            return None
        failed = [t for t in self.store.trials(self.job_id, "failed") if t["reason"] != "constraint"][-1]
        log = self.store.trial_dir(self.job_id, failed["number"]) / "trial.log"
        return (f"{failures} of {finished} finished trials failed, more than"
                f" search.max_failure_rate = {rate:g}; last failure: trial {failed['number']}"
                f" ({failed['reason']}: {failed['message']}); its log: {log}")

    # ---- endings -----------------------------------------------------------------------------------
    def _stop(self, status: str, message: str) -> str:
        for trial in self.running.values():
            self.store.finish_trial(trial["id"], "cancelled", reason="cancelled", message=message)
            self._count("running", "cancelled")
        self.running.clear()
        self.measuring.clear()
        self.pool.close()
        return self._end(status, message)

    def _end(self, status: str, message: str | None) -> str:
        self.store.update_job(self.job_id, status=status, message=message, runner_pid=None,
                              finished_at=time.time())
        self.store.add_event(self.job_id, f"job {status}" + (f": {message}" if message else ""),
                             "error" if status == "failed" else "info")
        self._emit_progress(status)
        return status

    def _emit_progress(self, status: str) -> None:
        if self.on_progress is None:
            return
        self.on_progress(Progress(
            job_id=self.job_id, done=self._finished_count(), total=self.spec.search.max_trials,
            running=self.counts["running"], failed=self.counts["failed"], best=self.best,
            elapsed_s=time.monotonic() - self.started, status=status,
        ))


def job_settings(spec: JobSpec) -> dict[str, Any]:
    """The part of every trial message that is the same for all trials of a job."""
    return {
        "trainer": {"prebuilt": spec.trainer.prebuilt, "ref": spec.trainer.ref,
                    "command": spec.trainer.command},
        "proxy": spec.trainer.proxy, "data": spec.data.model_dump() if spec.data else None,
        "data_seed": spec.seed, "export": {"batch_size": spec.latency.batch_size, "opset": spec.latency.opset},
        "space": {"prebuilt": spec.space.prebuilt, "scale": spec.space.scale.model_dump()},
    }


def _raise_stop(signum: int, frame: Any) -> None:
    raise StopRequested()
