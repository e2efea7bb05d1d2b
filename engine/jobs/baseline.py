"""``[search] baseline``: the reference architecture a job trains and measures first, as its trial 0.

Managed NAS starts from a baseline: a scaled-down search compares against the scaled baseline and may take its
latency target from it (``reward.latency_target_ms = "0.8 * baseline"``). The baseline is a name from the
prebuilt space's baselines (``nasapp spaces mnasnet`` lists them) or, for any space, an architecture table.
"""

from __future__ import annotations

from typing import Any

from nasapp.engine.errors import NasappError


def baseline_arch(spec: Any, space: Any) -> Any | None:
    """The canonical architecture of ``spec.search.baseline`` (None when unset); NasappError when unknown."""
    given = spec.search.baseline
    if given is None:
        return None
    if isinstance(given, str):
        if not spec.space.prebuilt:
            raise NasappError(f"search.baseline = {given!r} names a baseline of a prebuilt space; for"
                              " space.ref give the architecture itself, e.g. search.baseline = {depth = 2, ...}")
        from nasapp.engine.spaces.prebuilt import get_prebuilt

        prebuilt = get_prebuilt(spec.space.prebuilt)
        if given not in prebuilt.baselines:
            known = ", ".join(prebuilt.baselines) or "none (give an architecture table instead)"
            raise NasappError(f"search.baseline: {given!r} is not a baseline of space {prebuilt.name};"
                              f" its baselines: {known}")
        return space.canonical(prebuilt.baselines[given])
    try:
        space.validate(given)
    except NasappError as error:
        raise NasappError(f"search.baseline: {error}") from None
    return space.canonical(given)


def check_baseline(spec: Any, space: Any) -> None:
    """A baseline that cannot be built, or a target relative to a baseline the job does not have, fails here."""
    arch = baseline_arch(spec, space)
    target = spec.reward.latency_target_ms
    if spec.reward.target_ratio is not None and arch is None:
        raise NasappError(f"reward.latency_target_ms = {target!r} is relative to the baseline, but the job has"
                          " none: set [search] baseline (e.g. baseline = \"mnasnet-b1\"; `nasapp spaces NAME`"
                          " lists a space's baselines)")


def without_baseline(raw: dict[str, Any], baseline_ms: float | None = None) -> dict[str, Any]:
    """A job table for a tool's own job (proxy select/search/variance, stage 2): no baseline trial of its own.

    A latency target relative to the baseline becomes milliseconds when the source job measured its baseline
    (``baseline_ms``), and is dropped otherwise: the tools rank models by their metric, not by the target.
    Changes ``raw`` in place and returns it.
    """
    from nasapp.engine.rewards.options import baseline_ratio

    if raw.get("search"):
        raw["search"]["baseline"] = None
    reward = raw.get("reward") or {}
    ratio = baseline_ratio(reward.get("latency_target_ms"))
    if ratio is not None:
        reward["latency_target_ms"] = ratio * baseline_ms if baseline_ms else None
    return raw


def measured_baseline_ms(store: Any, job: Any) -> float | None:
    """The latency trial 0 of ``job`` measured, when the job has a baseline and it succeeded."""
    if not (job.spec.get("search") or {}).get("baseline"):
        return None
    first = store.trial_by_number(job.id, 0)
    latency = first.metrics.get("latency_ms") if first is not None and first.status == "succeeded" else None
    return float(latency) if isinstance(latency, int | float) and latency > 0 else None
