"""The training loop: shuffled mini-batch epochs, evaluation and per-epoch records.

An epoch draws one permutation of the sample indices (from the trainer's generator) and
walks it in slices of ``batch_size``: every sample is visited exactly once per epoch.
Each mini-batch is gathered by its indices into a reused buffer, so an epoch copies no
more than one batch of the data at a time, and the training data may be any
:class:`Rows` (an array, or rows scaled as they are read).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from .losses import Loss, Target, check_sample_weight
from .network import Network
from .optim import Optimizer, clip_grad_norm
from .schedules import Schedule

EpochRecord = dict[str, float]
Augment = Callable[[Array, np.random.Generator], None]


class Rows(Protocol):
    """Samples read by rows: a numpy array, or anything whose ``rows[key]`` (a slice or an
    array of indices) returns those samples as an array, e.g. uint8 images scaled as they
    are read (:class:`ml_math_nn.data.rows.ScaledRows`)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any, /) -> Any: ...


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


def evaluate(network: Network, X: Array | Rows, y: Target, batch_size: int = 4096) -> tuple[float, float]:
    """Mean loss and score of ``network``'s head on ``(X, y)``, in inference mode, in chunks.

    The loss is the head's unweighted mean (no penalty), summed in float64; the score is
    :meth:`~ml_math_nn.losses.Loss.score` of the head's decisions on the whole set
    (accuracy for the classification heads, :math:`R^2` for mean squared error).
    """
    if len(X) == 0:
        raise ValueError("cannot evaluate on an empty set")
    head = network.loss
    total_loss, decisions = 0.0, []
    batch_size = min(batch_size, network.inference_rows())  # a convolution's im2col rows bound the chunk
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
        ``augment(X_epoch, rng)`` modifies a shuffled copy of the training set in place
        once per epoch (the caller's arrays are never touched), drawing from ``rng``.
        The one case where an epoch copies the whole training set.
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
        self.epoch_times: list[float] = []
        """Wall time in seconds of each :meth:`train_epoch` that :meth:`fit` ran (in this process),
        without the evaluation that follows it."""
        self.stop = False
        self.interrupted = False  # set with `stop` by an interrupt handler; the current epoch still ends
        self._buffers: dict[str, NDArray[Any]] = {}

    def _buffer(self, name: str, like: NDArray[Any], n: int) -> NDArray[Any]:
        """A reused array of ``n`` rows shaped and typed like ``like``'s (reallocated when those change)."""
        buffer = self._buffers.get(name)
        shape = (n, *like.shape[1:])
        if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype:
            buffer = self._buffers[name] = np.empty(shape, like.dtype)
        return buffer

    def _gather(self, name: str, data: NDArray[Any] | Rows, rows: NDArray[np.intp]) -> NDArray[Any]:
        """``data[rows]``: for an array, written into a reused buffer (no allocation per batch)."""
        if not isinstance(data, np.ndarray):
            return np.asarray(data[rows])
        out = self._buffer(name, data, self.batch_size + 1)[: len(rows)]  # + 1: a last batch may take one more
        # mode="clip" lets np.take write straight into out (the default, "raise", gathers
        # into a temporary first); indices from a permutation never need clipping.
        return np.take(data, rows, axis=0, out=out, mode="clip")

    def train_epoch(self, X: Array | Rows, y: Target, sample_weight: NDArray[Any] | None = None) -> float:
        """One pass over ``(X, y)`` in shuffled mini-batches; returns the mean batch loss.

        The samples are visited in the order of one permutation of their indices; each
        batch is gathered from ``X`` and ``y`` by its indices.  ``sample_weight`` (n,)
        weights each sample's loss: each batch's loss is the weighted mean over the batch,
        and the epoch's loss the mean of the batch losses weighted by their batches'
        weight sums.  A batch whose weights are all zero has nothing to learn from and
        makes no update.
        """
        perm = self.rng.permutation(len(X))
        ws = None if sample_weight is None else check_sample_weight(sample_weight, len(X))[perm]
        shifted = None
        if self.augment is not None:
            shifted = np.asarray(X[perm])  # a new array: the epoch's shuffled copy, which augmentation changes
            self.augment(shifted, self.rng)
        total = 0.0
        bounds = batch_bounds(len(X), self.batch_size)
        for batch, (start, stop) in enumerate(bounds, 1):
            rows = perm[start:stop]
            xb = self._gather("x", X, rows) if shifted is None else shifted[start:stop]
            yb = self._gather("y", y, rows)
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
        return total / (len(X) if ws is None else float(ws.sum()))

    def fit(
        self,
        X: Array | Rows,
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
        :attr:`history` and passed to each callback.  The wall time of each epoch's
        training, without its evaluation, is appended to :attr:`epoch_times`.  A callback may set
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
                start = time.perf_counter()
                with np.errstate(over="ignore", invalid="ignore"):
                    # Called without weights when there are none, so an override of
                    # train_epoch(X, y) written before weights existed still works.
                    if sample_weight is None:
                        batch_loss = self.train_epoch(X, y)
                    else:
                        batch_loss = self.train_epoch(X, y, sample_weight)
                self.epoch_times.append(time.perf_counter() - start)
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

    def epoch_time(self) -> float | None:
        """The median of :attr:`epoch_times` (None before the first epoch)."""
        return statistics.median(self.epoch_times) if self.epoch_times else None


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
