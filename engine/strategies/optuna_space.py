"""Any nasapp space as Optuna define-by-run parameters, through the space's encoding alone.

The walk goes over ``space.slots()`` in order and asks the Optuna trial for a value only at the positions the
architecture uses, so conditional choices and variable repeats become Optuna's conditional parameters. A slot's
activity depends only on earlier choice and length slots, so the active positions are learnt again (decode,
then encode) only after one of those was suggested.

Parameter names are slot paths (``blocks[3].kernel``, ``head{mlp}.width``); a choice is a categorical over its
option indices, an integer or a repeat's length an int, a floating dimension a float (log scale when ``log``).
Torch-free; Optuna is imported only by :func:`param_distributions`; the trial is only called through its
``suggest_*`` methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.dims import SENTINEL, Slot


class SuggestingTrial(Protocol):
    """The part of ``optuna.Trial`` the walk uses."""

    def suggest_categorical(self, name: str, choices: list[int]) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


def suggest_arch(trial: SuggestingTrial, space: Any, slots: list[Slot]) -> Any:
    """The architecture whose every used dimension ``trial`` suggested (named by slot path)."""
    vector = [_probe(slot) for slot in slots]
    active = _active(space, vector)
    suggested: dict[int, float] = {}
    for i, slot in enumerate(slots):
        if not active[i] or slot.low == slot.high:  # unused, or fixed (its probe already is its value)
            continue
        vector[i] = suggested[i] = _suggest(trial, slot)
        if slot.kind in ("choice", "length"):
            active = _active(space, vector)
    arch = space.decode(vector)
    _check_agrees(space, arch, suggested, slots)
    return arch


def arch_params(space: Any, slots: list[Slot], arch: Any) -> dict[str, Any]:
    """The parameters :func:`suggest_arch` would need to give ``arch`` (for ``study.enqueue_trial``).

    Unused positions hold SENTINEL, which is out of range for all but a dimension whose range holds -1; such a
    parameter is passed too and simply never asked for when unused.
    """
    params: dict[str, Any] = {}
    for slot, value in zip(slots, space.encode(arch), strict=True):
        if slot.low < slot.high and slot.low <= value <= slot.high:
            params[slot.path] = float(value) if slot.kind == "floating" else int(value)
    return params


def param_distributions(slots: list[Slot], params: dict[str, Any]) -> dict[str, Any]:
    """The Optuna distributions :func:`suggest_arch` gives the parameters ``params`` (for ``create_trial``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    for slot in slots:
        if slot.path not in params:
            continue
        if slot.kind == "choice":
            found[slot.path] = CategoricalDistribution(list(range(int(slot.high) + 1)))
        elif slot.kind in ("integer", "length"):
            found[slot.path] = IntDistribution(int(slot.low), int(slot.high))
        else:
            found[slot.path] = FloatDistribution(slot.low, slot.high, log=slot.log)
    return found


def _probe(slot: Slot) -> float:
    """A value in the slot's range that is not SENTINEL, so that "used" and "unused" stay distinguishable."""
    return slot.low if slot.low != SENTINEL else slot.high


def _active(space: Any, vector: list[float]) -> list[bool]:
    """Which positions the architecture of ``vector`` uses (every unset position holds its probe)."""
    return [value != SENTINEL for value in space.encode(space.decode(vector))]


def _suggest(trial: SuggestingTrial, slot: Slot) -> float:
    if slot.kind == "choice":
        return float(trial.suggest_categorical(slot.path, list(range(int(slot.high) + 1))))
    if slot.kind in ("integer", "length"):
        return float(trial.suggest_int(slot.path, int(slot.low), int(slot.high)))
    if slot.kind == "floating":
        return float(trial.suggest_float(slot.path, slot.low, slot.high, log=slot.log))
    raise SpaceError(f"{slot.path}: no Optuna parameter for a slot of kind {slot.kind!r}")


def _check_agrees(space: Any, arch: Any, suggested: dict[int, float], slots: list[Slot]) -> None:
    """The decoded architecture holds exactly the suggested values and uses no other free position (else the
    walk misread the encoding)."""
    for i, (slot, value) in enumerate(zip(slots, space.encode(arch), strict=True)):
        if i in suggested and value != suggested[i]:
            raise SpaceError(f"{slot.path}: Optuna suggested {suggested[i]!r} but the architecture holds {value!r}")
        if i not in suggested and value != SENTINEL and slot.low < slot.high:
            raise SpaceError(f"{slot.path}: the architecture uses a position the walk did not suggest")
