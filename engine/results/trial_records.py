"""Trials as plain typed records for Python users (`JobHandle.trials()`, `.best()`, `.pareto()`), and as rows
of a pandas DataFrame when pandas is installed (it is not a dependency of nasapp)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.store import Store, Trial


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a job: its outcome, metrics, architecture, where it ran and when (epoch seconds)."""

    number: int
    status: str
    reward: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    arch: Any = None
    device: str | None = None
    reason: str | None = None  # why it failed, was pruned or cancelled
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    dir: Path | None = None  # its folder: trial.log, metrics, the ONNX file

    @classmethod
    def of(cls, trial: Trial, store: Store | None = None) -> TrialRecord:
        duration = (trial.finished_at - trial.started_at
                    if trial.finished_at is not None and trial.started_at is not None else None)
        folder = store.trial_dir(trial.job_id, trial.number).absolute() if store is not None else None
        return cls(number=trial.number, status=trial.status, reward=trial.reward, metrics=dict(trial.metrics),
                   arch=trial.arch, device=trial.device, reason=trial.reason, message=trial.message,
                   started_at=trial.started_at, finished_at=trial.finished_at, duration_s=duration, dir=folder)

    def metric(self, name: str) -> Any:
        """``reward`` or one of the trial's metrics (None when missing)."""
        return self.reward if name == "reward" else self.metrics.get(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        """A flat row: the fields, with each metric as its own column (``metric.NAME`` when a field has that
        name)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "metrics"}
        for name, value in self.metrics.items():
            out[f"metric.{name}" if name in out else name] = value
        return out


def to_frame(records: list[TrialRecord]) -> Any:
    """The records as a pandas DataFrame indexed by trial number, one column per field and per metric."""
    try:
        import pandas
    except ImportError:
        raise NasappError("as_frame needs pandas, which nasapp does not install: pip install pandas") from None
    columns = [f.name for f in fields(TrialRecord) if f.name != "metrics"]
    rows = [record.row() for record in records]
    extra = sorted({key for row in rows for key in row} - set(columns))
    return pandas.DataFrame(rows, columns=columns + extra).set_index("number", drop=False)
