r"""Central finite differences: the independent check of every analytic gradient.

For a scalar function :math:`f` of a tensor :math:`\theta`,

.. math:: \frac{\partial f}{\partial \theta_j} \approx
          \frac{f(\theta + h e_j) - f(\theta - h e_j)}{2h},

whose error is :math:`O(h^2)` (plus rounding of order :math:`\epsilon_{mach}|f|/h`).
With float64 and :math:`h = 10^{-6}` both are far below the tolerances used here.

The error reported for a tensor is

.. math:: \mathrm{err} = \frac{\max_j |g_j - \hat g_j|}{\max(\max_j |g_j|,\ \max_j |\hat g_j|)}

i.e. the largest deviation relative to the tensor's own scale, which stays meaningful
when individual entries are zero (dead ReLUs, unused pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array, Labels
from .network import Network


def relative_error(analytic: NDArray[Any], numeric: NDArray[Any]) -> float:
    """The scale-relative maximum deviation defined in the module docstring."""
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(analytic - numeric))) / scale


def numerical_gradient(f: Callable[[], float], x: Array, h: float = 1e-6) -> NDArray[np.float64]:
    """Central-difference gradient of ``f()`` with respect to ``x``, perturbing ``x`` in place.

    Every entry of ``x`` is restored exactly after it is perturbed.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing through it perturbs x
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for j in range(flat.size):
        original = flat[j].copy()
        flat[j] = original + h
        up = f()
        flat[j] = original - h
        down = f()
        flat[j] = original
        grad.reshape(-1)[j] = (up - down) / (2 * h)
    return grad


def check_network(network: Network, x: Array, y: Labels, h: float = 1e-6) -> dict[str, tuple[tuple[int, ...], float]]:
    """Compare backprop with finite differences for every parameter of ``network`` and its input.

    The loss is the network's whole objective (cross-entropy plus L2 penalty), evaluated
    in training mode (so layers with random behaviour must be made deterministic by the
    caller, e.g. a fixed dropout mask).  Returns
    ``{name: (shape, relative error)}`` with ``"input"`` for :math:`\\partial L/\\partial X`.
    """
    x = np.array(x, dtype=network.dtype)

    def loss() -> float:
        return network.loss.forward(network.forward(x, training=True), y) + network.penalty()

    loss()
    grad_x = network.backward(network.loss.backward())
    analytic = {name: g.copy() for name, _, g in network.parameters()}
    results: dict[str, tuple[tuple[int, ...], float]] = {}
    for name, param, _ in network.parameters():
        results[name] = (param.shape, relative_error(analytic[name], numerical_gradient(loss, param, h)))
    results["input"] = (x.shape, relative_error(grad_x, numerical_gradient(loss, x, h)))
    return results
