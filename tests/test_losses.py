"""Softmax and cross-entropy: values, stability at extreme logits, gradient."""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn.gradcheck import numerical_gradient, relative_error
from ml_math_nn.losses import SoftmaxCrossEntropy, log_softmax, softmax


def test_softmax_rows_are_distributions(rng: np.random.Generator) -> None:
    p = softmax(rng.normal(size=(7, 5)) * 10)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)


def test_loss_matches_definition(rng: np.random.Generator) -> None:
    z = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, size=6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert SoftmaxCrossEntropy().forward(z, y) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_and_exact(dtype: type) -> None:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4], [0.0, 1e4, -1e4]], dtype=dtype)
    y = np.array([0, 1, 2, 0])
    p = softmax(z)
    assert np.all(np.isfinite(p)) and p.dtype == dtype
    np.testing.assert_allclose(p[0], [1, 0, 0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(p[3], [0, 1, 0])
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, y)
    # Sample losses: 0, log 3, log 3, and 1e4 (the true class is 1e4 below the maximum).
    assert np.isfinite(value)
    assert value == pytest.approx((0 + 2 * np.log(3) + 1e4) / 4, rel=1e-6)
    assert np.all(np.isfinite(loss.backward()))
    assert np.all(np.isfinite(log_softmax(z)))


def test_loss_gradient_is_probs_minus_onehot_over_m(rng: np.random.Generator) -> None:
    z = rng.normal(size=(5, 3))
    y = np.array([0, 2, 1, 1, 0])
    loss = SoftmaxCrossEntropy()
    loss.forward(z, y)
    grad = loss.backward()
    expected = (softmax(z) - np.eye(3)[y]) / 5
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=1e-17)
    numeric = numerical_gradient(lambda: SoftmaxCrossEntropy().forward(z, y), z)
    assert relative_error(grad, numeric) <= 1e-7


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="expected logits"):
        SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros(2, dtype=int))
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()
