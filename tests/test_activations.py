"""Activations: values at known points, finite differences and PyTorch autograd in float64."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from ml_math_nn.layers import ELU, GELU, Activation, LeakyReLU, ReLU, Sigmoid, Tanh
from ml_math_nn.network import ACTIVATIONS, build_mlp
from test_layers import TOL, away_from_zero, layer_errors
from torch_reference import TOL as TORCH_TOL
from torch_reference import Twin, rel

# Kinked activations are checked on inputs kept 0.1 away from the kink.
FACTORIES: dict[str, tuple[Callable[[], Activation | ReLU], bool]] = {
    "relu": (ReLU, True),
    "leaky_relu": (lambda: LeakyReLU(0.07), True),
    "elu": (lambda: ELU(1.3), True),
    "gelu": (GELU, False),
    "gelu_tanh": (lambda: GELU("tanh"), False),
    "tanh": (Tanh, False),
    "sigmoid": (Sigmoid, False),
}


def random_input(seed: int, kinked: bool) -> np.ndarray:
    """A random shape (2..12, 1..8) of values spread over about [-9, 9]."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 13)), int(rng.integers(1, 9)))
    return 3 * (away_from_zero(shape, rng) if kinked else rng.normal(size=shape))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", FACTORIES)
def test_finite_differences(name: str, seed: int, rng: np.random.Generator) -> None:
    factory, kinked = FACTORIES[name]
    errors = layer_errors(factory(), random_input(seed, kinked), rng)
    assert errors["input"] <= TOL, errors


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", FACTORIES)
def test_matches_pytorch(name: str, seed: int, torch: ModuleType, rng: np.random.Generator) -> None:
    layer = FACTORIES[name][0]()
    x = random_input(seed, kinked=False)  # torch takes the same side at a kink, so no need to avoid it
    x[0, 0] = 0.0
    G = rng.normal(size=x.shape)
    out, grad_x = layer.forward(x, training=True), layer.backward(G)

    x_t = torch.tensor(x, requires_grad=True)
    out_t = Twin(torch, [layer]).forward(x_t, training=True)
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL


def test_names_are_the_specified_ones() -> None:
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "tanh", "sigmoid"}
    assert ACTIVATIONS["gelu"]().config() == {"type": "GELU", "approximate": "none"}  # exact by default
    assert ACTIVATIONS["gelu_tanh"]().config() == {"type": "GELU", "approximate": "tanh"}


def test_values_at_known_points() -> None:
    z = np.array([[-2.0, 0.0, 1.0]])
    np.testing.assert_allclose(LeakyReLU(0.1).forward(z), [[-0.2, 0.0, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(ELU(2.0).forward(z), [[2 * (math.exp(-2) - 1), 0.0, 1.0]], rtol=1e-15)
    phi = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-2.0, 0.0, 1.0)]
    np.testing.assert_allclose(GELU().forward(z), [[-2 * phi[0], 0.0, phi[2]]], rtol=1e-15)
    u = math.sqrt(2 / math.pi) * (1 + 0.044715)
    assert GELU("tanh").forward(np.array([[1.0]]))[0, 0] == pytest.approx(0.5 * (1 + math.tanh(u)), rel=1e-15)
    np.testing.assert_allclose(Tanh().forward(z), np.tanh(z), rtol=1e-15)
    np.testing.assert_allclose(Sigmoid().forward(z), [[1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(-1))]], rtol=1e-15)


def test_derivatives_at_zero_follow_pytorch() -> None:
    z, one = np.zeros((1, 1)), np.ones((1, 1))
    for layer, slope in [(LeakyReLU(0.1), 0.1), (ELU(2.0), 2.0), (GELU(), 0.5), (Tanh(), 1.0), (Sigmoid(), 0.25)]:
        layer.forward(z)
        assert layer.backward(one)[0, 0] == slope, repr(layer)


def test_extreme_inputs_stay_finite_without_warnings() -> None:
    z = np.array([[-1000.0, -40.0, 40.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow or invalid-value warning fails the test
        for layer in (ELU(), GELU(), GELU("tanh"), Tanh(), Sigmoid(), LeakyReLU()):
            out = layer.forward(z)
            assert np.all(np.isfinite(out)) and np.all(np.isfinite(layer.backward(np.ones_like(z)))), repr(layer)
        s = Sigmoid().forward(z)
    assert s[0, 0] == 0.0 and s[0, 3] == 1.0
    assert s[0, 1] == pytest.approx(math.exp(-40), rel=1e-14)  # tiny outputs keep their relative precision


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(ValueError, match="GELU approximate must be 'none' or 'tanh', got 'erf'"):
        GELU("erf")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_registered_activation_builds_a_network_that_trains(name: str) -> None:
    """A registered name always builds: ``build_mlp`` makes each with its defaults, and a step runs."""
    rng = np.random.default_rng(0)
    net = build_mlp(3, (4, 4), 2, rng, name, np.float64)
    assert [type(layer) for layer in net.layers[1::2]] == [ACTIVATIONS[name]] * 2
    x, y = rng.normal(size=(6, 3)), np.arange(6) % 2
    loss, output = net.forward_backward(x, y)
    assert np.isfinite(loss) and output.shape == (6, 2)
    assert all(np.isfinite(g).all() and g.any() for _, _, g in net.parameters())
