"""A reinforcement-learning controller: a policy over the space's decisions trained with REINFORCE (Williams
1992; the controller of Zoph & Le 2017 and of managed NAS services, here without the RNN).

The policy holds one independent distribution per encoded position of the space (``space.slots()``):
categorical logits for choice indices, repeat lengths and integers with at most 64 values; a Gaussian (mean and
log-std on the unit interval, the log scale for log floats) for floats and wider integers. A proposal samples
every position, decodes the vector to an architecture and encodes that architecture back: the positions the
architecture does not use (another option's sub-template, repeat elements beyond its length) were no decisions,
so its policy gradient involves only the active ones. This works on every space, conditional ones included,
with no API beyond ``slots``/``decode``/``encode``.

Learning: each outcome's advantage is its reward minus an exponential moving baseline (``baseline_decay``),
divided by an exponential moving standard deviation of the rewards, so ``learning_rate`` means the same for
any reward scale. Every ``batch`` outcomes, one Adam step ascends the mean of ``advantage * grad log p`` plus
``entropy_weight`` times the gradient of the entropy of the positions those outcomes decided.

Outcomes that did not succeed (failed, constraint, pruned, skipped) count as the worst succeeded score seen so
far: such an architecture is no better than anything that worked (a pruned one looked worse than its peers,
a skipped one was predicted far over the latency target), and a finite stand-in keeps the reward spread
honest where an arbitrary "very low" value would inflate it and shrink every later advantage. Before the first
success there is nothing to compare with, so those outcomes teach nothing.

Proposals avoid every architecture already asked in this search: a seen sample is redrawn at a rising
temperature (towards uniform); a small finite space then falls back to an unseen architecture at random; only
past that is a repeat allowed. Everything random comes from ``self.rng`` in call order, so a replay of the same
asks and tells proposes the same architectures.

Resume of a long history (base.py: the replay rule): every asked architecture counts as seen, the worst success
is taken over the whole history, and only the most recent :data:`RESTORE_WINDOW` outcomes train a fresh policy
(each from its architecture's encoding), in order: the reward statistics forget older rewards within tens of
outcomes anyway, and the policy then starts from what the search learned last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nasapp.engine.spaces.dims import SENTINEL, Slot
from nasapp.engine.strategies.base import (
    HistoryEvent,
    Strategy,
    StrategyEntry,
    StrategyOptions,
    TrialOutcome,
    asks_of,
)

_MAX_CATEGORIES = 64  # wider integers are Gaussian: a categorical would learn each value separately
_INITIAL_STD = 0.3  # on the unit interval: about the spread of a uniform draw (0.29)
_MEAN_RANGE = (-0.5, 1.5)  # a mean past the ends puts most samples on the bound
_LOG_STD_RANGE = (math.log(0.01), math.log(1.0))
_TRIES = 32  # redraws of a seen architecture, the k-th at temperature 2 ** (k / 4) (up to ~200)
_ENUMERATE_BELOW = 100_000  # finite spaces this small fall back to drawing from the unseen ones
RESTORE_WINDOW = 1_000  # outcomes a restored policy is trained on (the most recent)


class RLOptions(StrategyOptions):
    """``[strategy] name = "rl"``. The defaults were chosen by reasoning and a synthetic check (20 choices of 4,
    noisy and noiseless rewards; four floats/wide integers), not tuned on a NAS benchmark: an Adam step of 0.05
    moves a logit by about 0.05, so a policy can concentrate within a couple of hundred trials without
    collapsing in the first twenty; a baseline over about the last 10 rewards follows an improving policy."""

    name: Literal["rl"] = "rl"
    learning_rate: float = Field(0.05, gt=0)  # Adam step size on logits and unit-interval means / log-stds
    baseline_decay: float = Field(0.9, ge=0, lt=1)  # of the moving baseline and reward spread
    entropy_weight: float = Field(0.01, ge=0)  # keeps the policy from collapsing early
    batch: int = Field(1, ge=1)  # outcomes per policy update


@dataclass(frozen=True)
class Draw:
    """One sampled vector as the policy sees it: the category index or unit value of every position, and which
    positions the decoded architecture uses."""

    values: np.ndarray
    active: np.ndarray


class RewardScale:
    """The exponential moving mean and spread of rewards (bias-corrected like Adam's moments)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.mean_raw = 0.0
        self.var_raw = 0.0
        self.count = 0

    def advantage(self, reward: float) -> float:
        """``(reward - baseline) / spread``, then ``reward`` joins the statistics. The spread includes this
        reward's own deviation, which bounds the advantage by about ``1 / sqrt(1 - decay)``."""
        if self.count == 0:
            self.mean_raw = (1 - self.decay) * reward
            self.count = 1
            return 0.0
        deviation = reward - self.mean_raw / (1 - self.decay**self.count)
        self.var_raw = self.decay * self.var_raw + (1 - self.decay) * deviation**2
        variance = self.var_raw / (1 - self.decay**self.count)
        self.mean_raw = self.decay * self.mean_raw + (1 - self.decay) * reward
        self.count += 1
        return deviation / math.sqrt(variance) if variance > 0 else 0.0


class Adam:
    """Adam (Kingma & Ba 2015) ascending a flat parameter vector."""

    def __init__(self, size: int, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def step(self, gradient: np.ndarray, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
        """The change to add to the parameters for this ascent ``gradient``."""
        self.t += 1
        self.m = beta1 * self.m + (1 - beta1) * gradient
        self.v = beta2 * self.v + (1 - beta2) * gradient**2
        m_hat = self.m / (1 - beta1**self.t)
        v_hat = self.v / (1 - beta2**self.t)
        return self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)


def _categories(slot: Slot) -> int:
    """How many values a categorical position has; 0 when the position is Gaussian."""
    if slot.kind == "floating":
        return 0
    count = int(slot.high - slot.low) + 1
    return count if slot.kind in ("choice", "length") or count <= _MAX_CATEGORIES else 0


class Policy:
    """Independent distributions over the encoded positions: padded logits for the categorical ones, means and
    log-stds on the unit interval for the Gaussian ones."""

    def __init__(self, slots: list[Slot]) -> None:
        self.slots = slots
        sizes = [_categories(slot) for slot in slots]
        self.cat = np.array([i for i, k in enumerate(sizes) if k > 0], dtype=int)
        self.gauss = np.array([i for i, k in enumerate(sizes) if k == 0], dtype=int)
        widest = max([k for k in sizes if k > 0], default=1)
        self.valid = np.array([[j < sizes[i] for j in range(widest)] for i in self.cat], dtype=bool)
        self.valid = self.valid.reshape(len(self.cat), widest)
        self.logits = np.where(self.valid, 0.0, -np.inf)
        self.mean = np.full(len(self.gauss), 0.5)
        self.log_std = np.full(len(self.gauss), math.log(_INITIAL_STD))

    # -- sampling ----------------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, temperature: float) -> np.ndarray:
        """Category indices and unit values of every position (Gumbel-max for the categorical ones)."""
        values = np.zeros(len(self.slots))
        gumbel = rng.gumbel(size=self.logits.shape)
        values[self.cat] = np.argmax(self.logits / temperature + gumbel, axis=1)
        noise = rng.standard_normal(len(self.gauss))
        values[self.gauss] = self.mean + np.exp(self.log_std) * temperature * noise
        return values

    def to_vector(self, values: np.ndarray) -> list[float]:
        """The encoded vector of sampled values (``space.decode`` rounds and clips it)."""
        vector = [0.0] * len(self.slots)
        for i in self.cat:
            vector[i] = self.slots[i].low + float(values[i])
        for i in self.gauss:
            vector[i] = _from_unit(self.slots[i], float(values[i]))
        return vector

    def from_encoding(self, encoded: list[float], active: np.ndarray) -> np.ndarray:
        """The sampled values that give an encoded architecture (one this policy did not sample); inactive
        positions get the first category or the middle of the range."""
        values = np.zeros(len(self.slots))
        for i in self.cat:
            values[i] = encoded[i] - self.slots[i].low if active[i] else 0.0
        for i in self.gauss:
            values[i] = _to_unit(self.slots[i], encoded[i]) if active[i] else 0.5
        return values

    # -- gradients ---------------------------------------------------------------------------------------

    def size(self) -> int:
        return self.logits.size + 2 * len(self.gauss)

    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)

    def log_prob_gradient(self, draw: Draw) -> np.ndarray:
        """The gradient of ``log p(draw)`` over its active positions, flat like :meth:`apply` takes it."""
        active_cat = draw.active[self.cat][:, None]
        onehot = np.zeros(self.logits.shape)
        onehot[np.arange(len(self.cat)), draw.values[self.cat].astype(int)] = 1.0
        d_logits = active_cat * (onehot - self.probabilities())
        std = np.exp(self.log_std)
        scaled = (draw.values[self.gauss] - self.mean) / std
        active_gauss = draw.active[self.gauss]
        d_mean = active_gauss * scaled / std
        d_log_std = active_gauss * (scaled**2 - 1.0)
        return np.concatenate([d_logits.ravel(), d_mean, d_log_std])

    def entropy_gradient(self, active: np.ndarray) -> np.ndarray:
        """The gradient of the summed entropy of the ``active`` positions."""
        p = self.probabilities()
        log_p = np.where(self.valid, np.log(np.where(self.valid, p, 1.0)), 0.0)
        entropy = -(p * log_p).sum(axis=1, keepdims=True)
        d_logits = active[self.cat][:, None] * (-p * (log_p + entropy))
        d_log_std = active[self.gauss].astype(float)  # a Gaussian's entropy is log-std + constant
        return np.concatenate([d_logits.ravel(), np.zeros(len(self.gauss)), d_log_std])

    def apply(self, change: np.ndarray) -> None:
        """Add a flat parameter change; keep means and log-stds in their ranges."""
        n_logits, n_gauss = self.logits.size, len(self.gauss)
        self.logits = np.where(self.valid, self.logits + change[:n_logits].reshape(self.logits.shape), -np.inf)
        self.mean = np.clip(self.mean + change[n_logits:n_logits + n_gauss], *_MEAN_RANGE)
        self.log_std = np.clip(self.log_std + change[n_logits + n_gauss:], *_LOG_STD_RANGE)


def _to_unit(slot: Slot, value: float) -> float:
    if slot.log:
        return (math.log(value) - math.log(slot.low)) / (math.log(slot.high) - math.log(slot.low))
    return (value - slot.low) / (slot.high - slot.low)


def _from_unit(slot: Slot, u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    if slot.log:
        return math.exp(math.log(slot.low) + u * (math.log(slot.high) - math.log(slot.low)))
    return slot.low + u * (slot.high - slot.low)


class Reinforce(Strategy):
    name = "rl"

    def __init__(self, space: Any, seed: int, options: RLOptions | None = None) -> None:
        options = options or RLOptions()
        super().__init__(space, seed, options)
        self.opts = options
        self.policy = Policy(space.slots())
        self.adam = Adam(self.policy.size(), options.learning_rate)
        self.scale = RewardScale(options.baseline_decay)
        self.seen: set[str] = set()
        self.draws: dict[str, list[Draw]] = {}  # by fingerprint: what was sampled for each asked architecture
        self.worst: float | None = None  # the worst succeeded score so far: what a failure counts as
        self.gradient = np.zeros(self.policy.size())
        self.batch_active = np.zeros(len(self.policy.slots), dtype=bool)
        self.in_batch = 0

    # -- proposing ---------------------------------------------------------------------------------------

    def propose(self) -> Any:
        arch, draw = self._fresh()
        key = self.space.fingerprint(arch)
        self.seen.add(key)
        self.draws.setdefault(key, []).append(draw)
        return arch

    def _fresh(self) -> tuple[Any, Draw]:
        """A sample not asked before, trying ever hotter policies, then (small spaces) any unseen one."""
        for k in range(_TRIES):
            values = self.policy.sample(self.rng, 2.0 ** (k / 4))
            arch = self.space.decode(self.policy.to_vector(values))
            if self.space.fingerprint(arch) not in self.seen:
                return arch, Draw(values, self._active(arch))
        if self.space.is_finite() and self.space.size() <= _ENUMERATE_BELOW:
            unseen = [a for a in self.space.enumerate() if self.space.fingerprint(a) not in self.seen]
            if unseen:
                return self._with_draw(unseen[int(self.rng.integers(len(unseen)))])
            self.seen.clear()  # exhausted: start another pass over the space
        return arch, Draw(values, self._active(arch))

    def _with_draw(self, arch: Any) -> tuple[Any, Draw]:
        """``arch`` and the draw that gives it (for an architecture the policy did not sample itself)."""
        active = self._active(arch)
        return arch, Draw(self.policy.from_encoding(self.space.encode(arch), active), active)

    def _active(self, arch: Any) -> np.ndarray:
        """Which positions ``arch`` uses: those not SENTINEL in its encoding, and any whose value is -1 itself
        (an integer or float range holding -1), told apart by whether changing it changes the architecture."""
        encoded = self.space.encode(arch)
        active = np.array([v != SENTINEL for v in encoded], dtype=bool)
        for i, slot in enumerate(self.policy.slots):
            if not active[i] and slot.kind in ("integer", "floating") and slot.low <= SENTINEL <= slot.high:
                changed = list(encoded)
                changed[i] = slot.high if slot.high != SENTINEL else slot.low
                active[i] = self.space.fingerprint(self.space.decode(changed)) != self.space.fingerprint(arch)
        return active

    # -- learning ----------------------------------------------------------------------------------------

    def tell(self, outcome: TrialOutcome) -> None:
        reward = self._reward(outcome)
        draw = self._asked_draw(outcome.arch)
        if reward is None:
            return
        advantage = self.scale.advantage(reward)
        self.gradient += advantage * self.policy.log_prob_gradient(draw)
        self.batch_active |= draw.active
        self.in_batch += 1
        if self.in_batch == self.opts.batch:
            self._update()

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """A long history: the policy learns from its most recent outcomes only (see the module docstring)."""
        self.seen.update(ask.fingerprint for ask in asks_of(history))
        tells = [event for event in history if isinstance(event, TrialOutcome)]
        older = tells[:-RESTORE_WINDOW]
        scores = [e.score for e in older if e.succeeded and e.score is not None and math.isfinite(e.score)]
        self.worst = min(scores, default=None)
        for outcome in tells[-RESTORE_WINDOW:]:
            self.tell(outcome)
        self.reseed(history)

    def _asked_draw(self, arch: Any) -> Draw:
        """What was sampled when ``arch`` was asked (forgotten now); from its encoding if it never was."""
        key = self.space.fingerprint(arch)
        draws = self.draws.get(key)
        if not draws:
            return self._with_draw(arch)[1]
        draw = draws.pop(0)
        if not draws:
            del self.draws[key]
        return draw

    def _reward(self, outcome: TrialOutcome) -> float | None:
        """The score of a success; the worst success so far for anything else (None before any success)."""
        score = outcome.score
        if outcome.succeeded and score is not None and math.isfinite(score):
            self.worst = score if self.worst is None else min(self.worst, score)
            return float(score)
        return self.worst

    def _update(self) -> None:
        ascent = self.gradient / self.in_batch
        ascent += self.opts.entropy_weight * self.policy.entropy_gradient(self.batch_active)
        self.policy.apply(self.adam.step(ascent))
        self.gradient[:] = 0.0
        self.batch_active[:] = False
        self.in_batch = 0


ENTRY = StrategyEntry("rl", "REINFORCE controller: a policy over the space's decisions learned by policy gradient",
                      RLOptions, Reinforce)
