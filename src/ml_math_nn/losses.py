r"""Softmax and the cross-entropy loss, computed from logits.

For a batch of logits :math:`Z \in \mathbb R^{m \times K}` (one sample per row) and
integer labels :math:`y_i \in \{0..K-1\}` (one-hot :math:`Y`):

.. math::
    \operatorname{softmax}(Z)_{ik} = \frac{e^{Z_{ik} - M_i}}{\sum_j e^{Z_{ij} - M_i}},
    \qquad M_i = \max_j Z_{ij}

.. math::
    L = -\frac1m \sum_i \log \operatorname{softmax}(Z)_{i y_i}
      = \frac1m \sum_i \Big(M_i + \log\sum_j e^{Z_{ij}-M_i} - Z_{i y_i}\Big)

Subtracting :math:`M_i` leaves both unchanged and keeps every exponent
:math:`\le 0`: no overflow, and the log-sum-exp is :math:`\ge \log 1 = 0`, so
:math:`\log 0` never occurs.  The gradient with respect to the logits is

.. math:: \frac{\partial L}{\partial Z} = \frac1m (A - Y),\qquad A = \operatorname{softmax}(Z).
"""

from __future__ import annotations

import numpy as np

from ._types import Array, Labels


def log_softmax(z: Array) -> Array:
    r"""Row-wise :math:`\log\operatorname{softmax}(Z) = Z - M - \log\sum_j e^{Z_j - M}`."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: Array) -> Array:
    r"""Row-wise :math:`\operatorname{softmax}(Z)`, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class SoftmaxCrossEntropy:
    r"""Softmax over the logits fused with the mean cross-entropy loss.

    ``forward(z, y)`` returns :math:`L`; ``backward()`` returns
    :math:`\partial L / \partial Z = (A - Y)/m` for the last forward call.
    Fusing the two avoids the softmax Jacobian entirely and is exact.

    One pass gives both: with :math:`S = Z - M` and :math:`s_i = \sum_j e^{S_{ij}}`,

    .. math:: A_{ik} = e^{S_{ik}} / s_i,\qquad L = \frac1m \sum_i \big(\log s_i - S_{i y_i}\big),

    so the loss needs only :math:`m` logarithms, never the log of a tiny probability.
    """

    def __init__(self) -> None:
        self._probs: Array | None = None
        self._y: Labels | None = None

    def forward(self, z: Array, y: Labels) -> float:
        r"""Mean cross-entropy of logits ``z`` (m, K) against integer labels ``y`` (m,).

        .. math:: L = -\frac1m \sum_i \log \operatorname{softmax}(Z)_{i y_i}
        """
        if z.ndim != 2 or y.shape != (z.shape[0],):
            raise ValueError(f"expected logits (m, K) and labels (m,), got {z.shape} and {y.shape}")
        shifted = z - z.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sums = probs.sum(axis=1, keepdims=True)
        probs /= sums
        self._probs, self._y = probs, y
        # sum()/m rather than mean(): on a batch of a few dozen rows mean's own
        # bookkeeping costs more than the arithmetic.
        return float(np.log(sums).sum() - shifted[np.arange(len(y)), y].sum()) / len(y)

    def backward(self) -> Array:
        """Gradient of the last loss with respect to the logits: :math:`(A - Y)/m`."""
        if self._probs is None or self._y is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        m = len(self._y)
        grad = self._probs * (1.0 / m)  # a new array: backward may be called again
        grad[np.arange(m), self._y] -= 1.0 / m
        return grad
