"""Each layer alone: analytic gradients against central finite differences (float64).

For a layer f and a fixed random G, the scalar L = sum(G * f(X)) has dL/df = G, so
``layer.backward(G)`` must equal the finite-difference gradient of L with respect to
the input and to every parameter.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn.gradcheck import numerical_gradient, relative_error
from ml_math_nn.layers import Dense, Layer, ReLU

TOL = 1e-7


def away_from_zero(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values with |x| >= 0.1, so finite differences never straddle a ReLU kink."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


def layer_errors(layer: Layer, x: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    out = layer.forward(x, training=True)
    G = rng.normal(size=out.shape)
    G_before = G.copy()
    grad_x = layer.backward(G)
    assert np.array_equal(G, G_before), "backward modified its incoming gradient"
    analytic = {k: v.copy() for k, v in layer.grads.items()}

    def loss() -> float:
        return float(np.sum(G * layer.forward(x, training=True)))

    errors = {"input": relative_error(grad_x, numerical_gradient(loss, x))}
    for key, param in layer.params.items():
        errors[key] = relative_error(analytic[key], numerical_gradient(loss, param))
    return errors


@pytest.mark.parametrize("m,n_in,n_out", [(1, 1, 1), (5, 3, 4), (17, 8, 2)])
def test_dense_gradients(m: int, n_in: int, n_out: int, rng: np.random.Generator) -> None:
    layer = Dense(n_in, n_out, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=n_out)
    errors = layer_errors(layer, rng.normal(size=(m, n_in)), rng)
    assert set(errors) == {"input", "W", "b"}
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("shape", [(1, 1), (6, 5), (32, 9)])
def test_relu_gradients(shape: tuple[int, int], rng: np.random.Generator) -> None:
    errors = layer_errors(ReLU(), away_from_zero(shape, rng), rng)
    assert errors["input"] <= TOL


def test_dense_forward_is_affine(rng: np.random.Generator) -> None:
    layer = Dense(3, 2, rng=rng, dtype=np.float64)
    x = rng.normal(size=(4, 3))
    W, b = layer.params["W"], layer.params["b"]
    expected = np.array([[sum(x[i, k] * W[k, j] for k in range(3)) + b[j] for j in range(2)] for i in range(4)])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-14)


def test_relu_values_and_zero_subgradient() -> None:
    relu = ReLU()
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(relu.forward(x), [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [[0.0, 0.0, 1.0]])


def test_dense_keeps_dtype(rng: np.random.Generator) -> None:
    for dtype in (np.float32, np.float64):
        layer = Dense(4, 3, rng=rng, dtype=dtype)
        out = layer.forward(np.ones((2, 4), dtype=dtype))
        assert out.dtype == dtype and layer.params["W"].dtype == dtype
        assert layer.backward(np.ones((2, 3), dtype=dtype)).dtype == dtype


def test_backward_before_forward_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        ReLU().backward(np.ones((1, 2)))


def test_dense_rejects_bad_widths() -> None:
    with pytest.raises(ValueError, match="widths must be >= 1"):
        Dense(0, 3)
