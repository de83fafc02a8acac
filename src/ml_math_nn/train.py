"""The training loop: shuffled mini-batch epochs, evaluation and per-epoch records.

An epoch permutes the training set once (drawn from the trainer's generator) into a
reused contiguous buffer, then walks it in slices of ``batch_size``: every sample is
visited exactly once per epoch, and mini-batches are views, not copies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array, Labels
from .losses import log_softmax
from .network import Network
from .optim import Optimizer

EpochRecord = dict[str, float]
Callback = Callable[["Trainer", EpochRecord], None]


def evaluate(network: Network, X: Array, y: Labels, batch_size: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``network`` on ``(X, y)`` in inference mode."""
    if len(X) == 0:
        raise ValueError("cannot evaluate on an empty set")
    total_loss, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        logp = log_softmax(network.forward(X[i : i + batch_size]))
        yb = y[i : i + batch_size]
        total_loss -= float(logp[np.arange(len(yb)), yb].sum(dtype=np.float64))
        correct += int((logp.argmax(axis=1) == yb).sum())
    return total_loss / len(X), correct / len(X)


class Trainer:
    """Mini-batch training of a :class:`Network` with an :class:`Optimizer`.

    Parameters
    ----------
    network, optimizer
        What to train and how to update it.
    batch_size : int
        Samples per mini-batch; the last batch of an epoch may be smaller.
    rng : numpy.random.Generator
        Source of the per-epoch shuffles (the only randomness of training).
    """

    def __init__(self, network: Network, optimizer: Optimizer, batch_size: int, rng: np.random.Generator) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.network, self.optimizer = network, optimizer
        self.batch_size, self.rng = int(batch_size), rng
        self.history: list[EpochRecord] = []
        self.stop = False
        self._buffers: tuple[Array, NDArray[Any]] | None = None

    def _shuffled(self, X: Array, y: Labels) -> tuple[Array, Labels]:
        perm = self.rng.permutation(len(X))
        if self._buffers is None or self._buffers[0].shape != X.shape:
            self._buffers = (np.empty_like(X), np.empty_like(y))
        xs, ys = self._buffers
        np.take(X, perm, axis=0, out=xs)
        np.take(y, perm, axis=0, out=ys)
        return xs, ys

    def train_epoch(self, X: Array, y: Labels) -> float:
        """One pass over ``(X, y)`` in shuffled mini-batches; returns the mean batch loss."""
        xs, ys = self._shuffled(X, y)
        total = 0.0
        for start in range(0, len(xs), self.batch_size):
            xb, yb = xs[start : start + self.batch_size], ys[start : start + self.batch_size]
            loss, _ = self.network.loss_and_grads(xb, yb)
            self.optimizer.step(self.network.parameters())
            total += loss * len(xb)
        return total / len(xs)

    def fit(
        self,
        X: Array,
        y: Labels,
        epochs: int,
        eval_sets: Mapping[str, tuple[Array, Labels]] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> list[EpochRecord]:
        """Train for ``epochs`` epochs.

        After each epoch the network is evaluated (inference mode) on the training set
        and on each of ``eval_sets`` (e.g. ``{"test": (X_test, y_test)}``), giving a record
        ``{"epoch", "train_loss", "train_acc", "<name>_loss", "<name>_acc", ...}`` that
        is appended to :attr:`history` and passed to each callback.  A callback may set
        :attr:`stop` to end training early.
        """
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if len(X) == 0:
            raise ValueError("cannot train on an empty training set")
        sets = {"train": (X, y), **(eval_sets or {})}
        self.stop = False
        for _ in range(epochs):
            self.train_epoch(X, y)
            record: EpochRecord = {"epoch": float(len(self.history) + 1)}
            for name, (Xe, ye) in sets.items():
                record[f"{name}_loss"], record[f"{name}_acc"] = evaluate(self.network, Xe, ye)
            self.history.append(record)
            for callback in callbacks:
                callback(self, record)
            if self.stop:
                break
        return self.history
