"""Job files: TOML validated into a typed spec. A bad file gets one message naming the key path."""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasapp.engine.errors import NasappError

STRATEGIES = ("random", "evolution")


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


class DataSpec(_Table):
    kind: Literal["digits", "npz", "imagefolder", "csv"] = "digits"
    path: str | None = None
    label_column: str = "label"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    data_fraction: float = Field(1.0, gt=0, le=1)
    image_size: list[int] | None = None
    grayscale: bool = False

    @model_validator(mode="after")
    def _path_needed(self) -> DataSpec:
        if self.kind != "digits" and not self.path:
            raise ValueError(f"data.kind = \"{self.kind}\" needs data.path")
        return self


class TrainerSpec(_Table):
    prebuilt: Literal["classification"] | None = None
    ref: str | None = None
    command: list[str] | None = None
    steps: int = Field(200, gt=0)
    batch_size: int = Field(64, gt=0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = Field(None, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    eval_every: int = Field(50, gt=0)
    ema: float = Field(0.0, ge=0, lt=1)
    grad_clip: float = Field(0.0, ge=0)
    amp: bool = True
    channels_last: bool = True
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_kind(self) -> TrainerSpec:
        given = [k for k in ("prebuilt", "ref", "command") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give only one of trainer.prebuilt, trainer.ref, trainer.command (got {given})")
        if not given:
            self.prebuilt = "classification"
        return self

    @property
    def proxy(self) -> dict[str, Any]:
        """The settings a trainer sees as ``ctx.proxy``."""
        return self.model_dump(exclude={"prebuilt", "ref", "command"})


class StrategySpec(_Table):
    name: str = "evolution"
    population: int = Field(16, ge=2)
    sample_size: int = Field(4, ge=1)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy '{name}'; choose one of: {', '.join(STRATEGIES)}")
        return name

    @model_validator(mode="after")
    def _sample_fits(self) -> StrategySpec:
        if self.sample_size > self.population:
            raise ValueError("strategy.sample_size must not exceed strategy.population")
        return self


class SearchSpec(_Table):
    max_trials: int = Field(40, gt=0)
    parallel: int | Literal["auto"] = "auto"
    devices: str | list[int] = "auto"
    trial_timeout_s: float = Field(600.0, gt=0)
    max_failure_rate: float = Field(0.2, ge=0, le=1)

    @field_validator("parallel")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be 1 or more, or \"auto\"")
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: str | list[int]) -> str | list[int]:
        if isinstance(value, str) and value not in ("auto", "cpu", "cuda"):
            raise ValueError("must be \"auto\", \"cpu\", \"cuda\" or a list of GPU indices like [0, 1]")
        return value


class RewardSpec(_Table):
    """How a trial's metrics become its reward (see engine/reward.py)."""

    metric: str = "accuracy"
    direction: Literal["max", "min"] = "max"
    latency_target_ms: float | None = Field(None, gt=0)
    latency_weight: float = -0.07  # MnasNet's w in metric * (latency / target) ** w
    constraint: Literal["soft", "hard"] = "soft"
    memory_limit_mb: float | None = Field(None, gt=0)
    formula: str | None = None  # e.g. "accuracy * (latency_ms / 20) ** -0.07"; replaces the above


class LatencySpec(_Table):
    """Where and how candidates are timed (see engine/latency/)."""

    device: Literal["none", "cpu-ort"] = "none"
    command: list[str] | None = None  # a program that gets an ONNX path and prints a latency in ms
    batch_size: int = Field(1, gt=0)
    threads: int = Field(1, gt=0)
    warmup: int = Field(10, ge=0)
    runs: int = Field(200, gt=0)
    opset: int = Field(17, ge=11)
    pin_cores: list[int] | None = None  # run measurements on these cores only
    skip_predicted_over: float | None = Field(None, gt=1)  # skip candidates predicted > this x target

    @property
    def enabled(self) -> bool:
        return self.device != "none" or bool(self.command)


class JobSpec(_Table):
    name: str = Field(min_length=1)
    seed: int = 0
    space: SpaceSpec
    data: DataSpec | None = None
    trainer: TrainerSpec = TrainerSpec()
    strategy: StrategySpec = StrategySpec()
    search: SearchSpec = SearchSpec()
    reward: RewardSpec = RewardSpec()
    latency: LatencySpec = LatencySpec()

    @model_validator(mode="after")
    def _prebuilt_trainer_needs(self) -> JobSpec:
        if self.trainer.prebuilt and self.data is None:
            raise ValueError("the prebuilt trainer needs a [data] table (e.g. kind = \"digits\")")
        if self.trainer.prebuilt and not self.space.prebuilt:
            raise ValueError("the prebuilt trainer builds models of prebuilt spaces only: set space.prebuilt,"
                             " or give trainer.ref / trainer.command for a custom space")
        return self


# ---- loading -----------------------------------------------------------------------------------

def _format_errors(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors()[:5]:
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key")
        elif item["type"] == "missing":
            lines.append(f"{path}: missing (required)")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {message} (got {item['input']!r})")
    return f"{source}: " + ("\n  ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines))


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
    if spec.data and spec.data.path:
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


def read_job_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise NasappError(f"job file not found: {file}")
    try:
        return tomllib.loads(file.read_text())
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
