"""How much of the reward's variance each decision explains: Optuna's fANOVA over an in-memory study that holds
the sampled trials.

Every trial must hold every parameter (Optuna's evaluators otherwise keep only the trials that have them all),
so a decision a trial does not use (a conditional one, or an element past a repeat's length) gets a level of
its own: an extra category, or a value just below the range. The forest is smaller than Optuna's default
(64 trees of depth 64 take 20 s on 2,000 trials of six choices; 16 trees of depth 6 give the same ranking in
under a second), and seeded, so the figures are the same on every run.

Parameters are named and typed as the Optuna strategies name them (``optuna_space.arch_params``: the slot path;
an option index, an int, or a float), read from the decision table rather than encoding each architecture again.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from nasapp.engine.analysis.decisions import Decision, DecisionTable

SEED = 0
N_TREES = 16
MAX_DEPTH = 6
UNUSED = -1  # the category of a choice a trial does not use
EVALUATOR = f"fANOVA (Optuna, {N_TREES} trees of depth {MAX_DEPTH}, seed {SEED})"


def fanova_importance(table: DecisionTable) -> dict[str, float]:
    """Each decision's share of the explained variance (they sum to 1; all 0 when nothing varies)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    columns = [c for c in range(len(table.decisions)) if _varies(table.values[:, c])]
    if not columns:
        return {d.path: 0.0 for d in table.decisions}
    distributions = {table.decisions[c].path: _distribution(table.decisions[c], np.isnan(table.values[:, c]).any())
                     for c in columns}
    study = optuna.create_study(direction="maximize")  # fANOVA explains variance: the direction does not matter
    study.add_trials([
        optuna.trial.create_trial(params=_params(table, row, columns), distributions=distributions,
                                  value=float(table.rewards[row]))
        for row in range(len(table.rewards))])
    evaluator = FanovaImportanceEvaluator(n_trees=N_TREES, max_depth=MAX_DEPTH, seed=SEED)
    found = get_param_importances(study, evaluator=evaluator, params=list(distributions), normalize=True)
    return {d.path: _finite(found.get(d.path, 0.0)) for d in table.decisions}


def _varies(column: np.ndarray) -> bool:
    """More than one level among the trials (unused counts as a level)."""
    used = column[~np.isnan(column)]
    return len(np.unique(used)) + (len(used) < len(column)) > 1


def _distribution(decision: Decision, unused: bool) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    low, high = decision.low, decision.high
    if decision.categorical:
        return CategoricalDistribution(([UNUSED] if unused else []) + list(range(int(high) + 1)))
    if decision.kind in ("integer", "length"):
        return IntDistribution(int(low) - unused, int(high))
    if decision.log:
        return FloatDistribution(low / 10 if unused else low, high, log=True)
    return FloatDistribution(low - (high - low) if unused else low, high)


def _params(table: DecisionTable, row: int, columns: list[int]) -> dict[str, Any]:
    """A row's parameters; a decision the trial does not use at its own level."""
    params = {}
    for c in columns:
        decision, value = table.decisions[c], float(table.values[row, c])
        params[decision.path] = (_unused_value(decision) if np.isnan(value)
                                 else value if decision.kind == "floating" else int(value))
    return params


def _unused_value(decision: Decision) -> Any:
    if decision.categorical:
        return UNUSED
    if decision.kind in ("integer", "length"):
        return int(decision.low) - 1
    return decision.low / 10 if decision.log else decision.low - (decision.high - decision.low)


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0
