"""The seed's math transcribed naively in NumPy: the floor any NumPy framework is measured against.

A multilayer perceptron with ReLU hidden layers and a softmax output, trained on the mean
cross-entropy by plain SGD or Adam: one ``permutation`` per epoch, batches gathered by
index, the forward pass, ``dZ = (A - Y) / m`` and the products of backpropagation, written
the obvious way (no buffers reused, no layer objects).  The benchmark harness times it in
its own process beside the library (``python benchmarks/harness.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Arrays = list[NDArray[Any]]


def forward(params: Arrays, x: NDArray[Any]) -> Arrays:
    """The activations of every layer, input first: ReLU(x W + b) ..., then the logits."""
    acts = [x]
    for i in range(0, len(params), 2):
        z = acts[-1] @ params[i] + params[i + 1]
        acts.append(np.maximum(z, 0) if i + 2 < len(params) else z)
    return acts


def gradients(params: Arrays, x: NDArray[Any], y: NDArray[Any]) -> Arrays:
    """dW, db of every layer for the mean cross-entropy of softmax(logits) on the batch."""
    acts = forward(params, x)
    logits = acts[-1]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1  # softmax minus one-hot
    dz = p / len(y)
    grads: Arrays = []
    for i in range(len(params) - 2, -1, -2):
        grads[:0] = [acts[i // 2].T @ dz, dz.sum(axis=0)]
        if i > 0:  # the data needs no gradient
            dz = (dz @ params[i].T) * (acts[i // 2] > 0)
    return grads


def train_epoch(
    params: Arrays, X: NDArray[Any], y: NDArray[Any], batch: int, rng: np.random.Generator, step: Any
) -> None:
    """One epoch of shuffled mini-batches; ``step(params, grads)`` updates the parameters in place."""
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch):
        rows = order[start : start + batch]
        step(params, gradients(params, X[rows], y[rows]))


def sgd(lr: float) -> Any:
    def step(params: Arrays, grads: Arrays) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= lr * g

    return step


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Any:
    state: dict[str, Any] = {"t": 0, "m": None, "v": None}

    def step(params: Arrays, grads: Arrays) -> None:
        if state["m"] is None:
            state["m"], state["v"] = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
        state["t"] += 1
        t = state["t"]
        for p, g, m, v in zip(params, grads, state["m"], state["v"], strict=True):
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            p -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)

    return step


def predict(params: Arrays, X: NDArray[Any]) -> NDArray[Any]:
    return np.asarray(forward(params, X)[-1].argmax(axis=1))
