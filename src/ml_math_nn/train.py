"""The training loop: shuffled mini-batch epochs, evaluation and per-epoch records.

An epoch permutes the training set once (drawn from the trainer's generator) into a
reused contiguous buffer, then walks it in slices of ``batch_size``: every sample is
visited exactly once per epoch, and mini-batches are views, not copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from .losses import Loss, Target, check_sample_weight
from .network import Network
from .optim import Optimizer, clip_grad_norm
from .schedules import Schedule

EpochRecord = dict[str, float]
Augment = Callable[[Array, np.random.Generator], None]


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite."""


class Callback:
    """Called after every epoch with the trainer and the epoch's record; ``close`` at the end.

    Any ``callable(trainer, record)`` also works as a callback.
    """

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        pass

    def close(self, trainer: Trainer) -> None:
        pass


def evaluate(network: Network, X: Array, y: Target, batch_size: int = 4096) -> tuple[float, float]:
    """Mean loss and score of ``network``'s head on ``(X, y)``, in inference mode, in chunks.

    The loss is the head's unweighted mean (no penalty), summed in float64; the score is
    :meth:`~ml_math_nn.losses.Loss.score` of the head's decisions on the whole set
    (accuracy for the classification heads, :math:`R^2` for mean squared error).
    """
    if len(X) == 0:
        raise ValueError("cannot evaluate on an empty set")
    head = network.loss
    total_loss, decisions = 0.0, []
    for i in range(0, len(X), batch_size):
        output = network.forward(X[i : i + batch_size])
        total_loss += float(head.sample_losses(output, y[i : i + batch_size]).sum(dtype=np.float64))
        decisions.append(head.decide(output))
    return total_loss / len(X), head.score(np.concatenate(decisions), y)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each mini-batch of an epoch of ``n`` samples.

    Batches are ``batch_size`` long; the remainder forms a last, shorter batch, except
    that a remainder of a single sample joins the batch before it (a one-sample batch
    has no batch statistics for batch normalisation).  Every sample is in exactly one.
    """
    starts = list(range(0, n, batch_size))
    if batch_size > 1 and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(start, stops) for start, stops in zip(starts, [*starts[1:], n], strict=True)]


class Trainer:
    """Mini-batch training of a :class:`Network` with an :class:`Optimizer`.

    Parameters
    ----------
    network, optimizer
        What to train and how to update it.
    batch_size : int
        Samples per mini-batch; the last batch of an epoch may be smaller.
    rng : numpy.random.Generator
        Source of the per-epoch shuffles.
    clip_norm : float, optional
        Rescale the gradients of each batch so their global L2 norm is at most this.
    augment : callable, optional
        ``augment(X_epoch, rng)`` modifies the shuffled copy of the training set in place
        once per epoch (the caller's arrays are never touched), drawing from ``rng``.
    """

    def __init__(
        self,
        network: Network,
        optimizer: Optimizer,
        batch_size: int,
        rng: np.random.Generator,
        *,
        clip_norm: float | None = None,
        augment: Augment | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.network, self.optimizer = network, optimizer
        self.batch_size, self.rng = int(batch_size), rng
        self.clip_norm, self.augment = clip_norm, augment
        self.on_batch: Callable[[Trainer, dict[str, float]], None] | None = None
        """Called after every update with ``batch`` (1-based), ``batches``, ``loss`` and the batch's
        score under the head's ``score_name`` (``acc``, ``r2``)."""
        self.history: list[EpochRecord] = []
        self.stop = False
        self.interrupted = False  # set with `stop` by an interrupt handler; the current epoch still ends
        self._buffers: tuple[Array, NDArray[Any]] | None = None

    def _shuffled(self, X: Array, y: Target) -> tuple[Array, Target, NDArray[np.intp]]:
        perm = self.rng.permutation(len(X))
        if self._buffers is None or self._buffers[0].shape != X.shape or self._buffers[1].shape != y.shape:
            self._buffers = (np.empty_like(X), np.empty_like(y))
        xs, ys = self._buffers
        # mode="clip" lets np.take write straight into out (the default, "raise", gathers
        # into a temporary first); a permutation never needs clipping.
        np.take(X, perm, axis=0, out=xs, mode="clip")
        np.take(y, perm, axis=0, out=ys, mode="clip")
        return xs, ys, perm

    def train_epoch(self, X: Array, y: Target, sample_weight: NDArray[Any] | None = None) -> float:
        """One pass over ``(X, y)`` in shuffled mini-batches; returns the mean batch loss.

        ``sample_weight`` (n,) weights each sample's loss: it is shuffled with ``X`` and
        ``y``, each batch's loss is the weighted mean over the batch, and the epoch's loss
        the mean of the batch losses weighted by their batches' weight sums.  A batch whose
        weights are all zero has nothing to learn from and makes no update.
        """
        xs, ys, perm = self._shuffled(X, y)
        ws = None if sample_weight is None else check_sample_weight(sample_weight, len(X))[perm]
        if self.augment is not None:
            self.augment(xs, self.rng)
        total = 0.0
        bounds = batch_bounds(len(xs), self.batch_size)
        for batch, (start, stop) in enumerate(bounds, 1):
            xb, yb = xs[start:stop], ys[start:stop]
            wb = None if ws is None else ws[start:stop]
            if wb is not None and not wb.any():
                continue
            loss, output = self.network.forward_backward(xb, yb, wb)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {len(self.history) + 1}, batch {batch}; try a smaller learning rate"
                )
            # The flat buffer when the network has one: an elementwise optimiser then
            # updates every parameter in one pass (same numbers as tensor by tensor).
            flat = self.network.flat_parameters()
            if self.clip_norm is not None:
                clip_grad_norm(self.network.parameters(), self.clip_norm)
            self.optimizer.step(self.network.parameters() if flat is None else flat)
            total += loss * (len(xb) if wb is None else float(wb.sum()))
            if self.on_batch is not None:
                head = self.network.loss
                score = head.score(head.decide(output), yb)
                self.on_batch(self, {"batch": batch, "batches": len(bounds), "loss": loss, head.score_name: score})
        return total / (len(xs) if ws is None else float(ws.sum()))

    def fit(
        self,
        X: Array,
        y: Target,
        epochs: int,
        eval_sets: Mapping[str, tuple[Array, Target]] | None = None,
        callbacks: Sequence[Callable[[Trainer, EpochRecord], None]] = (),
        *,
        eval_train: bool = True,
        sample_weight: NDArray[Any] | None = None,
    ) -> list[EpochRecord]:
        """Train until ``epochs`` epochs are done in total (a resumed trainer continues).

        After each epoch the network is evaluated (inference mode) on the training set
        and on each of ``eval_sets`` (e.g. ``{"test": (X_test, y_test)}``), giving a record
        ``{"epoch", "train_loss", "train_acc", "<name>_loss", "<name>_acc", ..., "lr"}``
        (``lr``: the learning rate the epoch's updates used) that is appended to
        :attr:`history` and passed to each callback.  A callback may set
        :attr:`stop` to end training early; every callback's ``close`` runs at the end
        (also when training stops on an error).

        With ``eval_train=False`` the training set is not evaluated again (a pass over
        it saved per epoch): ``train_loss`` is then the epoch's mean mini-batch loss as
        :meth:`train_epoch` returns it (training mode, L2 penalty included), and the
        record has no ``train_acc``.

        The score's key is the head's ``score_name``: ``<name>_acc`` for the classification
        heads, ``<name>_r2`` for mean squared error (see :func:`evaluate`).
        ``sample_weight`` (n,) weights the training samples' losses (see
        :meth:`train_epoch`); the evaluations stay unweighted.
        """
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if len(X) == 0:
            raise ValueError("cannot train on an empty training set")
        # The head checks the targets' values once here, not on every batch (see its forward).
        self.network.loss.check_target(y, (len(X), *self.network.shapes(X.shape[1:])[-1][1]))
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, len(X))
        sets = {**({"train": (X, y)} if eval_train else {}), **(eval_sets or {})}
        self.stop = False
        try:
            while len(self.history) < epochs and not self.stop:
                # A diverging loss is reported by train_epoch itself, without numpy's warnings.
                lr = self.optimizer.lr  # the rate this epoch's updates use
                with np.errstate(over="ignore", invalid="ignore"):
                    # Called without weights when there are none, so an override of
                    # train_epoch(X, y) written before weights existed still works.
                    if sample_weight is None:
                        batch_loss = self.train_epoch(X, y)
                    else:
                        batch_loss = self.train_epoch(X, y, sample_weight)
                record: EpochRecord = {"epoch": float(len(self.history) + 1)}
                if not eval_train:
                    record["train_loss"] = batch_loss
                for name, (Xe, ye) in sets.items():
                    score = f"{name}_{self.network.loss.score_name}"
                    record[f"{name}_loss"], record[score] = evaluate(self.network, Xe, ye)
                record["lr"] = lr
                self.history.append(record)
                for callback in callbacks:
                    callback(self, record)
        finally:
            for callback in callbacks:
                close = getattr(callback, "close", None)
                if close is not None:
                    close(self)
        return self.history


class ScheduleStep(Callback):
    """Steps a learning-rate schedule after every epoch, for the next one.

    ``monitor`` is the record key passed to :meth:`~ml_math_nn.schedules.Schedule.step`
    (only :class:`~ml_math_nn.schedules.ReduceOnPlateau` uses it), e.g. ``"val_loss"``.
    """

    def __init__(self, schedule: Schedule, monitor: str = "val_loss") -> None:
        self.schedule, self.monitor = schedule, monitor

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        self.schedule.step(record.get(self.monitor))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    ``monitor`` is a record key such as ``"val_loss"`` (lower is better) or a score,
    ``"val_<score_name>"`` of a registered head (:attr:`~ml_math_nn.losses.Loss.score_name`:
    ``"val_acc"``, ``"val_r2"``; higher is better).  On :meth:`close` the network gets back
    the parameters and buffers it had at the end of the best epoch, :attr:`best_epoch`.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.monitor, self.patience = monitor, patience
        scores = {f"_{head.score_name}" for head in Loss.registry.values()}  # every head says its own
        self.higher_is_better = monitor.endswith(tuple(scores))
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_state: dict[str, Array] = {}

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.higher_is_better else value < self.best

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        if self.monitor not in record:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which the records do not have")
        value = record[self.monitor]
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, int(record["epoch"]), 0
            self.best_state = {k: v.copy() for k, v in trainer.network.state().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop = True

    def close(self, trainer: Trainer) -> None:
        for name, value in trainer.network.state().items():
            if name in self.best_state:
                value[...] = self.best_state[name]
