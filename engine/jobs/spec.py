"""Job files: TOML validated into a typed spec. A bad file gets one message naming the key path."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from nasapp.engine.data.kinds import DATA_KINDS
from nasapp.engine.data.options import DataSpec, FileData
from nasapp.engine.early_stopping import EARLY_STOPPING, EarlyStoppingOptions
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.executors import EXECUTORS, SearchSpec
from nasapp.engine.latency.devices import LATENCY_DEVICES, LatencySpec
from nasapp.engine.registry import STORED, Registry
from nasapp.engine.rewards.options import RewardSpec
from nasapp.engine.strategies import STRATEGIES, StrategyOptions
from nasapp.engine.trainers import PREBUILT_TRAINERS, TrainerSpec, validate_trainer
from nasapp.store.records import Job


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScaleSpec(_Table):
    width: float = Field(1.0, gt=0)
    depth: float = Field(1.0, gt=0)
    resolution: int | None = Field(None, gt=0)


class SpaceSpec(_Table):
    prebuilt: str | None = None
    ref: str | None = None
    scale: ScaleSpec = ScaleSpec()

    @model_validator(mode="after")
    def _one_source(self) -> SpaceSpec:
        if (self.prebuilt is None) == (self.ref is None):
            raise ValueError(
                "give exactly one of space.prebuilt (e.g. \"mnasnet\") or space.ref (\"pkg.mod:space\")"
            )
        return self

    @property
    def label(self) -> str:
        return self.prebuilt or self.ref or "?"


class ProxySearchSpec(_Table):
    """``[proxy_search]``: the candidate grid and thresholds of `nasapp proxy search` (its options override)."""

    steps: list[int] = []  # empty: the job's trainer.steps
    data_fraction: list[float] = []  # empty: the job's data.data_fraction
    scale: list[float] = []  # empty: 1 (the job's own width and depth)
    target: float = Field(0.65, gt=0, le=1)
    max_p: float = Field(0.05, gt=0, le=1)
    time_limit_s: float | None = Field(None, gt=0)
    checks: int = Field(4, ge=1)


def _registry_field(registry: Registry[Any]) -> Any:
    """A job-file table validated by the registry entry its discriminating key names."""
    return Field(default_factory=lambda: registry.validate({}))


MAX_NAME_LENGTH = 100
MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits; a trial's seed (seed * 100003 + number) fits 64
MAX_TRIALS = 1_000_000


class JobSpec(_Table):
    """A whole job file, validated. Plug-in tables hold their entry's options model (a subclass of the type)."""

    name: str
    seed: int = 0
    space: SpaceSpec
    data: SerializeAsAny[DataSpec] | None = None
    trainer: SerializeAsAny[TrainerSpec] = _registry_field(PREBUILT_TRAINERS)
    strategy: SerializeAsAny[StrategyOptions] = _registry_field(STRATEGIES)
    early_stopping: SerializeAsAny[EarlyStoppingOptions] = _registry_field(EARLY_STOPPING)
    search: SerializeAsAny[SearchSpec] = _registry_field(EXECUTORS)
    reward: RewardSpec = RewardSpec()
    latency: SerializeAsAny[LatencySpec] = _registry_field(LATENCY_DEVICES)
    proxy_search: ProxySearchSpec | None = None

    _data = field_validator("data", mode="before")(DATA_KINDS.validator())
    _trainer = field_validator("trainer", mode="before")(validate_trainer)
    _strategy = field_validator("strategy", mode="before")(STRATEGIES.validator())
    _early_stopping = field_validator("early_stopping", mode="before")(EARLY_STOPPING.validator())
    _search = field_validator("search", mode="before")(EXECUTORS.validator())
    _latency = field_validator("latency", mode="before")(LATENCY_DEVICES.validator())

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or len(value) > MAX_NAME_LENGTH or not value.isprintable():
            raise ValueError(f"must be 1 to {MAX_NAME_LENGTH} printable characters (no control characters, tabs"
                             " or line breaks) and not only spaces")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"must be an integer from 0 to {MAX_SEED}")
        return value

    @field_validator("search")
    @classmethod
    def _max_trials(cls, value: SearchSpec) -> SearchSpec:
        if value.max_trials > MAX_TRIALS:
            raise ValueError(f"search.max_trials: must be from 1 to {MAX_TRIALS:,} (got {value.max_trials})")
        return value

    @model_validator(mode="after")
    def _trainer_needs(self) -> JobSpec:
        if not self.trainer.prebuilt:
            return self
        entry = PREBUILT_TRAINERS.get(self.trainer.prebuilt)
        if entry.needs_data and self.data is None:
            raise ValueError(f"the prebuilt trainer {entry.name!r} needs a [data] table (e.g. kind = \"digits\")")
        if entry.needs_prebuilt_space and not self.space.prebuilt:
            raise ValueError("the prebuilt trainer builds models of prebuilt spaces only: set space.prebuilt,"
                             " or give trainer.ref / trainer.command for a custom space")
        if isinstance(self.data, FileData) and not self.data.path:
            raise ValueError(f"data.kind = \"{self.data.kind}\" needs data.path")
        return self

    @property
    def direction(self) -> str:
        return self.reward.direction


# ---- loading -----------------------------------------------------------------------------------

# the loc part pydantic adds for each member of a union ("int", "literal['auto']", "list[int]", ...): not a key
_UNION_MEMBER = re.compile(r"^(int|str|float|bool|bytes|none|list|dict|[\w-]+\[.*\])$")


def _key_path(loc: tuple[Any, ...]) -> str:
    """The key an error is about: its location up to the first union member (`search.devices.list[int].0` is
    about `search.devices`)."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, str) and _UNION_MEMBER.match(part):
            break
        parts.append(str(part))
    return ".".join(parts)


def _format_errors(source: str, error: ValidationError) -> str:
    """One line per key that is wrong, naming the key path (a value that fits no member of a union is one line,
    not one per member); at most five lines."""
    groups: dict[str, list[Any]] = {}
    for item in error.errors():
        groups.setdefault(_key_path(item["loc"]), []).append(item)
    lines = []
    for path, items in groups.items():
        first = items[0]
        messages = [item["msg"].removeprefix("Value error, ") for item in items]
        if first["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key")
        elif first["type"] == "missing":
            lines.append(f"{path}: missing (required)")
        elif len(items) == 1 and (messages[0].startswith(f"{path}.") or not path):  # it names its own key
            lines.append(messages[0])
        else:
            lines.append(f"{path}: {'; or '.join(dict.fromkeys(messages))} (got {_shown(first['input'])})")
    lines = lines[:5]
    return f"{source}: " + ("\n  ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines))


def _shown(value: Any, limit: int = 80) -> str:
    """A value as the error message quotes it: its repr (control characters escaped), cut to `limit`."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resolve_ref(ref: str, base: Path, key: str) -> str:
    """`module:attr` stays as it is; `path/file.py:attr` becomes absolute (relative to the job file)."""
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise NasappError(f"{key}: expected \"module:name\" or \"path/to/file.py:name\", got {ref!r}")
    if module.endswith(".py"):
        path = (base / module).resolve()
        if not path.is_file():
            raise NasappError(f"{key}: file not found: {path}")
        return f"{path}:{attr}"
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise NasappError(f"{key}: cannot find module '{module}' (is it installed or on PYTHONPATH?)")
    return ref


def _absolute_if_file(part: str, base: Path) -> str:
    """`["python", "train.py"]`: a part naming a file beside the job file becomes an absolute path."""
    candidate = base / part
    return str(candidate.resolve()) if not Path(part).is_absolute() and candidate.is_file() else part


def _resolve_command(command: list[str], base: Path) -> list[str]:
    command = [_absolute_if_file(part, base) for part in command]
    if command and command[0] in ("python", "python3"):  # the interpreter running nasapp, with torch and nasapp
        command[0] = sys.executable
    return command


def _resolve_paths(spec: JobSpec, base: Path) -> JobSpec:
    if spec.space.ref:
        spec.space.ref = _resolve_ref(spec.space.ref, base, "space.ref")
    if spec.trainer.ref:
        spec.trainer.ref = _resolve_ref(spec.trainer.ref, base, "trainer.ref")
    if spec.trainer.command:
        spec.trainer.command = _resolve_command(spec.trainer.command, base)
    if spec.latency.command:
        spec.latency.command = _resolve_command(spec.latency.command, base)
    if isinstance(spec.data, FileData) and spec.data.path:
        path = (base / os.path.expanduser(spec.data.path)).resolve()
        if not path.exists():
            raise NasappError(f"data.path: not found: {path}")
        spec.data.path = str(path)
    return spec


def parse_job(raw: dict[str, Any], source: str = "job", base: Path | None = None) -> JobSpec:
    """Validate a job table (already parsed TOML) into a JobSpec with absolute paths."""
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as error:
        raise NasappError(_format_errors(source, error)) from None
    return _resolve_paths(spec, base or Path.cwd())


def stored_spec(raw: dict[str, Any]) -> JobSpec:
    """The spec of a job read back from the store (already validated when the job was created).

    Keys that an older nasapp wrote with its defaults and that the entry's options no longer know are dropped.
    """
    try:
        return JobSpec.model_validate(raw, context={STORED: True})
    except ValidationError as error:
        raise NasappError(_format_errors("stored job spec", error)) from None


def read_job_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    if file.is_dir():
        raise NasappError(f"{file} is a folder; give a job file (TOML)")
    if not file.is_file():
        raise NasappError(f"job file not found: {file}")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise NasappError(f"cannot read the job file {file}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NasappError(f"{file}: not UTF-8 text (byte {data[error.start]:#04x} on line {line}); save the job"
                          " file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise NasappError(f"{file}: not valid TOML: {error}") from None


def apply_overrides(raw: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """CLI options override the file: max_trials/parallel go into [search], seed to the top."""
    raw = {**raw, "search": dict(raw.get("search", {}))}
    for key in ("max_trials", "parallel"):
        if overrides.get(key) is not None:
            raw["search"][key] = overrides[key]
    if overrides.get("seed") is not None:
        raw["seed"] = overrides["seed"]
    return raw


def load_job(path: str | os.PathLike[str], **overrides: Any) -> JobSpec:
    raw = apply_overrides(read_job_file(path), **overrides)
    return parse_job(raw, source=str(path), base=Path(path).resolve().parent)


@functools.lru_cache(maxsize=256)
def _stored_spec_from_text(text: str) -> JobSpec:
    return stored_spec(json.loads(text))


def job_spec(job: Job) -> JobSpec:
    """The typed spec of a job read from the store (parsed once per distinct spec)."""
    return _stored_spec_from_text(json.dumps(job.spec, sort_keys=True))
