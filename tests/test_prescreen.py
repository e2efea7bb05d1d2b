"""The zero-cost pre-screen: the best-scoring proposal of each pool is trained, the rest are told to the base
strategy as skipped; a real job scores its candidates with a proxy on its own data; mistakes are one line."""

from __future__ import annotations

import optuna
import pytest
from helpers import TOY, nasapp_cli, write_job

import nasapp as nas
from nasapp.engine.strategies import TrialOutcome, make_strategy
from nasapp.store import Store

SPACE = nas.space({f"d{i}": nas.choice([0, 1, 2, 3]) for i in range(8)})


def proxy(arch) -> float:
    return float(sum(arch.values()))


def test_the_best_scoring_proposal_is_trained_and_the_rest_are_skipped():
    strategy = make_strategy({"name": "prescreen", "base": {"name": "tpe"}, "pool": 6, "proxy": "params"},
                             SPACE, seed=3)
    pools = []
    strategy.scorer = lambda archs: pools.append(list(archs)) or [proxy(a) for a in archs]
    for number in range(4):
        (arch,) = strategy.ask(1)
        assert proxy(arch) == max(proxy(a) for a in pools[-1])
        strategy.tell(TrialOutcome(number, arch, "succeeded", score=1.0 + number, reward=1.0 + number))
    trials = strategy.base.study.trials
    states = [t.state for t in trials]
    assert len(trials) == 4 * 6
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4  # the trained ones, with their scores
    assert states.count(optuna.trial.TrialState.FAIL) == 4 * 5  # the skipped ones
    assert sorted(t.value for t in trials if t.value is not None) == [1.0, 2.0, 3.0, 4.0]


def test_a_pre_screen_cannot_screen_itself_or_an_unknown_strategy():
    with pytest.raises(ValueError, match="another pre-screen"):
        make_strategy({"name": "prescreen", "base": {"name": "prescreen"}}, SPACE, seed=0)
    with pytest.raises(Exception, match="unknown strategy 'bayes'"):
        make_strategy({"name": "prescreen", "base": {"name": "bayes"}}, SPACE, seed=0)


MNASNET = 'prebuilt = "mnasnet"\nscale = { width = 0.25, depth = 0.5 }'


def digits_job(tmp_path, strategy: str, space: str = MNASNET, trainer: str = 'prebuilt = "classification"'):
    return write_job(tmp_path, f"""
name = "screened"
seed = 2
[space]
{space}
[data]
kind = "digits"
[trainer]
{trainer}
steps = 5
batch_size = 32
[strategy]
{strategy}
[search]
max_trials = 2
parallel = 1
devices = "cpu"
trial_timeout_s = 120
""")


@pytest.mark.slow
def test_a_real_job_trains_the_candidate_its_proxy_prefers(tmp_path):
    job = digits_job(tmp_path, 'name = "prescreen"\nproxy = "params"\npool = 3\nbase = { name = "random" }')
    db = tmp_path / "store.db"
    nasapp_cli("run", str(job), "--db", str(db), check=True)
    trials = Store(db).trials(1)
    assert [t.status for t in trials] == ["succeeded", "succeeded"]
    pools = _random_pools(seed=2, pool=3, trials=2)
    for trial, pool in zip(trials, pools, strict=True):
        sizes = [_params(arch) for arch in pool]
        assert _params(trial.arch) == max(sizes)


def _random_pools(seed: int, pool: int, trials: int) -> list[list]:
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    base = make_strategy({"name": "random"}, get_prebuilt("mnasnet").space, seed)
    return [base.ask(pool) for _ in range(trials)]


def _params(arch) -> int:
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    model = get_prebuilt("mnasnet").build(arch, (1, 8, 8), 10, {"width": 0.25, "depth": 0.5, "resolution": None})
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("strategy, space, trainer, message", [
    ('name = "prescreen"\nproxy = "magic"', MNASNET, 'prebuilt = "classification"', "strategy.proxy"),
    ('name = "prescreen"', f'ref = "{TOY}:space"', f'ref = "{TOY}:train"', "needs a prebuilt space"),
])
def test_mistakes_are_one_line(tmp_path, strategy, space, trainer, message):
    job = digits_job(tmp_path, strategy, space, trainer)
    result = nasapp_cli("run", str(job), "--db", str(tmp_path / "s.db"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
