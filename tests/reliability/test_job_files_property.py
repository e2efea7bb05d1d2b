"""Generated job files, valid and invalid. Every invalid one (a wrong type, an unknown key, a number out of
range, a weird string) is refused with one line that names the key; every valid one validates. Checked through
`parse_job` for many files, and through the real `nasapp` for a handful (exit 2, one line, no traceback, no job
row), and a few generated valid jobs run end to end with a toy trainer.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import MAX_SEED, MAX_TRIALS, JobSpec, parse_job
from nasapp.engine.jobs.validation import validate_job

# ---- valid job tables ----------------------------------------------------------------------------------

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # parallel's bound

printable = st.characters(categories=["L", "M", "N", "P", "S"]) | st.just(" ")
names = st.text(printable, min_size=1, max_size=100).filter(lambda s: s.strip() and s.isprintable())
strategies = st.sampled_from([{"name": "random"}]) | st.builds(
    lambda population, sample: {"name": "evolution", "population": population, "sample_size": min(sample, population)},
    st.integers(2, 64), st.integers(1, 64))


@st.composite
def valid_jobs(draw: Any, small: bool = False) -> dict[str, Any]:
    """A toy job (custom space and trainer, no data); `small`: a budget a test can run to its end."""
    return {
        "name": draw(names),
        "seed": draw(st.integers(0, MAX_SEED)),
        "space": {"ref": f"{TOY}:space"},
        "trainer": {"ref": f"{TOY}:train"},
        "strategy": draw(strategies),
        "search": {
            "max_trials": draw(st.integers(1, 3) if small else st.integers(1, MAX_TRIALS)),
            "parallel": draw(st.integers(1, min(2, CORES)) if small else st.integers(1, CORES) | st.just("auto")),
            "devices": "cpu",
            "trial_timeout_s": draw(st.floats(30, 1e6) if small else st.floats(1e-3, 1e9)),
            "max_failure_rate": draw(st.floats(0, 1)),
        },
        "reward": {"metric": "accuracy", "direction": draw(st.sampled_from(["max", "min"]))},
    }


# ---- one mistake in a valid table -----------------------------------------------------------------------

words = st.text(st.sampled_from("abcdxyz"), min_size=1, max_size=8)  # never a number, "inf" or "nan"
not_scalars = st.lists(st.integers(), max_size=2) | st.dictionaries(words, st.integers(), max_size=2)
fractional = st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not float(f).is_integer())
control = st.characters(categories=["Cc", "Cf", "Zl", "Zp"], exclude_characters="\x00")
bad_names = (
    st.integers() | st.floats() | st.booleans() | not_scalars
    | st.tuples(names, control, names).map("".join)  # a control character (ESC, bidi override, line break)
    | st.text(printable, min_size=101, max_size=300)  # too long
    | st.text(st.sampled_from(" \u3000"), min_size=1, max_size=5)  # only spaces
)
BAD_VALUES: dict[str, Any] = {
    "name": bad_names,
    "seed": st.integers(max_value=-1) | st.integers(min_value=MAX_SEED + 1) | fractional | words | not_scalars,
    "search.max_trials": st.integers(max_value=0) | st.integers(min_value=MAX_TRIALS + 1) | fractional | words
    | not_scalars,
    "search.parallel": st.integers(max_value=0) | words.filter(lambda w: w != "auto") | fractional | not_scalars,
    "search.trial_timeout_s": st.floats(max_value=0) | st.just(math.nan) | words | not_scalars,
    "search.max_failure_rate": st.floats(min_value=1, exclude_min=True) | st.floats(max_value=0, exclude_max=True)
    | st.just(math.nan) | words,
    "search.devices": words.filter(lambda w: w not in ("auto", "cpu", "cuda")) | st.integers() | st.just(["x"]),
    "reward.direction": words | st.integers(),
    "strategy.name": words.filter(lambda w: w not in ("random", "evolution")),
    "strategy.population": st.integers(max_value=1) | words,
}
TABLE_FIELDS = {"": set(JobSpec.model_fields), "search": {"executor", "max_trials", "parallel", "devices",
                "trial_timeout_s", "max_failure_rate"}, "reward": {"metric", "direction"}}


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *tables, key = path.split(".")
    for table in tables:
        raw = raw[table]
    raw[key] = value


@st.composite
def invalid_jobs(draw: Any) -> tuple[dict[str, Any], str]:
    """A valid job with one mistake, and the key path its message must name."""
    raw = copy.deepcopy(draw(valid_jobs()))  # never change a value hypothesis may hand out again
    if draw(st.booleans()):
        table = draw(st.sampled_from(sorted(TABLE_FIELDS)))
        key = draw(words.filter(lambda w: w not in TABLE_FIELDS[table]))
        path = f"{table}.{key}" if table else key
        _set(raw, path, draw(st.integers()))
        return raw, f"{path}: unknown key"
    path = draw(st.sampled_from(sorted(BAD_VALUES)))
    if path == "strategy.population":
        raw["strategy"] = {"name": "evolution"}
    _set(raw, path, draw(BAD_VALUES[path]))
    return raw, path


@given(valid_jobs())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_valid_job_validates(raw):
    spec = parse_job(raw)
    assert spec.name == raw["name"] and spec.seed == raw["seed"]
    assert spec.search.max_trials == raw["search"]["max_trials"]
    validate_job(spec)


@given(invalid_jobs())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_invalid_job_is_one_line_naming_the_key(case):
    raw, key = case
    with pytest.raises(NasappError) as caught:
        parse_job(raw, source="job.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("job.toml: "), message
    assert message.removeprefix("job.toml: ").startswith(key), (key, message)
    assert message.isprintable(), message  # a weird value is quoted with its escapes, never raw


# ---- the real CLI for a handful ---------------------------------------------------------------------------

def to_toml(raw: dict[str, Any]) -> str:
    """A job table as TOML: top-level keys, then one [table] per dict (nested dicts inline)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, str):  # a TOML basic string: JSON's escapes, plus DEL (JSON leaves it raw)
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"

    top = [f"{json.dumps(k)} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    tables = [f"[{json.dumps(k)}]\n" + "\n".join(f"{json.dumps(n)} = {value(x)}" for n, x in v.items())
              for k, v in raw.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def _jobs_in(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


@pytest.mark.slow  # the real `nasapp` for each example
@given(invalid_jobs())
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
def test_an_invalid_job_file_through_the_cli_is_one_line_and_exit_2(tmp_path, case):
    raw, key = case
    job = tmp_path / "job.toml"
    job.write_text(to_toml(raw), encoding="utf-8")
    db = tmp_path / "s.db"
    result = nasapp_cli("run", str(job), "--db", str(db), env=NO_TORCH)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and key.split(":")[0] in lines[0], result.stderr
    assert _jobs_in(db) == 0


@pytest.mark.slow  # real (toy) searches
@given(valid_jobs(small=True))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
def test_a_generated_valid_job_runs_to_its_end_through_the_cli(tmp_path, raw):
    job = tmp_path / "job.toml"
    job.write_text(to_toml(raw), encoding="utf-8")
    db = tmp_path / f"s{len(list(tmp_path.glob('*.db')))}.db"  # tmp_path is shared by the examples
    result = nasapp_cli("run", str(job), "--db", str(db), env=NO_TORCH)
    assert result.returncode == 0, (raw, result.stdout, result.stderr)
    (shown,) = json.loads(nasapp_cli("ls", "--json", "--db", str(db), check=True).stdout)
    assert shown["name"] == raw["name"] and shown["status"] == "finished"
    assert shown["counts"]["succeeded"] == raw["search"]["max_trials"]
