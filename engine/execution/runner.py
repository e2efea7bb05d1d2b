"""The runner: the one process that writes a job's rows. It owns the strategy, the early-stopping rule, the
executor (where trials run) and the latency stage.

Every trial state change is committed to the store before the runner acts on it, and the order of asks
and tells is recorded (ask_seq/tell_seq), so `resume` can replay it into a fresh strategy.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasapp.engine.early_stopping import EarlyStoppingRule, make_rule
from nasapp.engine.errors import NasappError, TrialFailed
from nasapp.engine.execution.baseline_trial import BaselineTrial
from nasapp.engine.execution.context import CHECKPOINT_FILE
from nasapp.engine.execution.executor import Executor
from nasapp.engine.execution.executors import EXECUTORS
from nasapp.engine.execution.latency_stage import LatencyStage
from nasapp.engine.execution.leasing import SlotLeases
from nasapp.engine.execution.tallies import Tallies, score
from nasapp.engine.execution.values import checked_metrics, checked_report
from nasapp.engine.jobs.liveness import HEARTBEAT_S, holder_text, process_start_time, runner_alive
from nasapp.engine.jobs.spec import JobSpec, job_spec
from nasapp.engine.rewards.reward import compose_reward
from nasapp.engine.spaces import Space
from nasapp.engine.strategies import Asked, Strategy, TrialOutcome, make_strategy
from nasapp.store import Store, Trial
from nasapp.store.db import FINISHED, history_of

POLL_S = 0.2
COMMAND_POLL_S = 0.5
COMMAND_TTL_S = 300.0  # a command older than this is expired, not acted on (its sender has long given up)
MAX_SKIPS_PER_ASK = 200


class StopRequested(Exception):
    """Ctrl-C, SIGTERM or a `stop` command: cancel running trials and leave the job resumable."""


class LockLost(Exception):
    """Another runner took this job's lock (`nasapp resume --force`): this one stops without writing more."""


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
    done_at_start: int = 0  # trials finished before this runner started (a resume): not part of its pace


@dataclass
class RunningTrial:
    """A trial handed to the executor (or waiting for its latency)."""

    id: int
    number: int
    arch: Any
    predicted_latency_ms: float | None = None
    last_step: int | None = None
    stop_at_step: int | None = None  # the step at which the early-stopping rule asked it to stop
    failure: TrialFailed | None = None  # a bad value it sent: it was killed, and fails with this reason
    baseline: bool = False  # trial 0 of [search] baseline: never pruned; may set the latency target


def outcome_of(trial: Trial, direction: str) -> TrialOutcome:
    """What a strategy is told about a finished trial (also used to replay history on resume)."""
    if trial.status == "succeeded":
        state = "succeeded"
    elif trial.status == "failed" and trial.reason == "constraint":
        state = "constraint"
    else:
        state = trial.status  # failed, pruned, skipped
    pruned_at = trial.metrics.get("pruned_at_step") if trial.status == "pruned" else None
    return TrialOutcome(
        number=trial.number, arch=trial.arch, state=state,  # type: ignore[arg-type]
        score=score(trial.reward, direction) if trial.status == "succeeded" else None,
        reward=trial.reward, reason=trial.reason, pruned_at=int(pruned_at) if pruned_at is not None else None,
        metrics=trial.metrics,
    )


class Runner:
    def __init__(self, store: Store, job_id: int, on_progress: Callable[[Progress], None] | None = None,
                 worker_env: dict[str, str] | None = None):
        """``worker_env``: extra environment variables for the trial processes (on top of this process's)."""
        self.store = store
        self.worker_env = dict(worker_env or {})
        self.job_id = job_id
        self.on_progress = on_progress
        job = store.job(job_id)
        if job is None:
            raise NasappError(f"no job {job_id} in {store.path}")
        self.job = job
        self.spec: JobSpec = job_spec(job)
        self.space = Space.from_json(job.space)
        self.direction = self.spec.reward.direction
        self.strategy: Strategy = make_strategy(self.spec.strategy, self.space, self.spec.seed)
        if getattr(self.strategy, "needs_scorer", False):
            from nasapp.engine.proxies.job_scorer import job_scorer

            self.strategy.scorer = job_scorer(self.spec)  # type: ignore[attr-defined]
        self.rule: EarlyStoppingRule | None = make_rule(self.spec.early_stopping)
        self.tallies = Tallies(self.direction)
        self.seq = 0
        self.pending: list[Trial] = []
        self.running: dict[int, RunningTrial] = {}  # trial id -> a trial being trained or measured
        self.job_settings = job_settings(self.spec)
        self._warned_scale = False
        self.paused = False
        self.started = time.monotonic()
        self.done_at_start = 0
        self._last_command_poll = 0.0
        self.executor: Executor | None = None
        self.leases: SlotLeases | None = None  # this machine's device leases (the local executor)
        self.unplaced: RunningTrial | None = None  # the next trial, waiting for a device lease
        self.latency: LatencyStage | None = None
        self.checkpoints: dict[str, Any] = {}  # fingerprint -> checkpoint to continue from (trainer.continue_from)
        self.baseline = BaselineTrial(self.spec, self.space)  # [search] baseline: trial 0
        self.fatal: str | None = None  # why the job cannot go on (the baseline gave no latency target)
        self.token: str | None = None  # this runner's lock token, once claimed
        self._lost = False
        self._last_heartbeat = 0.0

    # ---- the runner lock: one runner per job -------------------------------------------------------
    def claim(self, force: bool = False) -> None:
        """Take the job's runner lock (see engine/jobs/liveness.py), or raise a NasappError naming the runner
        that holds it. A lock whose runner is gone (killed, crashed) is taken over; `force` takes it regardless.
        `run()` claims it when it was not claimed before, and releases it however it ends."""
        if self.token is not None:
            return
        token = uuid.uuid4().hex
        claimed, before = self.store.claim_job(
            self.job_id, pid=os.getpid(), start_time=process_start_time(os.getpid()), token=token,
            may_take=lambda holder: force or not runner_alive(holder))
        if before is None:
            raise NasappError(f"no job {self.job_id} in {self.store.path}")
        if not claimed:
            raise NasappError(
                f"job {self.job_id} is already being run by {holder_text(before)}: one runner per job"
                f" (if you know that runner is gone or stuck, `nasapp resume {self.job_id} --force` takes over)")
        self.token = token
        self._last_heartbeat = time.monotonic()
        if before.runner_pid is not None:
            why = "forced" if force and runner_alive(before) else "it was gone"
            self.store.add_event(self.job_id, f"took over the job from {holder_text(before)}: {why}", "warning")

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        assert self.token is not None
        if not self.store.heartbeat(self.job_id, self.token):
            raise LockLost()

    def _release(self) -> None:
        token, self.token = self.token, None  # a later run() claims the lock again
        if token is not None and not self._lost:
            self.store.release_job(self.job_id, token)  # a no-op when _end released it already

    # ---- the main loop ---------------------------------------------------------------------------
    def run(self) -> str:
        """Run until max_trials trials finished, the job is stopped, or the failure policy ends it.

        Takes the job's runner lock first (a NasappError, and nothing written, when another runner holds it)
        and releases it however the run ends."""
        self.claim()
        try:
            return self._run()
        finally:
            self._release()

    def _run(self) -> str:
        job_dir = self.store.job_dir(self.job_id)
        # built first: bad devices fail before anything is written
        executor = EXECUTORS.get(self.spec.search.executor).make(self.spec, job_dir, self.worker_env)
        trials = self._restore()
        self._start_baseline()
        self.store.update_job(self.job_id, status="running", message=None,
                              started_at=self.job.started_at or time.time())
        resumed = " (resumed)" if self.seq else ""
        self.store.add_event(self.job_id, f"runner {os.getpid()} started{resumed}")
        self.executor = executor
        previous = signal.signal(signal.SIGTERM, _raise_stop)
        previous_int = signal.getsignal(signal.SIGINT)
        try:
            self._start_latency(job_dir, trials)
            slots = executor.start()
            self.store.add_event(self.job_id, f"{len(slots)} workers on {', '.join(slots)}")
            assert self.token is not None
            self.leases = SlotLeases.for_job(self.store, self.job_id, self.token, executor, self.spec.search)
            return self._loop()
        except LockLost:  # the job is another runner's now: write nothing more to it
            self._lost = True
            raise NasappError(f"job {self.job_id}: another runner took this job over (`nasapp resume --force`);"
                              f" runner {os.getpid()} stopped") from None
        except (KeyboardInterrupt, StopRequested):
            return self._stop("stopped", "stopped by the user; `nasapp resume` continues it")
        except Exception as error:  # leave the job resumable and say why, then let the caller see it
            if self._lost:  # _end found another runner holding the job: nothing more to write
                raise
            self._stop("failed", f"the runner stopped on an error: {type(error).__name__}: {error}")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
            executor.close()
            if self.latency is not None:
                self.latency.close()

    def _loop(self) -> str:
        assert self.executor is not None
        while True:
            if self.fatal:
                return self._stop("failed", self.fatal)
            self._heartbeat()
            self.store.maybe_checkpoint()  # a lost -wal file then loses at most the last minute
            self._handle_commands()
            if not self.paused:
                self._dispatch()
            elif self.leases is not None:
                self.leases.stop_waiting()
            if self.tallies.finished() >= self.spec.search.max_trials and not self.running:
                return self._end("finished", None)
            for event in self.executor.poll(POLL_S):
                self._handle(event)
            if self.leases is not None:
                self.leases.release_idle()  # after the ends are stored: a waiting job may take the slots now
            if self.latency is not None:
                for trial_id, result in self.latency.collect():
                    self._finish(self.running.pop(trial_id), result)
            self._enforce_timeouts()
            failure = self.tallies.failure_policy(self.store, self.job_id, self.spec.search.max_failure_rate)
            if failure:
                return self._stop("failed", failure)
            self._emit_progress("running")

    # ---- history and resume ----------------------------------------------------------------------
    def _restore(self) -> list[Trial]:
        """Start-up's reading of the store (bounded: the job's trials once, then aggregate or indexed queries):
        the history replayed, unfinished trials requeued, the tallies. Returns the trials as read."""
        trials = self.store.trials(self.job_id)  # the replay, the tallies and the latency stage share them
        self._replay_history(trials)
        self.pending = self.store.requeue_unfinished(self.job_id)
        self.tallies = Tallies.load(self.store, self.job_id, self.direction, trials)
        self.done_at_start = self.tallies.finished()
        return trials

    def _start_latency(self, job_dir: Path, trials: list[Trial]) -> None:
        """The latency stage (its gate fitted once on the most recent measurements) and continue_from's
        checkpoints: the last of start-up before the workers start."""
        self.latency = LatencyStage.for_job(self.spec, self.space, job_dir, measured_latencies(trials))
        self._target_to_gate()
        self.checkpoints = self._checkpoints_to_continue()

    def _replay_history(self, trials: list[Trial]) -> None:
        """Resume: the stored asks and tells into the fresh strategy (``Strategy.replay``: exact for a short
        history, bounded for a long one), and the finished trials' reports into the early-stopping rule."""
        history: list[Asked | TrialOutcome] = []
        for seq, kind, trial in history_of(trials):
            if kind == "tell":
                history.append(outcome_of(trial, self.direction))
            elif not self.baseline.is_baseline(trial.number, trial.fingerprint):  # never asked of the strategy
                history.append(Asked(trial.number, trial.arch, trial.fingerprint or self.space.fingerprint(trial.arch)))
            self.seq = seq + 1
        self.strategy.replay(history)
        if self.rule is not None:
            finished = {t.id: t.number for t in trials if t.tell_seq is not None}
            for trial_id, step, values in self.store.job_metrics(self.job_id):
                value = values.get(self.spec.reward.metric)
                if trial_id in finished and isinstance(value, int | float):
                    self.rule.observe(finished[trial_id], step, score(float(value), self.direction))  # type: ignore[arg-type]

    def _start_baseline(self) -> None:
        """Queue the baseline as trial 0 of a fresh job; on a resume, take the latency target from its result."""
        if not self.baseline.enabled:
            return
        if self.tallies.next_number == 0:
            number = self.tallies.take_number()
            trial_id = self.store.add_trial(self.job_id, number, self.baseline.arch, self.baseline.fingerprint,
                                            self._next_seq())
            self.tallies.move(None, "queued")
            self.pending.insert(0, self.store.trial(trial_id))  # type: ignore[arg-type]
            self.store.add_event(self.job_id, f"trial 0 is the baseline {self.baseline.name}")
            return
        first = self.store.trial_by_number(self.job_id, 0)
        if first is None or first.status not in FINISHED:
            return
        if first.status == "succeeded" and _positive(first.metrics.get("latency_ms")):
            self.baseline.resolve(first.metrics["latency_ms"])
        elif self.baseline.waiting:
            self.fatal = self.baseline.failed_message(first, {"status": first.status, "reason": first.reason,
                                                              "message": first.message})

    def _target_to_gate(self) -> None:
        """The latency gate skips by the target in ms, known once a baseline-relative one is measured."""
        gate = self.latency.gate if self.latency is not None else None
        target = self.baseline.reward.latency_target_ms
        if gate is not None and not isinstance(target, str):
            gate.set_target(target)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    # ---- dispatch --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        assert self.executor is not None
        while self.executor.free_slots() > 0:
            trial = self.unplaced or self._next_trial()
            if trial is None:
                if self.leases is not None:
                    self.leases.stop_waiting()
                return
            slot = self._submit(trial)
            if slot is None:
                self.unplaced = trial  # stays queued until a slot's devices can be leased
                return
            self.unplaced = None
            self.store.start_trial(trial.id, slot)
            self.tallies.move("queued", "running")

    def _submit(self, trial: RunningTrial) -> str | None:
        """Hand a trial to the executor; with device leases, only on a slot leased for it (None: none free)."""
        assert self.executor is not None
        leased = self.leases.take() if self.leases is not None else None
        if self.leases is not None and leased is None:
            return None
        self.running[trial.id] = trial
        message = self._trial_message(trial)
        if self.leases is not None:
            return self.leases.executor.submit(message, leased)
        return self.executor.submit(message)

    def _next_trial(self) -> RunningTrial | None:
        if self.pending:
            queued = self.pending.pop(0)
            return RunningTrial(queued.id, queued.number, queued.arch,
                                baseline=self.baseline.is_baseline(queued.number, queued.fingerprint))
        if self.tallies.planned() >= self.spec.search.max_trials:
            return None
        for _ in range(MAX_SKIPS_PER_ASK):
            trial = self._ask_trial()
            if trial is not None:
                return trial
        raise NasappError(f"the latency gate skipped {MAX_SKIPS_PER_ASK} candidates in a row: raise"
                          " latency.skip_predicted_over or reward.latency_target_ms")

    def _ask_trial(self) -> RunningTrial | None:
        """A new trial from the strategy, or None when the latency gate skipped the candidate."""
        arch = self.strategy.ask(1)[0]
        number = self.tallies.take_number()
        trial_id = self.store.add_trial(self.job_id, number, arch, self.space.fingerprint(arch), self._next_seq())
        predicted, skip = self.latency.predict(arch) if self.latency is not None else (None, None)
        if skip:
            metrics = {"predicted_latency_ms": predicted}
            self.store.finish_trial(trial_id, "skipped", metrics=metrics, reason="predicted_latency", message=skip,
                                    tell_seq=self._next_seq())
            self.tallies.move(None, "skipped")
            self.strategy.tell(TrialOutcome(number, arch, "skipped", reason="predicted_latency", metrics=metrics))
            return None
        self.tallies.move(None, "queued")
        return RunningTrial(trial_id, number, arch, predicted_latency_ms=predicted)

    def _trial_message(self, trial: RunningTrial) -> dict[str, Any]:
        workdir = self.store.trial_dir(self.job_id, trial.number)
        resume_from = self.checkpoints.get(self.space.fingerprint(trial.arch)) if self.checkpoints else None
        return {
            **self.job_settings, "trial_id": trial.id, "number": trial.number, "arch": trial.arch,
            "seed": self.spec.seed * 100_003 + trial.number, "workdir": str(workdir),
            "log": str(workdir / "trial.log"), "resume_from": str(resume_from) if resume_from else None,
        }

    def _checkpoints_to_continue(self) -> dict[str, Any]:
        """``trainer.continue_from``: fingerprint -> the checkpoint its succeeded trial in that job saved."""
        source = self.spec.trainer.continue_from
        if source is None:
            return {}
        if self.store.job(source) is None:
            raise NasappError(f"trainer.continue_from = {source}: there is no job {source} in {self.store.path}")
        found = {}
        for trial in self.store.trials(source, "succeeded"):
            path = self.store.trial_dir(source, trial.number) / CHECKPOINT_FILE
            if path.is_file() and trial.fingerprint is not None:
                found[trial.fingerprint] = path
        return found

    # ---- events from the executor ----------------------------------------------------------------
    def _handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        trial = self.running.get(event.get("trial"))  # type: ignore[arg-type]
        if kind == "report" and trial is not None:
            self._report(trial, event)
        elif kind == "done" and trial is not None:
            result = _checked_result(event)
            if trial.failure is not None:  # it sent something unusable before it finished
                result = {"status": "failed", "reason": trial.failure.reason, "message": trial.failure.message}
                self._finish(self.running.pop(trial.id), result)
            elif trial.stop_at_step is not None:
                self._finish(self.running.pop(trial.id), self._pruned(trial, result))
            elif self.latency is not None and result.get("onnx") and result["status"] == "succeeded":
                self.latency.submit(trial.id, trial.arch, result)  # the trial stays running until measured
            else:
                self._finish(self.running.pop(trial.id), result)
        elif kind == "died" and trial is not None:
            reason, text = event["reason"], event["message"]
            if trial.failure is not None:
                reason, text = trial.failure.reason, trial.failure.message
            elif reason == "timeout":
                text = f"trial exceeded search.trial_timeout_s = {self.spec.search.trial_timeout_s:g}"
            self._finish(self.running.pop(trial.id), {"status": "failed", "reason": reason, "message": text})
        elif kind == "bad_message" and trial is not None:
            self._fail_running(trial, TrialFailed(
                "error", f"the trial wrote to nasapp's result pipe something that is not a message: {event['text']!r}"))
        elif kind == "fatal":
            raise NasappError(f"worker failed to start: {event['message']}")

    def _report(self, trial: RunningTrial, event: dict[str, Any]) -> None:
        try:
            step, metrics = checked_report(event.get("step"), event.get("metrics"))
        except TrialFailed as failure:
            self._fail_running(trial, failure)
            return
        self.store.add_metrics(trial.id, step, metrics)
        trial.last_step = step
        self.strategy.report(trial.number, step, metrics)
        value = metrics.get(self.spec.reward.metric)
        if self.rule is None or trial.stop_at_step is not None or value is None:
            return
        if trial.baseline or step >= self.spec.trainer.steps:  # never stop the baseline; at the last step: no saving
            self.rule.observe(trial.number, step, score(value, self.direction))  # type: ignore[arg-type]
            return
        if self.rule.should_stop(trial.number, step, score(value, self.direction)):  # type: ignore[arg-type]
            trial.stop_at_step = step
            assert self.executor is not None
            self.executor.request_stop(trial.id)

    def _fail_running(self, trial: RunningTrial, failure: TrialFailed) -> None:
        """A running trial sent something unusable: kill it; it ends failed with this reason."""
        if trial.failure is None:
            trial.failure = failure
            assert self.executor is not None
            self.executor.cancel(trial.id, failure.reason)

    def _pruned(self, trial: RunningTrial, result: dict[str, Any]) -> dict[str, Any]:
        metrics = {**(result.get("metrics") or {}), "pruned_at_step": trial.stop_at_step}
        return {"status": "pruned", "reason": "early_stopping", "metrics": metrics,
                "message": f"stopped at step {trial.stop_at_step} by early_stopping.rule ="
                           f" {self.spec.early_stopping.rule!r}"}

    def _finish(self, trial: RunningTrial, result: dict[str, Any]) -> None:
        """Record a trial's end; while a baseline-relative latency target is unknown, succeeded trials wait."""
        latency = (result.get("metrics") or {}).get("latency_ms")
        if trial.baseline and result["status"] == "succeeded" and _positive(latency):
            self.store.add_event(self.job_id, self.baseline.resolve(latency))
            self._target_to_gate()
            self._record(trial, result)
            for waiting, waited in self.baseline.deferred:
                self._record(waiting, waited)
            self.baseline.deferred.clear()
            return
        if self.baseline.waiting:
            if trial.baseline:
                self.fatal = self.baseline.failed_message(trial, result)
            elif result["status"] == "succeeded":
                self.baseline.deferred.append((trial, result))
                return
        self._record(trial, result)

    def _record(self, trial: RunningTrial, result: dict[str, Any]) -> None:
        metrics = dict(result.get("metrics") or {})
        if trial.predicted_latency_ms is not None:
            metrics["predicted_latency_ms"] = trial.predicted_latency_ms
        status, reason, text = result["status"], result.get("reason"), result.get("message")
        reward = None
        if status == "succeeded":
            reward, reason, text = self._reward(metrics)
            status = "succeeded" if reason is None else "failed"
        self.store.finish_trial(trial.id, status, reward=reward, metrics=metrics, reason=reason,
                                message=text, tell_seq=self._next_seq())
        self.tallies.move("running", status)
        self.tallies.record(reward, reason)
        state = "constraint" if reason == "constraint" else status
        self.strategy.tell(TrialOutcome(trial.number, trial.arch, state, score(reward, self.direction), reward, reason,
                                        trial.stop_at_step, metrics))
        if self.rule is not None:
            self.rule.finished(trial.number)
        if status == "failed":
            self.store.add_event(self.job_id, f"trial {trial.number} failed ({reason}): {text}", "warning")
        elif status == "pruned":
            self.store.add_event(self.job_id, f"trial {trial.number} pruned: {text}")

    def _reward(self, metrics: dict[str, float]) -> tuple[float | None, str | None, str | None]:
        result = compose_reward(self.baseline.reward, metrics)
        if result.warning and not self._warned_scale:
            self._warned_scale = True  # once per run: a metric on a 0-100 scale would flood the log
            self.store.add_event(self.job_id, result.warning, "warning")
        return result.reward, result.reason, result.message

    # ---- limits and commands ---------------------------------------------------------------------
    def _enforce_timeouts(self) -> None:
        assert self.executor is not None
        limit = self.spec.search.trial_timeout_s
        now = time.monotonic()
        for trial_id, started in self.executor.started_at().items():
            if now - started > limit:
                self.executor.cancel(trial_id, "timeout")

    def _handle_commands(self) -> None:
        now = time.monotonic()
        if now - self._last_command_poll < COMMAND_POLL_S:
            return
        self._last_command_poll = now
        assert self.token is not None
        commands, expired = self.store.take_commands(self.job_id, self.token, COMMAND_TTL_S)
        if expired:
            self.store.add_event(self.job_id, f"ignored {expired} command(s) sent to an earlier runner or more"
                                 f" than {COMMAND_TTL_S:.0f} s ago", "warning")
        for command in commands:
            name = command["command"]
            self.store.add_event(self.job_id, f"command: {name}")
            if name == "stop":
                raise StopRequested()
            if name in ("pause", "resume"):
                self.paused = name == "pause"
                self.store.update_job(self.job_id, status="paused" if self.paused else "running")

    # ---- endings -----------------------------------------------------------------------------------
    def _stop(self, status: str, message: str) -> str:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        for trial in self.running.values():
            self.store.finish_trial(trial.id, "cancelled", reason="cancelled", message=message)
            self.tallies.move("running", "cancelled")
        self.running.clear()
        for trial, _ in self.baseline.deferred:  # trained, but their reward waited for the baseline: run again
            self.store.finish_trial(trial.id, "cancelled", reason="cancelled", message=message)
            self.tallies.move("running", "cancelled")
        self.baseline.deferred.clear()
        if self.latency is not None:
            self.latency.forget()
        if self.executor is not None:
            self.executor.close()
        return self._end(status, message)

    def _end(self, status: str, message: str | None) -> str:
        assert self.token is not None
        if not self.store.release_job(self.job_id, self.token, status=status, message=message,
                                      finished_at=time.time()):
            self._lost = True
            raise NasappError(f"job {self.job_id}: another runner took this job over (`nasapp resume --force`);"
                              f" runner {os.getpid()} stopped without marking it {status}")
        self.store.add_event(self.job_id, f"job {status}" + (f": {message}" if message else ""),
                             "error" if status == "failed" else "info")
        self._emit_progress(status)
        return status

    def _emit_progress(self, status: str) -> None:
        if self.on_progress is None:
            return
        self.on_progress(Progress(
            job_id=self.job_id, done=self.tallies.finished(), total=self.spec.search.max_trials,
            running=self.tallies.counts["running"], failed=self.tallies.counts["failed"], best=self.tallies.best,
            elapsed_s=time.monotonic() - self.started, status=status, done_at_start=self.done_at_start,
        ))


def measured_latencies(trials: list[Trial]) -> list[tuple[Any, float]]:
    """(arch, latency_ms) of the measured succeeded trials, in the order they were told (the gate keeps the most
    recent ones)."""
    measured = [t for t in trials if t.status == "succeeded" and "latency_ms" in t.metrics]
    measured.sort(key=lambda t: t.tell_seq if t.tell_seq is not None else -1)
    return [(t.arch, t.metrics["latency_ms"]) for t in measured]


def job_settings(spec: JobSpec) -> dict[str, Any]:
    """The part of every trial message that is the same for all trials of a job."""
    return {
        "trainer": {"prebuilt": spec.trainer.prebuilt, "ref": spec.trainer.ref, "command": spec.trainer.command},
        "proxy": spec.trainer.proxy, "data": spec.data.model_dump(mode="json") if spec.data else None,
        "data_seed": spec.seed, "export": {"batch_size": spec.latency.batch_size, "opset": spec.latency.opset},
        "space": {"prebuilt": spec.space.prebuilt, "scale": spec.space.scale.model_dump()},
    }


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _checked_result(event: dict[str, Any]) -> dict[str, Any]:
    """A worker's ``done`` event with its metrics checked: a bad value turns success into a failure."""
    result: dict[str, Any] = {"status": event.get("status")}
    for key, limit in (("reason", 40), ("message", 4000), ("onnx", 4096)):
        if event.get(key) is not None:
            result[key] = str(event[key])[:limit]
    try:
        result["metrics"] = checked_metrics(event.get("metrics") or {}, what="the trial sent")
    except TrialFailed as failure:
        if event.get("status") == "succeeded":
            return {"status": "failed", "reason": failure.reason, "message": failure.message}
        result["metrics"] = {}
    if result.get("status") not in ("succeeded", "failed"):
        return {"status": "failed", "reason": "error", "message": f"the worker sent status {result.get('status')!r}"}
    return result


def _raise_stop(signum: int, frame: Any) -> None:
    raise StopRequested()
