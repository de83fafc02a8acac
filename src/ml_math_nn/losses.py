r"""Loss heads: what the network's outputs mean, how they are scored and differentiated.

A head turns the network's last outputs :math:`Z \in \mathbb R^{m \times K}` (one sample
per row) and the targets into one number, the loss, and gives
:math:`\partial L / \partial Z` for backpropagation.  It also says what the outputs
predict (probabilities or values), what is decided from them (a class, a set of labels,
the values) and how a batch of decisions is scored in the training records.

Every head averages per-sample losses :math:`\ell_i`, optionally weighted by
:math:`w_i \ge 0` (not all zero):

.. math::
    L = \frac{\sum_i w_i \ell_i}{\sum_i w_i}, \qquad
    \frac{\partial L}{\partial Z_{i\cdot}} = \frac{w_i}{\sum_j w_j}\,\frac{\partial \ell_i}{\partial Z_{i\cdot}},

which is the plain mean :math:`\frac1m \sum_i \ell_i` when every :math:`w_i = 1`.

=============================  =========================  ==================  =================  =======
head (``name``)                target                      prediction          decision           score
=============================  =========================  ==================  =================  =======
``softmax_cross_entropy``      class index (m,)            softmax             argmax             ``acc``
``sigmoid_cross_entropy``      0/1 indicators (m, K)       sigmoid             :math:`p > 0.5`    ``acc``
``mean_squared_error``         real values (m, K)          the outputs         the outputs        ``r2``
=============================  =========================  ==================  =================  =======

The sigmoid head's ``acc`` is the subset accuracy (every label of a row right); ``r2`` is
the coefficient of determination averaged over the outputs.  A head whose target is one
column (:math:`K = 1`) also takes it as a vector of shape (m,).

A new head is one subclass of :class:`Loss` that defines ``name``: it is then registered
and can be chosen by name (:func:`loss_from_config`) and saved with a network.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._registry import Registry
from ._types import Array, Labels

Target = NDArray[Any]
"""Integer labels (m,) or an (m, K) array of indicators or values, as the head expects."""


def log_softmax(z: Array) -> Array:
    r"""Row-wise :math:`\log\operatorname{softmax}(Z) = Z - M - \log\sum_j e^{Z_j - M}`."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: Array) -> Array:
    r"""Row-wise :math:`\operatorname{softmax}(Z)`, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def sigmoid(z: Array) -> Array:
    r"""Elementwise :math:`\sigma(z) = 1/(1+e^{-z})`, computed from :math:`e^{-|z|}` so nothing overflows.

    .. math:: \sigma(z) = \frac{1}{1 + e^{-|z|}}\ (z \ge 0), \qquad \frac{e^{-|z|}}{1 + e^{-|z|}}\ (z < 0)
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def softplus(z: Array) -> Array:
    r"""Elementwise :math:`\log(1 + e^{z}) = \max(z, 0) + \log(1 + e^{-|z|})`, finite for every finite z."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def check_sample_weight(sample_weight: Any, m: int, where: str = "sample_weight") -> NDArray[np.float64]:
    r"""Per-sample weights as float64 of shape (m,): finite, :math:`\ge 0`, not all zero.

    Raises a one-line ``ValueError`` naming ``where`` otherwise.
    """
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"{where}: expected one weight per sample, shape ({m},), got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{where}: weights must be finite, got {w[~np.isfinite(w)][0]}")
    if np.any(w < 0):
        raise ValueError(f"{where}: weights must be >= 0, got {w.min()}")
    if not w.any():
        raise ValueError(f"{where}: the weights are all zero")
    return w


def _check_shape(shape: tuple[int, ...], head: str) -> None:
    if len(shape) != 2:
        raise ValueError(f"{head}: expected outputs of shape (m, K), got {shape}")


class Loss:
    r"""The head of a network: a loss of its outputs, its gradient, predictions and a score.

    Subclasses set ``name`` (which registers them), ``score_name`` and
    ``probabilistic``, and implement :meth:`check_target`, :meth:`sample_losses`,
    :meth:`forward`, :meth:`backward`, :meth:`activate`, :meth:`decide` and
    :meth:`score`.  ``forward`` caches what ``backward`` needs; ``backward`` returns a
    new array each time.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[Registry[type[Loss]]] = Registry("loss")
    score_name: ClassVar[str] = "acc"
    """The record key of the score: ``<set>_<score_name>`` (higher is better)."""
    probabilistic: ClassVar[bool] = True
    """Whether :meth:`activate` gives probabilities (so that ``predict_proba`` makes sense)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.registry.add(cls)

    def check_target(self, target: Target, shape: tuple[int, ...]) -> Target:
        """The target as the head uses it for outputs of ``shape`` (m, K), or a one-line ``ValueError``.

        Checks the target's shape, dtype and values (range, indicators, finiteness).
        """
        raise NotImplementedError

    def sample_losses(self, output: Array, target: Target) -> Array:
        r"""The per-sample losses :math:`\ell_i`, shape (m,) (no cache, no weights)."""
        raise NotImplementedError

    def forward(self, output: Array, target: Target, sample_weight: Any = None) -> float:
        r"""The (weighted) mean loss :math:`L` of ``output`` against ``target``; caches for :meth:`backward`."""
        raise NotImplementedError

    def backward(self) -> Array:
        r""":math:`\partial L/\partial Z` for the last :meth:`forward` call, a new array."""
        raise NotImplementedError

    def activate(self, output: Array) -> Array:
        """What the outputs predict: probabilities, or the values themselves."""
        raise NotImplementedError

    def decide(self, output: Array) -> NDArray[Any]:
        """The decision taken from the outputs: a class, 0/1 labels, or the values."""
        raise NotImplementedError

    def score(self, decision: NDArray[Any], target: Target) -> float:
        """The score of decisions (from :meth:`decide`) against targets; higher is better."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description from which :func:`loss_from_config` rebuilds the head."""
        return {"name": self.name}

    def _weights(self, sample_weight: Any, m: int) -> NDArray[np.float64] | None:
        """Per-sample weights divided by their sum (None when no weights are given)."""
        if sample_weight is None:
            return None
        w = check_sample_weight(sample_weight, m, f"{self.name} sample_weight")
        return w / w.sum()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def loss_from_config(config: dict[str, Any]) -> Loss:
    """Rebuild a head from :meth:`Loss.config`; a one-line ``ValueError`` for an unknown name or argument."""
    kwargs = dict(config)
    cls = Loss.registry.lookup(kwargs.pop("name", None))
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"invalid {cls.name} loss config {config}: {e}") from None


class SoftmaxCrossEntropy(Loss):
    r"""Softmax over the logits fused with the cross-entropy loss, for one class per sample.

    For logits :math:`Z \in \mathbb R^{m \times K}` and labels :math:`y_i \in \{0..K-1\}`
    (one-hot :math:`Y`), with :math:`M_i = \max_j Z_{ij}`, :math:`S = Z - M` and
    :math:`s_i = \sum_j e^{S_{ij}}`:

    .. math::
        A_{ik} = \operatorname{softmax}(Z)_{ik} = e^{S_{ik}} / s_i, \qquad
        \ell_i = -\log A_{i y_i} = \log s_i - S_{i y_i}, \qquad
        \frac{\partial L}{\partial Z} = \frac1m (A - Y)

    (rows scaled by :math:`w_i/\sum_j w_j` instead of :math:`1/m` with weights).
    Subtracting :math:`M_i` keeps every exponent :math:`\le 0` (no overflow) and
    :math:`s_i \ge 1`, so the loss needs only :math:`m` logarithms and never the log of a
    tiny probability; fusing the two avoids the softmax Jacobian entirely and is exact.
    """

    name = "softmax_cross_entropy"
    score_name = "acc"
    probabilistic = True

    def __init__(self) -> None:
        self._probs: Array | None = None
        self._y: Labels | None = None
        self._w: NDArray[np.float64] | None = None

    def check_target(self, target: Target, shape: tuple[int, ...]) -> Labels:
        _check_shape(shape, self.name)
        y = np.asarray(target)
        if y.shape != shape[:1] or y.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: expected integer labels of shape ({shape[0]},), got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= shape[1]):
            bad = y[(y < 0) | (y >= shape[1])][0]
            raise ValueError(f"{self.name}: labels must be in 0..{shape[1] - 1}, got {bad}")
        return y

    def sample_losses(self, output: Array, target: Target) -> Array:
        r""":math:`\ell_i = -\log\operatorname{softmax}(Z)_{i y_i}`, from :func:`log_softmax`."""
        y = self.check_target(target, output.shape)
        return -log_softmax(output)[np.arange(len(y)), y]

    def forward(self, output: Array, target: Target, sample_weight: Any = None) -> float:
        r"""Mean cross-entropy of logits ``output`` (m, K) against integer labels ``target`` (m,).

        .. math:: L = -\frac1m \sum_i \log \operatorname{softmax}(Z)_{i y_i}

        The shapes and the labels' dtype are checked on every call, and a label
        :math:`\ge K` or :math:`< -K` fails the indexing numpy does anyway; a label in
        :math:`-K..-1` would count from the end, which only :meth:`check_target` finds (a
        check of the values costs a tenth of this method, so
        :meth:`~ml_math_nn.train.Trainer.fit` runs it once on the whole training set).
        """
        y = np.asarray(target)
        if output.ndim != 2 or y.shape != output.shape[:1] or y.dtype.kind not in "iu":
            raise ValueError(f"expected logits (m, K) and labels (m,), got {output.shape} and {y.dtype} {y.shape}")
        shifted = output - output.max(axis=1, keepdims=True)
        try:
            label_logits = shifted[np.arange(len(y)), y]
        except IndexError:
            self.check_target(y, output.shape)  # names the label
            raise
        probs = np.exp(shifted)
        sums = probs.sum(axis=1, keepdims=True)
        probs /= sums
        self._probs, self._y = probs, y
        self._w = None if sample_weight is None else self._weights(sample_weight, len(y))
        if self._w is not None:
            return float(self._w @ (np.log(sums[:, 0]) - label_logits))
        # sum()/m rather than mean(): on a batch of a few dozen rows mean's own
        # bookkeeping costs more than the arithmetic.
        return float(np.log(sums).sum() - label_logits.sum()) / len(y)

    def backward(self) -> Array:
        """Gradient of the last loss with respect to the logits: :math:`(A - Y)/m`."""
        if self._probs is None or self._y is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        m = len(self._y)
        if self._w is not None:
            grad = self._probs.copy()
            grad[np.arange(m), self._y] -= 1.0
            grad *= self._w.astype(grad.dtype)[:, None]
            return grad
        grad = self._probs * (1.0 / m)  # a new array: backward may be called again
        grad[np.arange(m), self._y] -= 1.0 / m
        return grad

    def activate(self, output: Array) -> Array:
        """Class probabilities, :func:`softmax` of the logits."""
        return softmax(output)

    def decide(self, output: Array) -> NDArray[np.intp]:
        """The most probable class of each row: the index of its largest logit."""
        return np.argmax(output, axis=1)

    def score(self, decision: NDArray[Any], target: Target) -> float:
        """Accuracy: the fraction of rows whose class is the label."""
        return float(np.mean(decision == target))


class _Elementwise(Loss):
    r"""A head whose loss is a mean over the K outputs of elementwise losses :math:`e(z, y)`.

    .. math::
        \ell_i = \frac1K \sum_k e(Z_{ik}, Y_{ik}), \qquad
        \frac{\partial L}{\partial Z_{ik}} = \frac{w_i}{\sum_j w_j} \frac1K e'(Z_{ik}, Y_{ik})

    With every :math:`w_i = 1`, :math:`L` is the mean over all :math:`mK` entries.
    """

    def __init__(self) -> None:
        self._cache: tuple[Array, Array, NDArray[np.float64] | None] | None = None

    def _target_2d(self, target: Target, shape: tuple[int, ...]) -> NDArray[Any]:
        _check_shape(shape, self.name)
        y = np.asarray(target)
        if y.ndim == 1 and shape[1] == 1:
            y = y[:, None]
        if y.shape != shape:
            raise ValueError(f"{self.name}: expected targets of shape {shape}, got {y.shape}")
        return y

    def elementwise(self, z: Array, y: Array) -> Array:
        r"""The losses :math:`e(z, y)`, entry by entry."""
        raise NotImplementedError

    def derivative(self, z: Array, y: Array) -> Array:
        r""":math:`\partial e / \partial z`, entry by entry (a new array)."""
        raise NotImplementedError

    def sample_losses(self, output: Array, target: Target) -> Array:
        y = self.check_target(target, output.shape).astype(output.dtype, copy=False)
        return self.elementwise(output, y).mean(axis=1)

    def forward(self, output: Array, target: Target, sample_weight: Any = None) -> float:
        y = self.check_target(target, output.shape).astype(output.dtype, copy=False)
        losses = self.elementwise(output, y)
        m, k = output.shape
        w = self._weights(sample_weight, m)
        self._cache = (output, y, w)
        if w is None:
            return float(losses.sum()) / (m * k)
        return float(w @ losses.sum(axis=1, dtype=np.float64)) / k

    def backward(self) -> Array:
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        z, y, w = self._cache
        m, k = z.shape
        grad = self.derivative(z, y)
        if w is None:
            grad *= 1.0 / (m * k)
        else:
            grad *= (w / k).astype(grad.dtype)[:, None]
        return grad


class SigmoidCrossEntropy(_Elementwise):
    r"""Independent sigmoid per output with the binary cross-entropy, for multi-label targets.

    For logits :math:`Z \in \mathbb R^{m \times K}` and indicators :math:`Y \in \{0, 1\}^{m \times K}`
    (label :math:`k` of sample :math:`i` present or not), :math:`P = \sigma(Z)`:

    .. math::
        e(z, y) = -y \log\sigma(z) - (1 - y)\log(1 - \sigma(z))
                = \operatorname{softplus}(z) - y z
                = \max(z, 0) - y z + \log(1 + e^{-|z|}), \qquad
        \frac{\partial e}{\partial z} = \sigma(z) - y

    The last form never takes the log of a rounded probability and has no positive
    exponent: it is finite for any finite logit (:math:`|z| = 10^4` included).  The
    sample's loss is the mean over its K labels (so that :math:`L` is PyTorch's
    ``binary_cross_entropy_with_logits`` with ``reduction="mean"``).  The decision is
    :math:`P_{ik} > 0.5`; the score is the subset accuracy.
    """

    name = "sigmoid_cross_entropy"
    score_name = "acc"
    probabilistic = True

    def check_target(self, target: Target, shape: tuple[int, ...]) -> NDArray[Any]:
        y = self._target_2d(target, shape)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{self.name}: targets must be 0/1 indicators, got dtype {y.dtype}")
        indicator = (y == 0) | (y == 1)
        if not indicator.all():
            raise ValueError(f"{self.name}: targets must be 0/1 indicators, got {y[~indicator][0]}")
        return y

    def elementwise(self, z: Array, y: Array) -> Array:
        return softplus(z) - y * z

    def derivative(self, z: Array, y: Array) -> Array:
        return sigmoid(z) - y

    def activate(self, output: Array) -> Array:
        """The probability of each label, :func:`sigmoid` of its logit."""
        return sigmoid(output)

    def decide(self, output: Array) -> NDArray[np.int8]:
        """0/1 indicators: 1 where the label's probability is above 0.5."""
        return (sigmoid(output) > 0.5).astype(np.int8)

    def score(self, decision: NDArray[Any], target: Target) -> float:
        """Subset accuracy: the fraction of rows whose every label is right."""
        y = np.asarray(target)
        return float(np.mean(np.all(decision == y.reshape(decision.shape), axis=1)))


class MeanSquaredError(_Elementwise):
    r"""Identity outputs with the squared error, for real-valued targets (one or several outputs).

    For outputs :math:`Z \in \mathbb R^{m \times K}` and targets :math:`Y` of the same shape:

    .. math:: e(z, y) = (z - y)^2, \qquad \frac{\partial e}{\partial z} = 2 (z - y)

    The sample's loss is the mean over its K outputs, so :math:`L` is the mean over all
    :math:`mK` entries, PyTorch's ``mse_loss`` with ``reduction="mean"`` (scikit-learn's
    ``squared_error`` is half of it times K).  The prediction and the decision are the
    outputs; the score, ``r2``, is the coefficient of determination averaged over the
    outputs (:meth:`score`).
    """

    name = "mean_squared_error"
    score_name = "r2"
    probabilistic = False

    def check_target(self, target: Target, shape: tuple[int, ...]) -> NDArray[Any]:
        y = self._target_2d(target, shape)
        if y.dtype.kind not in "iuf":
            raise ValueError(f"{self.name}: targets must be real numbers, got {y.dtype}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{self.name}: targets must be finite, got {y[~np.isfinite(y)][0]}")
        return y

    def elementwise(self, z: Array, y: Array) -> Array:
        diff = z - y
        return diff * diff

    def derivative(self, z: Array, y: Array) -> Array:
        return 2.0 * (z - y)

    def activate(self, output: Array) -> Array:
        """The predicted values: the outputs themselves."""
        return output

    def decide(self, output: Array) -> Array:
        """The predicted values: the outputs themselves."""
        return output

    def score(self, decision: NDArray[Any], target: Target) -> float:
        r"""Coefficient of determination, averaged over the K outputs.

        .. math:: R^2_k = 1 - \frac{\sum_i (Y_{ik} - \hat Y_{ik})^2}{\sum_i (Y_{ik} - \bar Y_k)^2}

        An output whose targets are all equal (zero denominator) scores 1 if it is
        predicted exactly and 0 otherwise, as scikit-learn's ``r2_score`` does.
        """
        pred = np.asarray(decision, dtype=np.float64)
        y = np.asarray(target, dtype=np.float64).reshape(pred.shape)
        residual = ((y - pred) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        constant = total == 0
        r2 = np.where(constant, (residual == 0).astype(np.float64), 1.0 - residual / np.where(constant, 1.0, total))
        return float(r2.mean())
