"""Each layer alone: analytic gradients against central finite differences (float64).

For a layer f and a fixed random G, the scalar L = sum(G * f(X)) has dL/df = G, so
``layer.backward(G)`` must equal the finite-difference gradient of L with respect to
the input and to every parameter.  The activations, dropout and batch norm have their
own files (test_activations.py, test_regularization.py) using the helpers here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn import layers as layers_module
from ml_math_nn.gradcheck import numerical_gradient, relative_error
from ml_math_nn.layers import (
    ELU,
    GELU,
    BatchNorm,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Tanh,
    layer_from_config,
)
from ml_math_nn.network import Network

TOL = 1e-7


def away_from_zero(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values with |x| >= 0.1, so finite differences never straddle a ReLU kink."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


def layer_errors(layer: Layer, x: np.ndarray, rng: np.random.Generator, training: bool = True) -> dict[str, float]:
    """FD relative error of dL/dx ("input") and of every dL/d(param) for L = sum(G * layer(x))."""
    out = layer.forward(x, training)
    G = rng.normal(size=out.shape)
    G_before = G.copy()
    grad_x = layer.backward(G)
    assert np.array_equal(G, G_before), "backward modified its incoming gradient"
    analytic = {k: v.copy() for k, v in layer.grads.items()}

    def loss() -> float:
        return float(np.sum(G * layer.forward(x, training)))

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


def test_backward_before_forward_is_an_error(rng: np.random.Generator) -> None:
    for layer in every_layer(2, rng):
        with pytest.raises(RuntimeError, match=f"{type(layer).__name__}.backward called before forward"):
            layer.backward(np.ones((1, 2)))


def test_dense_rejects_bad_widths() -> None:
    with pytest.raises(ValueError, match="widths must be >= 1"):
        Dense(0, 3)


def every_layer(n: int, rng: np.random.Generator, dtype: type = np.float64) -> list[Layer]:
    """One instance of every layer type (n inputs, n outputs), non-default options where there are any."""
    return [
        Dense(n, n, "glorot_normal", rng, dtype),
        Dense(n, n, "he_uniform", rng, dtype, bias=False),
        ReLU(),
        LeakyReLU(0.2),
        ELU(0.5),
        GELU(),
        GELU("tanh"),
        Tanh(),
        Sigmoid(),
        Dropout(0.3),
        BatchNorm(n, momentum=0.2, eps=1e-3, dtype=dtype),
        Flatten(),
    ]


def test_every_layer_covers_the_layer_types(rng: np.random.Generator) -> None:
    defined = {name for name, cls in Layer.registry.items() if cls.__module__ == layers_module.__name__}
    # GELUTanh (the option gelu_tanh) is saved as, and loads as, GELU(approximate="tanh").
    # The image layers (test_conv.py's image_layers) take (m, C, H, W) batches, not (m, n).
    from test_conv import image_layers

    covered = every_layer(2, rng) + image_layers(2, rng)
    assert {type(layer).__name__ for layer in covered} == defined - {"GELUTanh"}


def test_an_abstract_base_is_no_layer_type() -> None:
    """A registered layer type always builds a layer that runs: the Activation base, whose
    function is not written, is not one (a model file naming it is refused when read)."""
    assert "Activation" not in Layer.registry and "GELU" in Layer.registry
    with pytest.raises(ValueError, match="unknown layer type 'Activation'"):
        layer_from_config({"type": "Activation"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_round_trips_through_the_network_config(dtype: type, rng: np.random.Generator) -> None:
    net = Network(every_layer(3, rng, dtype), dtype, l2=0.25)
    clone = Network.from_config(net.config())
    assert clone.config() == net.config()
    assert clone.l2 == 0.25 and repr(clone) == repr(net)
    assert [type(a) for a in clone.layers] == [type(b) for b in net.layers]
    for name, value in net.state().items():
        assert clone.state()[name].shape == value.shape and clone.state()[name].dtype == dtype, name


def test_backward_never_modifies_its_incoming_gradient(rng: np.random.Generator) -> None:
    for training in (True, False):
        for layer in every_layer(4, rng):
            if isinstance(layer, Dropout):
                layer.fixed_mask = rng.random((6, 4)) >= layer.rate
            layer.forward(rng.normal(size=(6, 4)), training)
            G = rng.normal(size=(6, 4))
            G_before = G.copy()
            grad_x = layer.backward(G)
            assert np.array_equal(G, G_before), f"{layer!r}.backward(training={training}) modified its gradient"
            assert grad_x.shape == G.shape


def test_every_layer_keeps_float32(rng: np.random.Generator) -> None:
    for layer in every_layer(4, rng, np.float32):
        layer.rng = rng  # only Dropout reads it
        out = layer.forward(rng.normal(size=(5, 4)).astype(np.float32), training=True)
        grad_x = layer.backward(np.ones((5, 4), dtype=np.float32))
        assert out.dtype == grad_x.dtype == np.float32, repr(layer)
        assert all(g.dtype == np.float32 for g in layer.grads.values()), repr(layer)


def test_dense_without_bias_gradients(rng: np.random.Generator) -> None:
    layer = Dense(4, 3, rng=rng, dtype=np.float64, bias=False)
    errors = layer_errors(layer, rng.normal(size=(6, 4)), rng)
    assert set(errors) == {"input", "W"}
    assert max(errors.values()) <= TOL, errors


def test_layer_from_config_errors() -> None:
    with pytest.raises(ValueError, match="unknown layer type 'Conv2d'; known: .*BatchNorm"):
        layer_from_config({"type": "Conv2d"})
    with pytest.raises(ValueError, match="invalid Tanh layer config .*'slope'"):
        layer_from_config({"type": "Tanh", "slope": 2})
    with pytest.raises(ValueError, match="unknown initialiser 'lecun'"):
        layer_from_config({"type": "Dense", "n_in": 2, "n_out": 2, "init": "lecun"})
