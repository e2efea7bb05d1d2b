"""No value a trainer sends can crash the runner: bad final metrics, bad reports and garbage on the result pipe
fail their trial with a reason naming the key, and the job goes on."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import FIXTURES, NO_TORCH, write_job
from hypothesis import given, settings
from hypothesis import strategies as st

from nasapp.engine.errors import TrialFailed
from nasapp.engine.execution.runner import Runner
from nasapp.engine.execution.values import checked_metrics, checked_report
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store

VALUES = FIXTURES / "values.py"
TOY = FIXTURES / "toy.py"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


# ---- the boundary checks ---------------------------------------------------------------------------------

@given(json_values)
@settings(max_examples=300, deadline=None)
def test_any_json_value_as_final_metrics_is_accepted_as_floats_or_refused_with_a_reason(value):
    try:
        clean = checked_metrics(value)
    except TrialFailed as failure:
        assert failure.reason in ("error", "nan", "nonfinite") and failure.message
        return
    assert all(isinstance(k, str) and isinstance(v, float) and math.isfinite(v) for k, v in clean.items())
    json.dumps(clean, allow_nan=False)  # storable and printable as standard JSON


@given(json_values, json_values)
@settings(max_examples=300, deadline=None)
def test_any_json_value_as_a_report_is_accepted_or_refused_with_a_reason(step, metrics):
    try:
        clean_step, clean = checked_report(step, metrics)
    except TrialFailed as failure:
        assert failure.reason == "error" and failure.message
        return
    assert 0 <= clean_step <= 2**53 and all(math.isfinite(v) for v in clean.values())


def test_numpy_scalars_and_0d_tensors_are_numbers():
    import torch

    assert checked_metrics({"a": np.float32(0.5), "b": np.int64(3), "c": np.array(2.0), "d": torch.tensor(1.5)}) == \
        {"a": 0.5, "b": 3.0, "c": 2.0, "d": 1.5}
    with pytest.raises(TrialFailed, match=r"v = ndarray array\(\[1, 2\]\), not a number"):
        checked_metrics({"v": np.array([1, 2])})
    with pytest.raises(TrialFailed, match="flag = bool True, not a number"):
        checked_metrics({"flag": True})


@pytest.mark.parametrize("step", [10**20, 1e300, -1, 1.5, "3", float("nan")])
def test_steps_that_sqlite_or_json_cannot_hold_are_refused(step):
    with pytest.raises(TrialFailed, match="step"):
        checked_report(step, {"accuracy": 0.5})


# ---- end to end: the runner goes on ------------------------------------------------------------------------

def _toml_table(options: dict) -> str:
    """An inline TOML table (strings in JSON's escaping, which TOML's basic strings share; numbers as they are)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items()) + " }"


def _job(tmp_path, trainer: str, options: dict, name: str) -> int:
    path = write_job(tmp_path, f"""
        name = "{name}"
        [space]
        ref = "{TOY}:small_space"
        [trainer]
        ref = "{VALUES}:{trainer}"
        options = {_toml_table(options)}
        [strategy]
        name = "random"
        [search]
        max_trials = 1
        parallel = 1
        devices = "cpu"
        trial_timeout_s = 60
        max_failure_rate = 1.0
    """, name=f"{name}.toml")
    store = Store(tmp_path / "nasapp.db")
    return create_job(store, load_job(path))


CASES = [
    ("returns", {"kind": "np_float32"}, "succeeded", None),
    ("returns", {"kind": "np_int64"}, "succeeded", None),
    ("returns", {"kind": "np_0d"}, "succeeded", None),
    ("returns", {"kind": "np_vector"}, "failed", "accuracy = ndarray"),
    ("returns", {"kind": "inf"}, "failed", "accuracy = inf"),
    ("returns", {"kind": "minus_inf"}, "failed", "accuracy = -inf"),
    ("returns", {"kind": "nan"}, "failed", "accuracy = NaN"),
    ("returns", {"kind": "huge_int"}, "failed", "accuracy = inf"),
    ("returns", {"kind": "tuple"}, "failed", "returned tuple"),
    ("returns", {"kind": "none"}, "failed", "returned NoneType"),
    ("returns", {"kind": "object"}, "failed", "accuracy = object"),
    ("returns", {"result": '{"accuracy": "high"}'}, "failed", "accuracy = str 'high'"),
    ("reports", {"step": 10**20, "report": '{"accuracy": 0.5}'}, "failed", "step"),
    ("reports", {"step": 1e300, "report": '{"accuracy": 0.5}'}, "failed", "step"),
    ("reports", {"step": 3, "report": '{"accuracy": [1]}'}, "failed", "accuracy = list"),
    ("writes_garbage", {"x": 1}, "failed", "not a message: 'this is not json'"),
]


@pytest.mark.slow
def test_bad_values_fail_their_trial_and_the_runner_goes_on(tmp_path):
    store = Store(tmp_path / "nasapp.db")
    for index, (trainer, options, status, message) in enumerate(CASES):
        job_id = _job(tmp_path, trainer, options, f"case{index}")
        assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished", (trainer, options)
        (trial,) = store.trials(job_id)
        assert trial.status == status, (options, trial)
        if message:
            assert message in (trial.message or ""), (options, trial.message)
        json.dumps(trial.metrics, allow_nan=False)
