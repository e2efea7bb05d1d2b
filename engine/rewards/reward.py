"""A trial's reward from its metrics: the job's ``[reward]`` table applied to what the trial reported.

Three forms (see docs/rewards.md):

- plain: ``reward = metrics[metric]``.
- latency-aware (``latency_target_ms`` set), MnasNet's ``reward = metric * (latency_ms / target) ** w``:
  ``constraint = "soft"`` uses ``w = latency_weight`` on both sides of the target (alpha = beta = w, a
  faster model gains a little, a slower one loses a little); ``constraint = "hard"`` uses alpha = 0 at or
  under the target (no bonus for being faster) and beta = -1 over it (reward falls in proportion).
- custom: ``formula`` (see :mod:`nasapp.engine.rewards.formula`) replaces both of the above.

``memory_limit_mb`` applies to every form: a trial whose ``memory_mb`` is over the limit is infeasible and
gets no reward (``reason = "constraint"``). Metrics are never changed here; the caller stores them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from nasapp.engine.errors import NasappError
from nasapp.engine.latency.devices import LatencySpec
from nasapp.engine.rewards.formula import Formula, FormulaError, compile_formula
from nasapp.engine.rewards.options import RewardSpec

REWARD_RANGE = (1e-3, 10.0)  # |reward| outside this gets a warning (0 does not: an untrained model)
_RANGE_TEXT = "[1e-3, 10]"
HARD_ALPHA, HARD_BETA = 0.0, -1.0  # MnasNet's hard-constraint exponents (under / over the target)
ENABLE_LATENCY = 'set [latency] device = "cpu-ort" (or [latency] command) in the job file'
ENABLE_MEMORY = 'set [latency] device = "cpu-ort" in the job file'
TIMED_METRICS = ("latency_ms", "latency_p90_ms")  # only a latency measurement produces these


@dataclass(frozen=True)
class RewardResult:
    """``reward`` is None when the trial gets none; then ``reason`` ("error", "nan" or "constraint") and
    ``message`` say why. ``warning`` is a note on a reward that was given (its scale looks wrong)."""

    reward: float | None
    reason: str | None = None
    message: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.reward is not None


def _spec(reward_spec: RewardSpec | Mapping[str, Any] | None) -> RewardSpec:
    """The typed ``[reward]`` table (a plain table is validated; a bad one raises NasappError naming the key)."""
    if isinstance(reward_spec, RewardSpec):
        return reward_spec
    try:
        return RewardSpec.model_validate(dict(reward_spec or {}))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise NasappError(f"reward.{where}: {first['msg']} (got {first['input']!r})") from None


_FORMULAS: dict[str, Formula] = {}


def _formula(text: str) -> Formula:
    found = _FORMULAS.get(text)
    if found is None:
        found = _FORMULAS[text] = compile_formula(text)
    return found


def validate_reward_spec(reward_spec: RewardSpec | Mapping[str, Any],
                         latency_spec: LatencySpec | Mapping[str, Any] | None = None) -> list[str]:
    """Check a ``[reward]`` table when a job is created; raise NasappError on a combination that cannot
    work, return notes (plain sentences) on settings that are legal but probably not what was meant.

    ``latency_spec`` (the job's ``[latency]`` table, optional): when given, a reward that needs measured
    latency while no latency device is set is an error here rather than a failure of every trial.
    """
    spec = _spec(reward_spec)
    notes: list[str] = []
    for key in ("latency_target_ms", "memory_limit_mb"):
        value = getattr(spec, key)
        if isinstance(value, float | int) and not math.isfinite(value):
            raise NasappError(f"reward.{key}: {value!r} must be a finite positive number")
    weight = spec.latency_weight
    if not math.isfinite(weight):
        raise NasappError(f"reward.latency_weight: {weight!r} is not a finite number; MnasNet uses -0.07")
    needs: list[str] = []
    if spec.formula is not None:
        formula = _formula(spec.formula)  # raises FormulaError (a NasappError) naming the column
        needs = [n for n in TIMED_METRICS if n in formula.names]
        if spec.latency_target_ms is not None:
            notes.append("reward.formula replaces the MnasNet latency term, so reward.latency_target_ms is"
                         " not applied to the reward (it still sets the target of"
                         " [latency] skip_predicted_over); put the latency term into the formula")
        if spec.metric != spec.default("metric"):
            notes.append("reward.metric is not used when reward.formula is set")
    else:
        if not isinstance(spec.metric, str) or not spec.metric:
            raise NasappError("reward.metric: give the name of a reported metric, e.g. \"accuracy\"")
        if spec.latency_target_ms is not None:
            needs = ["latency_ms"]
            if spec.direction == "min":
                raise NasappError(
                    "reward.latency_target_ms with reward.direction = \"min\": the MnasNet latency factor"
                    " multiplies a metric to maximise (like accuracy), so with a metric to minimise it would"
                    " reward slower models; use direction = \"max\", or write the trade-off yourself in"
                    " reward.formula (e.g. \"loss * (latency_ms / 20) ** 0.07\")")
            if weight > 0:
                raise NasappError(f"reward.latency_weight: {weight:g} is positive, which rewards slower"
                                  " models; use a negative weight (MnasNet: -0.07, steeper: -0.15)")
            if weight == 0 and spec.constraint == "soft":
                notes.append("reward.latency_weight = 0: latency does not change the reward")
            if spec.constraint == "hard" and weight != spec.default("latency_weight"):
                notes.append("reward.latency_weight is not used with constraint = \"hard\" (MnasNet's hard"
                             " constraint: no bonus under the target, reward x target / latency over it)")
    if latency_spec is not None:
        latency = latency_spec if isinstance(latency_spec, LatencySpec) else LatencySpec.model_validate(latency_spec)
        if needs and not latency.enabled:
            what = "reward.formula uses " + needs[0] if spec.formula else "reward.latency_target_ms needs"
            raise NasappError(f"{what} measured latency, but no latency device is set: {ENABLE_LATENCY}")
        wants_memory = spec.memory_limit_mb is not None or (
            spec.formula is not None and "memory_mb" in _formula(spec.formula).names)
        if wants_memory and not latency.measures_memory:
            what = "reward.memory_limit_mb needs" if spec.memory_limit_mb is not None else \
                "reward.formula uses"
            raise NasappError(f"{what} memory_mb, which ONNX Runtime measures: {ENABLE_MEMORY}")
    return notes


def compose_reward(reward_spec: RewardSpec | Mapping[str, Any], metrics: Mapping[str, Any]) -> RewardResult:
    """The reward of a trial that reported ``metrics`` (a finished trial's final metrics).

    ``reward_spec`` is the job's RewardSpec (a partial dict also works). Never
    raises for a trial's numbers: problems come back as ``reward=None`` with a reason and message.
    """
    spec = _spec(reward_spec)
    try:
        if spec.formula is not None:
            result = _formula_reward(spec, metrics)
        else:
            result = _metric_reward(spec, metrics)
    except FormulaError as error:
        return RewardResult(None, "error", str(error))
    except Exception as error:  # noqa: BLE001 - a trial's numbers must never crash the runner
        return RewardResult(None, "error", f"the reward could not be computed: {type(error).__name__}: {error}")
    if result.reward is None:
        return result
    infeasible = _memory_check(spec, metrics)
    if infeasible is not None:
        return infeasible
    return RewardResult(result.reward, warning=_scale_warning(result.reward, spec))


def _number(metrics: Mapping[str, Any], name: str) -> float | RewardResult:
    value = metrics[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return RewardResult(None, "error", f"the trial reported {name} = {value!r}, not a number")
    if math.isnan(value):
        return RewardResult(None, "nan", f"'{name}' is NaN")
    return float(value)


def _formula_reward(spec: RewardSpec, metrics: Mapping[str, Any]) -> RewardResult:
    formula = _formula(spec.formula)
    for name in sorted(formula.names & metrics.keys()):
        value = _number(metrics, name)
        if isinstance(value, RewardResult):
            return value
    return RewardResult(formula.evaluate(metrics))


def _metric_reward(spec: RewardSpec, metrics: Mapping[str, Any]) -> RewardResult:
    metric = spec.metric
    if metric not in metrics:
        names = ", ".join(sorted(metrics)) or "nothing"
        return RewardResult(None, "error", f"the trainer returned no '{metric}' (reward.metric); it returned"
                                           f" {names}")
    value = _number(metrics, metric)
    if isinstance(value, RewardResult):
        return value
    target = spec.latency_target_ms
    if target is None:
        return RewardResult(value)
    if isinstance(target, str):  # the runner turns it into milliseconds once the baseline is measured
        return RewardResult(None, "error", f"reward.latency_target_ms = {target!r}: the baseline's latency is"
                                           " not known yet")
    if "latency_ms" not in metrics:
        return RewardResult(None, "error", f"reward.latency_target_ms = {target:g} needs the trial's"
                                           f" latency_ms, which was not measured: {ENABLE_LATENCY}")
    latency = _number(metrics, "latency_ms")
    if isinstance(latency, RewardResult):
        return latency
    if not math.isfinite(latency) or latency <= 0:
        return RewardResult(None, "error", f"latency_ms = {latency!r} is not a positive time")
    if value < 0:
        return RewardResult(None, "error", f"reward.metric '{metric}' = {value:g} is negative; the latency"
                                           " factor scales a positive metric (use reward.formula instead)")
    return RewardResult(value * latency_factor(latency, target, spec.latency_weight, spec.constraint))


def explain_reward(reward_spec: RewardSpec | Mapping[str, Any], metrics: Mapping[str, Any],
                   reward: float | None) -> str:
    """How ``reward`` came from a trial's ``metrics``, in one line (a baseline-relative target given in ms)."""
    spec = _spec(reward_spec)
    result = "-" if reward is None else f"{reward:.4g}"
    if spec.formula is not None:
        return f"reward = {spec.formula} = {result}"
    value = metrics.get(spec.metric)
    base = f"{spec.metric} {value:.4g}" if isinstance(value, int | float) else spec.metric
    target, latency = spec.latency_target_ms, metrics.get("latency_ms")
    if not isinstance(target, int | float) or not isinstance(latency, int | float) or latency <= 0:
        text = f"reward = {base}"
    else:
        exponent = spec.latency_weight if spec.constraint == "soft" else \
            (HARD_ALPHA if latency <= target else HARD_BETA)
        text = (f"reward = {base} x (latency {latency:.4g} ms / target {target:.4g} ms) ^ {exponent:g}"
                f" ({spec.constraint} constraint) = {result}")
    memory = metrics.get("memory_mb")
    if spec.memory_limit_mb is not None and isinstance(memory, int | float):
        text += f"; memory {memory:.4g} MB within reward.memory_limit_mb = {spec.memory_limit_mb:g}"
    return text


def latency_factor(latency_ms: float, target_ms: float, weight: float = -0.07,
                   constraint: str = "soft") -> float:
    """MnasNet's ``(latency / target) ** w``: ``w = weight`` both sides when soft; when hard, ``w = 0`` at
    or under the target and ``w = -1`` over it."""
    ratio = latency_ms / target_ms
    if constraint == "hard":
        exponent = HARD_ALPHA if ratio <= 1.0 else HARD_BETA
    else:
        exponent = weight
    return ratio ** exponent


def _memory_check(spec: RewardSpec, metrics: Mapping[str, Any]) -> RewardResult | None:
    limit = spec.memory_limit_mb
    if limit is None:
        return None
    if "memory_mb" not in metrics:
        return RewardResult(None, "error", f"reward.memory_limit_mb = {limit:g} needs the trial's memory_mb,"
                                           f" which was not measured: {ENABLE_MEMORY}")
    if metrics["memory_mb"] is None:
        return RewardResult(None, "error", f"reward.memory_limit_mb = {limit:g}: the trial's memory_mb could"
                                           " not be read on this machine, so the limit cannot be checked;"
                                           " remove reward.memory_limit_mb")
    memory = _number(metrics, "memory_mb")
    if isinstance(memory, RewardResult):
        return memory
    if memory > limit:
        return RewardResult(None, "constraint", f"memory {memory:.4g} MB over reward.memory_limit_mb = {limit:g}")
    return None


def _scale_warning(reward: float, spec: RewardSpec) -> str | None:
    low, high = REWARD_RANGE
    size = abs(reward)
    if size == 0.0 or low <= size <= high:
        return None
    source = "the formula's scale" if spec.formula is not None else \
        f"the scale of reward.metric '{spec.metric}'"
    return f"reward {reward:.2g} is outside {_RANGE_TEXT}: check {source}"
