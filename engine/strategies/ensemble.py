"""A small ensemble of neural networks that predicts scores from feature vectors, with an uncertainty (numpy
only: the runner process stays free of torch).

Each member is a two-hidden-layer ReLU network trained with Adam on the standardised scores, from its own random
initialisation and with its own bootstrap weights on the data, so the members disagree where data is scarce; the
ensemble's spread is the uncertainty (BANANAS, White et al. 2021, uses the same construction). The members are
trained together as one batched computation (a leading "member" axis on every weight).
"""

from __future__ import annotations

import numpy as np


class MLPEnsemble:
    def __init__(self, members: int = 5, hidden: int = 32, epochs: int = 200, refit_epochs: int = 40,
                 learning_rate: float = 0.01, weight_decay: float = 1e-4) -> None:
        self.members = members
        self.hidden = hidden
        self.epochs = epochs
        self.refit_epochs = refit_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.net: list[np.ndarray] = []
        self.mean = 0.0
        self.std = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """Train on ``x`` -> ``y``: ``epochs`` from scratch the first time, then ``refit_epochs`` more from the
        weights of the previous fit (a search adds a row or two between fits: a warm start costs a fraction)."""
        self.mean = float(y.mean())
        self.std = float(y.std()) or 1.0
        target = (y - self.mean) / self.std
        # bootstrap: each member weighs each row by how often a resample of the rows drew it
        weights = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x)), size=self.members).astype(float)
        epochs = self.refit_epochs
        if not self.net:
            self.net, epochs = self._initial(x.shape[1], rng), self.epochs
        self._train(x, target, weights / len(x), epochs)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's mean and standard deviation of the score of every row of ``x``."""
        outputs = _forward(self.net, x)[-1][:, :, 0] * self.std + self.mean  # (members, rows)
        return outputs.mean(axis=0), outputs.std(axis=0)

    def _initial(self, inputs: int, rng: np.random.Generator) -> list[np.ndarray]:
        sizes = [inputs, self.hidden, self.hidden, 1]
        net = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            net.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(self.members, fan_in, fan_out)))
            net.append(np.zeros((self.members, 1, fan_out)))
        return net

    def _train(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray, epochs: int) -> None:
        first = [np.zeros_like(p) for p in self.net]
        second = [np.zeros_like(p) for p in self.net]
        for step in range(1, epochs + 1):
            grads = _gradients(self.net, x, y, weights)
            for param, grad, m, v in zip(self.net, grads, first, second, strict=True):
                grad += self.weight_decay * param
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad * grad
                param -= self.learning_rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)


def _forward(net: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """The activations of every layer, each (members, rows, width); the input first, the linear output last."""
    layers = [np.broadcast_to(x, (net[0].shape[0], *x.shape))]
    for i in range(0, len(net), 2):
        z = layers[-1] @ net[i] + net[i + 1]
        layers.append(np.maximum(z, 0.0) if i + 2 < len(net) else z)
    return layers


def _gradients(net: list[np.ndarray], x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """Gradients of each member's weighted mean squared error with respect to its weights and biases."""
    layers = _forward(net, x)
    delta = 2.0 * (layers[-1] - y[None, :, None]) * weights[:, :, None]
    grads: list[np.ndarray] = [np.empty(0)] * len(net)
    for i in range(len(net) - 2, -1, -2):
        grads[i] = layers[i // 2].transpose(0, 2, 1) @ delta
        grads[i + 1] = delta.sum(axis=1, keepdims=True)
        if i > 0:
            delta = (delta @ net[i].transpose(0, 2, 1)) * (layers[i // 2] > 0)
    return grads
