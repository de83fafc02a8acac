"""Weight initialisers: the variance and bounds of each formula, and the default per activation."""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn import init
from ml_math_nn.layers import Dense

N_IN, N_OUT = 400, 1000  # 400,000 draws: the sample variance has a relative standard error of 0.22%

# name: (variance, uniform bound or None)
FORMULAS = {
    "he_normal": (2 / N_IN, None),
    "he_uniform": (2 / N_IN, np.sqrt(6 / N_IN)),
    "glorot_normal": (2 / (N_IN + N_OUT), None),
    "glorot_uniform": (2 / (N_IN + N_OUT), np.sqrt(6 / (N_IN + N_OUT))),
}


@pytest.mark.parametrize("name", FORMULAS)
def test_initialiser_variance_and_bounds(name: str) -> None:
    variance, bound = FORMULAS[name]
    W = init.get(name)(N_IN, N_OUT, np.random.default_rng(0))
    assert W.shape == (N_IN, N_OUT) and W.dtype == np.float64
    assert abs(W.var() / variance - 1) < 0.01
    assert abs(W.mean()) < 5 * np.sqrt(variance / W.size)
    if bound is not None:
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.999 * bound  # the whole interval is used


def test_same_seed_same_weights_in_both_dtypes() -> None:
    a = Dense(7, 5, "glorot_normal", np.random.default_rng(1), np.float32)
    b = Dense(7, 5, "glorot_normal", np.random.default_rng(1), np.float64)
    np.testing.assert_array_equal(a.params["W"], b.params["W"].astype(np.float32))


def test_default_per_activation() -> None:
    for name in ("relu", "leaky_relu", "elu", "gelu"):
        assert init.default_for(name) == "he_normal"
    for name in ("tanh", "sigmoid", None):
        assert init.default_for(name) == "glorot_uniform"


def test_unknown_initialiser() -> None:
    with pytest.raises(ValueError, match="unknown initialiser 'xavier'; choose one of: he_normal, he_uniform"):
        init.get("xavier")
