"""The trials table's filter: text such as `accuracy > 0.9 and op = b` read into the conditions the store
filters on (store/queries.ordered_trial_ids), so a filter over 100,000 trials is one SQL query.

A condition is NAME OPERATOR VALUE. NAME is `reward`, `number` (or `#`), `status`, a metric the job's trials
report, or a decision of the job's space (`blocks[3].kernel`, `3<-0`; a repeat's name compares its length).
Conditions are joined by `and` (or commas).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nasapp.engine.analysis.decisions import Decision
from nasapp.store.db import TRIAL_STATES
from nasapp.store.queries import Condition

# An operator with spaces around it first: decision names may hold "<" (NAS-Bench-201's edge "3<-0").
_SPACED = re.compile(r"^(.+?)\s+(<=|>=|!=|==|=|<|>)\s+(.+)$")
_OPERATOR = re.compile(r"<=|>=|!=|==|=|<|>")
_JOINS = re.compile(r"\s+and\s+|\s*,\s*", re.IGNORECASE)
_PART = re.compile(r"([^.\[\]{}]+)|\[(\d+)\]|\{[^}]*\}")


class FilterError(ValueError):
    """Text the filter cannot read; its message says what to change (one line)."""


@dataclass(frozen=True)
class Fields:
    """What a filter of one job can name: its metrics and its space's decisions."""

    metrics: list[str]
    decisions: list[Decision]

    def known(self, name: str) -> str | None:
        try:
            return self.resolve(name)
        except FilterError:
            return None

    def resolve(self, name: str) -> str:
        """A name the user typed as a store field ("reward", "m:accuracy", "a:$.op", ...)."""
        lowered = name.lower()
        if lowered in ("reward", "status", "number"):
            return lowered
        if name in ("#", "trial"):
            return "number"
        if name in self.metrics:
            return f"m:{name}"
        for decision in self.decisions:
            if decision.path == name:
                return f"{'n' if decision.kind == 'length' else 'a'}:{json_path_of(name)}"
        known = ", ".join([*self.metrics[:6], *(d.path for d in self.decisions[:6])])
        raise FilterError(f"no field {name!r}: give reward, status, number, a metric or a decision ({known} …)")


def json_path_of(path: str) -> str:
    """A decision's path as a JSON path into the architecture: blocks[3].kernel -> $."blocks"[3]."kernel"
    (a conditional option's {name} is not part of the architecture's value and is left out)."""
    out = "$"
    for key, index in ((m.group(1), m.group(2)) for m in _PART.finditer(path) if not m.group(0).startswith("{")):
        out += f"[{index}]" if index is not None else '."' + key.replace('"', '\\"') + '"'
    return out


def parse_filter(text: str, fields: Fields) -> tuple[Condition, ...]:
    """The conditions of `text` (empty text: none); raises FilterError."""
    text = text.strip()
    if not text:
        return ()
    if re.search(r"\s+or\s+", text, re.IGNORECASE):
        raise FilterError("`or` is not supported: conditions are joined by `and`")
    return tuple(_condition(part, fields) for part in _JOINS.split(text) if part.strip())


def _splits(text: str) -> list[tuple[str, str, str]]:
    """The ways to read `text` as NAME OPERATOR VALUE: around a spaced operator, else around each operator."""
    spaced = _SPACED.match(text)
    if spaced is not None:
        return [tuple(part.strip() for part in spaced.groups())]  # type: ignore[misc]
    return [(text[:m.start()].strip(), m.group(0), text[m.end():].strip()) for m in _OPERATOR.finditer(text)
            if text[:m.start()].strip() and text[m.end():].strip()]


def _condition(text: str, fields: Fields) -> Condition:
    splits = _splits(text.strip())
    if not splits:
        raise FilterError(f"cannot read {text.strip()!r}: write NAME OPERATOR VALUE, e.g. accuracy > 0.9")
    resolved = [(fields.known(name), name, operator, raw) for name, operator, raw in splits]
    # the first reading whose name is a field ("3<-0=none": the edge 3<-0), else the first one's message
    field, name, operator, raw = next((r for r in resolved if r[0] is not None), resolved[0])
    field = field or fields.resolve(name)
    operator = "=" if operator == "==" else operator
    value = _value(raw)
    if field == "status" and value not in TRIAL_STATES:
        raise FilterError(f"no status {raw!r}: one of {', '.join(TRIAL_STATES)}")
    if field in ("reward", "number") or field.startswith(("m:", "n:")):
        if not isinstance(value, int | float):
            raise FilterError(f"{name} compares with a number, not {raw!r}")
    return field, operator, value


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw.lower() in ("true", "false"):
        return int(raw.lower() == "true")  # JSON booleans read back from SQLite as 1 and 0
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw
