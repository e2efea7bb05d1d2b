"""The ``[trainer]`` table: which trainer runs a trial and the proxy-task settings it is given (torch-free)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from nasapp.engine.proxies import check_names
from nasapp.engine.registry import Options


class ProxySettings(Options):
    """What a trainer sees as ``ctx.proxy``: the proxy task's length, optimiser and the free ``options`` table."""

    steps: int = Field(200, gt=0)
    # the length of full training the learning-rate schedule spans (None: steps). A proxy that trains 1/30 of
    # full training sets steps = full/30 and schedule_steps = full, so a continued run follows the same curve
    schedule_steps: int | None = Field(None, gt=0)
    checkpoint: bool = False  # save checkpoint.pt at the end, so a later cycle can continue from it
    batch_size: int = Field(64, gt=0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = Field(None, gt=0)  # None: the trainer's default for the optimiser
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    eval_every: int = Field(50, gt=0)
    ema: float = Field(0.0, ge=0, lt=1)
    grad_clip: float = Field(0.0, ge=0)
    amp: bool = True
    channels_last: bool = True
    zero_cost: list[str] = []  # proxies (engine/proxies) scored at initialisation, metrics zc_<name>
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _schedule_covers_steps(self) -> ProxySettings:
        if self.schedule_steps is not None and self.schedule_steps < self.steps:
            raise ValueError(f"trainer.schedule_steps ({self.schedule_steps}) must be at least trainer.steps"
                             f" ({self.steps}): the schedule spans full training, steps is where this one stops")
        return self

    @field_validator("zero_cost", mode="before")
    @classmethod
    def _known_proxies(cls, names: Any) -> list[str]:
        return check_names(names)


class TrainerSpec(ProxySettings):
    """Exactly one of ``prebuilt`` (a registered trainer, the default), ``ref`` or ``command``."""

    prebuilt: str | None = None
    ref: str | None = None
    command: list[str] | None = None
    # a job id: each trial continues from the checkpoint of the same architecture in that job (a succeeded
    # trial that saved one with trainer.checkpoint = true), and starts over where it has none
    continue_from: int | None = Field(None, ge=1)

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
        return self.model_dump(include=set(ProxySettings.model_fields))
