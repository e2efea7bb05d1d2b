"""The ``[data]`` table: the part every data kind shares. Each kind's model (engine/data/kinds.py) adds its keys."""

from __future__ import annotations

from pydantic import Field

from nasapp.engine.registry import Options


class DataSpec(Options):
    """``kind`` picks the registered data kind; kinds that read files add ``path`` (see ``FileData``)."""

    kind: str = "digits"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    data_fraction: float = Field(1.0, gt=0, le=1)



class FileData(DataSpec):
    """A data kind read from a file or folder at ``path`` (made absolute, relative to the job file)."""

    path: str | None = None
