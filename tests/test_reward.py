"""Rewards: the MnasNet latency forms, memory limits, custom formulas and their safety."""

from __future__ import annotations

import math

import pytest

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import LatencySpec, RewardSpec
from nasapp.engine.rewards.formula import FormulaError, compile_formula
from nasapp.engine.rewards.reward import compose_reward, latency_factor, validate_reward_spec


def spec(**fields) -> RewardSpec:
    return RewardSpec(**fields)


# ---- plain and latency-aware rewards -------------------------------------------------------------

def test_the_plain_reward_is_the_metric():
    result = compose_reward(spec(), {"accuracy": 0.9, "params": 1e6})
    assert result.reward == 0.9 and result.reason is None and result.warning is None


@pytest.mark.parametrize("constraint", ["soft", "hard"])
def test_a_model_over_the_latency_target_earns_less_than_an_equally_accurate_one_under_it(constraint):
    reward = spec(latency_target_ms=20, constraint=constraint)
    fast = compose_reward(reward, {"accuracy": 0.9, "latency_ms": 15})
    slow = compose_reward(reward, {"accuracy": 0.9, "latency_ms": 30})
    assert fast.reward is not None and slow.reward is not None
    assert slow.reward < fast.reward


def test_soft_constraint_is_mnasnet_with_w_on_both_sides():
    reward = spec(latency_target_ms=20, latency_weight=-0.07)
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 10}).reward == pytest.approx(0.8 * 0.5 ** -0.07)
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 40}).reward == pytest.approx(0.8 * 2 ** -0.07)
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 20}).reward == pytest.approx(0.8)


def test_hard_constraint_gives_no_bonus_under_the_target_and_scales_by_target_over_it():
    reward = spec(latency_target_ms=20, constraint="hard")
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 5}).reward == pytest.approx(0.8)
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 20}).reward == pytest.approx(0.8)
    assert compose_reward(reward, {"accuracy": 0.8, "latency_ms": 40}).reward == pytest.approx(0.4)
    assert latency_factor(40, 20, constraint="hard") == pytest.approx(0.5)


def test_a_latency_target_without_a_measured_latency_says_to_enable_latency():
    result = compose_reward(spec(latency_target_ms=20), {"accuracy": 0.9})
    assert result.reward is None and result.reason == "error"
    assert "[latency]" in result.message and "cpu-ort" in result.message


def test_a_missing_or_nan_metric_is_an_error_or_nan():
    missing = compose_reward(spec(metric="top1"), {"accuracy": 0.9})
    assert missing.reason == "error" and "'top1'" in missing.message and "accuracy" in missing.message
    nan = compose_reward(spec(), {"accuracy": math.nan})
    assert nan.reward is None and nan.reason == "nan"


def test_every_metric_is_left_alone():
    metrics = {"accuracy": 0.9, "latency_ms": 30.0, "memory_mb": 500.0}
    before = dict(metrics)
    compose_reward(spec(latency_target_ms=20, memory_limit_mb=100), metrics)
    assert metrics == before


# ---- memory limit ---------------------------------------------------------------------------------

def test_a_trial_over_the_memory_limit_is_infeasible():
    result = compose_reward(spec(memory_limit_mb=100), {"accuracy": 0.99, "memory_mb": 123})
    assert result.reward is None and result.reason == "constraint"
    assert result.message == "memory 123 MB over reward.memory_limit_mb = 100"


def test_a_trial_within_the_memory_limit_keeps_its_reward():
    result = compose_reward(spec(memory_limit_mb=100, latency_target_ms=20),
                            {"accuracy": 0.9, "memory_mb": 99.5, "latency_ms": 20})
    assert result.reward == pytest.approx(0.9)


def test_the_memory_limit_also_applies_to_formulas_and_needs_memory_measured():
    over = compose_reward(spec(formula="accuracy", memory_limit_mb=10), {"accuracy": 0.9, "memory_mb": 11})
    assert over.reason == "constraint"
    unmeasured = compose_reward(spec(memory_limit_mb=10), {"accuracy": 0.9})
    assert unmeasured.reason == "error" and "memory_mb" in unmeasured.message
    unreadable = compose_reward(spec(memory_limit_mb=10), {"accuracy": 0.9, "memory_mb": None})
    assert unreadable.reason == "error" and "could not be read" in unreadable.message


# ---- warnings --------------------------------------------------------------------------------------

def test_a_reward_outside_the_usual_scale_gets_a_warning():
    tiny = compose_reward(spec(formula="accuracy / params"), {"accuracy": 0.9, "params": 40_000})
    assert tiny.reward == pytest.approx(2.25e-05)
    assert tiny.warning == "reward 2.3e-05 is outside [1e-3, 10]: check the formula's scale"
    big = compose_reward(spec(metric="top1_percent"), {"top1_percent": 93.0})
    assert big.reward == 93.0 and "outside [1e-3, 10]" in big.warning
    assert compose_reward(spec(), {"accuracy": 0.0}).warning is None  # an untrained model: no noise
    assert compose_reward(spec(), {"accuracy": 0.5}).warning is None


# ---- formulas --------------------------------------------------------------------------------------

def test_a_formula_replaces_the_metric():
    reward = spec(formula="accuracy * (latency_ms / 20) ** -0.07 - 0.01 * log(params)")
    metrics = {"accuracy": 0.9, "latency_ms": 30.0, "params": 1000.0}
    expected = 0.9 * 1.5 ** -0.07 - 0.01 * math.log(1000.0)
    assert compose_reward(reward, metrics).reward == pytest.approx(expected)


def test_formula_grammar():
    metrics = {"a": 4.0, "b": 2.0, "latency_ms": 9.0}
    cases = {
        "a + b * 2": 8.0, "(a + b) * 2": 12.0, "-a": -4.0, "+a": 4.0, "a ** 0.5": 2.0, "2 ** -1": 0.5,
        "a / b": 2.0, "a - -b": 6.0, "min(a, b, 3)": 2.0, "max(a, b)": 4.0, "log(exp(1))": 1.0,
        "log(8, 2)": 3.0, "sqrt(latency_ms)": 3.0, "abs(b - a)": 2.0, "1e-3 * a": 0.004, "3": 3.0,
    }
    for text, value in cases.items():
        assert compile_formula(text).evaluate(metrics) == pytest.approx(value), text
    assert compile_formula("accuracy * (latency_ms / 20) ** -0.07").names == {"accuracy", "latency_ms"}
    assert compile_formula("max(a, 1)").names == {"a"}


@pytest.mark.parametrize("text, problem", [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('true')", "attribute access"),
    ("accuracy.real", "attribute access"),
    ("(lambda: 1)()", "only the functions"),
    ("lambda: 1", "lambda is not allowed"),
    ("[a for a in b]", "comprehensions are not allowed"),
    ("sum(a for a in b)", "unknown function 'sum'"),
    ("max(a for a in b)", "comprehensions are not allowed"),
    ("a[0]", "indexing"),
    ("'text'", "strings are not allowed"),
    ("a < b", "comparisons are not allowed"),
    ("a if b else 1", "'if ... else' is not allowed"),
    ("a and b", "'and'/'or' are not allowed"),
    ("pow(a, 2)", "unknown function 'pow'"),
    ("eval('1')", "unknown function 'eval'"),
    ("_secret", "name '_secret' is not allowed"),
    ("log", "'log' is a function"),
    ("sqrt(a, b)", "sqrt() takes 1 argument(s), got 2"),
    ("max(key=a)", "takes no keyword arguments"),
    ("min(*a)", "'*' unpacking is not allowed"),
    ("a // b", "operator FloorDiv is not allowed"),
    ("a % b", "operator Mod is not allowed"),
    ("(a := 1)", "':=' is not allowed"),
    ("True", "True is not allowed"),
    ("", "empty formula"),
])
def test_unsafe_or_unsupported_formulas_are_rejected_when_the_job_is_loaded(text, problem):
    with pytest.raises(FormulaError) as caught:
        compile_formula(text)
    message = str(caught.value)
    assert message.startswith("reward.formula: ") and problem in message, message


def test_formula_errors_name_the_column():
    with pytest.raises(NasappError, match=r"reward.formula: unknown function 'pow' at column 12"):
        compile_formula("accuracy * pow(latency_ms, 2)")
    with pytest.raises(NasappError, match=r"reward.formula: syntax error at column 12"):
        compile_formula("accuracy * (latency_ms / ")
    with pytest.raises(NasappError, match=r"syntax error at column"):
        compile_formula("accuracy latency_ms")


def test_a_formula_names_the_missing_metrics_and_what_was_reported():
    formula = compile_formula("accuracy * (latency_ms / 20) ** -0.07")
    with pytest.raises(FormulaError, match=r"reward.formula uses 'latency_ms' but the trial reported only: "
                                           r"accuracy, params"):
        formula.evaluate({"accuracy": 0.9, "params": 10})
    result = compose_reward(spec(formula=formula.text), {"accuracy": 0.9, "params": 10})
    assert result.reward is None and result.reason == "error" and "'latency_ms'" in result.message


@pytest.mark.parametrize("text, metrics, problem", [
    ("log(x)", {"x": 0.0}, "log(0) is undefined"),
    ("sqrt(x)", {"x": -1.0}, "sqrt((-1)) is undefined"),
    ("1 / x", {"x": 0.0}, "division by zero"),
    ("x ** 0.5", {"x": -8.0}, "is not a real number"),
    ("9 ** 9 ** 9", {}, "overflow"),
    ("exp(x)", {"x": 1e6}, "overflows"),
    ("x * 1e308 * 10", {"x": 1.0}, "gave inf"),
])
def test_math_errors_are_clear(text, metrics, problem):
    with pytest.raises(FormulaError, match="reward.formula") as caught:
        compile_formula(text).evaluate(metrics)
    assert problem in str(caught.value)
    result = compose_reward(spec(formula=text), metrics)
    assert result.reward is None and result.reason == "error" and problem in result.message


def test_non_numeric_metrics_are_errors_and_nan_metrics_are_nan():
    assert compose_reward(spec(formula="a * 2"), {"a": "high"}).reason == "error"
    assert compose_reward(spec(formula="a * 2"), {"a": math.nan}).reason == "nan"


# ---- validation at job creation -------------------------------------------------------------------

def test_validation_rejects_combinations_that_cannot_work():
    with pytest.raises(NasappError, match='direction = "min"'):
        validate_reward_spec(spec(latency_target_ms=20, direction="min"))
    with pytest.raises(NasappError, match="unknown function 'pow'"):
        validate_reward_spec(spec(formula="pow(accuracy, 2)"))
    with pytest.raises(NasappError, match="latency_weight: 0.2 is positive"):
        validate_reward_spec(spec(latency_target_ms=20, latency_weight=0.2))
    with pytest.raises(NasappError, match=r'\[latency\] device = "cpu-ort"'):
        validate_reward_spec(spec(latency_target_ms=20), LatencySpec().model_dump())
    with pytest.raises(NasappError, match="reward.formula uses latency_ms measured latency"):
        validate_reward_spec(spec(formula="accuracy / latency_ms"), LatencySpec())
    command_only = LatencySpec(command=["./time-on-phone.sh"])
    assert validate_reward_spec(spec(latency_target_ms=20), command_only) == []
    with pytest.raises(NasappError, match=r"memory_limit_mb needs memory_mb, which ONNX Runtime measures"):
        validate_reward_spec(spec(memory_limit_mb=100), command_only)
    with pytest.raises(NasappError, match=r"reward.formula uses memory_mb"):
        validate_reward_spec(spec(formula="accuracy - memory_mb / 1000"), LatencySpec())


def test_validation_accepts_good_specs_and_returns_notes():
    assert validate_reward_spec(spec()) == []
    assert validate_reward_spec(spec(metric="loss", direction="min")) == []
    assert validate_reward_spec(spec(latency_target_ms=20), LatencySpec(device="cpu-ort").model_dump()) == []
    # a formula may minimise; it owns the trade-off
    assert validate_reward_spec(spec(formula="loss * latency_ms", direction="min")) == []
    notes = validate_reward_spec(spec(formula="accuracy", latency_target_ms=20))
    assert any("not applied" in note for note in notes)
    notes = validate_reward_spec(spec(latency_target_ms=20, constraint="hard", latency_weight=-0.3))
    assert any("not used" in note for note in notes)


def test_explain_reward_says_how_the_reward_was_formed():
    from nasapp.engine.rewards.reward import explain_reward

    metrics = {"accuracy": 0.9, "latency_ms": 2.0, "memory_mb": 3.0}
    soft = {"latency_target_ms": 1.0, "memory_limit_mb": 10}
    reward = compose_reward(soft, metrics).reward
    assert explain_reward(soft, metrics, reward) == (
        f"reward = accuracy 0.9 x (latency 2 ms / target 1 ms) ^ -0.07 (soft constraint) = {reward:.4g};"
        " memory 3 MB within reward.memory_limit_mb = 10")
    hard = {"latency_target_ms": 4.0, "constraint": "hard"}
    assert explain_reward(hard, metrics, 0.9) == ("reward = accuracy 0.9 x (latency 2 ms / target 4 ms) ^ 0"
                                                  " (hard constraint) = 0.9")
    assert explain_reward({}, metrics, 0.9) == "reward = accuracy 0.9"
    assert explain_reward({"formula": "accuracy - latency_ms / 100"}, metrics, 0.88) == \
        "reward = accuracy - latency_ms / 100 = 0.88"
