r"""Weight initialisers.

Each initialiser draws a ``(n_in, n_out)`` weight matrix from ``rng`` in float64 (the
layer casts it to its dtype), so the same seed gives the same weights in float32 and
float64.

* He (Kaiming) keeps the variance of ReLU activations constant from layer to layer:
  :math:`\operatorname{Var}(W) = 2 / n_{in}`.
* Glorot (Xavier) balances forward and backward variance for symmetric activations
  (tanh, identity): :math:`\operatorname{Var}(W) = 2 / (n_{in} + n_{out})`.

A uniform distribution on :math:`[-a, a]` has variance :math:`a^2/3`, which gives the
bounds used below.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Initializer = Callable[[int, int, np.random.Generator], NDArray[np.float64]]


def he_normal(n_in: int, n_out: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r""":math:`W_{ij} \sim \mathcal N(0,\, 2/n_{in})`."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))


def he_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r""":math:`W_{ij} \sim \mathcal U(-a, a)`, :math:`a = \sqrt{6/n_{in}}`."""
    bound = np.sqrt(6.0 / n_in)
    return rng.uniform(-bound, bound, size=(n_in, n_out))


def glorot_normal(n_in: int, n_out: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r""":math:`W_{ij} \sim \mathcal N(0,\, 2/(n_{in}+n_{out}))`."""
    return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=(n_in, n_out))


def glorot_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r""":math:`W_{ij} \sim \mathcal U(-a, a)`, :math:`a = \sqrt{6/(n_{in}+n_{out})}`."""
    bound = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-bound, bound, size=(n_in, n_out))


INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
}


def get(name: str) -> Initializer:
    """Look an initialiser up by name, with a clear error for unknown names."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initialiser {name!r}; choose one of: {', '.join(INITIALIZERS)}") from None


def default_for(activation: str | None) -> str:
    r"""The initialiser that suits a dense layer followed by ``activation`` (an option name).

    Each activation class says it (:attr:`ml_math_nn.layers.Activation.default_init`): He
    normal before the ReLU-like activations (:data:`RELU_LIKE`), which keep about half of
    the variance, restored by He's factor 2; Glorot uniform before tanh, which is the
    identity near 0, and by convention before the sigmoid (which is not: :math:`\sigma(0) = 1/2`,
    :math:`\sigma'(0) = 1/4`) and before the loss head (``activation`` None), which the output
    layer feeds.  docs/math.md section 11 derives both.
    """
    if activation is None:
        return "glorot_uniform"
    from .layers import Activation  # the layers import this module: look them up when asked

    return Activation.options.lookup(activation).default_init


def __getattr__(name: str) -> frozenset[str]:
    """``RELU_LIKE``: the activations (option names) that pass positive inputs about
    unchanged and damp negative ones, those that take He's initialisation; read from the
    activation classes when first asked for."""
    if name == "RELU_LIKE":
        from .layers import Activation

        return frozenset(key for key, cls in Activation.options.items() if cls.default_init == "he_normal")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
