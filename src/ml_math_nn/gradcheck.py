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

:func:`ml_math_nn.runs.builders.check_config` runs the check on the network
``ml-math-nn train`` would build from its options (the ``ml-math-nn gradcheck`` command),
and :func:`format_report` prints its table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from .losses import Target
from .network import Network

Results = dict[str, tuple[tuple[int, ...], float]]
"""``{tensor name: (shape, relative error)}``; ``"input"`` is :math:`\\partial L/\\partial X`."""

DEFAULT_TOL = 1e-5
"""Largest relative error ``ml-math-nn gradcheck`` accepts, with the step :math:`h = 10^{-6}`.

Measured on correct gradients (digits, 8 samples): 1e-10 to 1e-7 for networks of ReLU,
GELU, tanh, batch norm, dropout and L2, up to 9e-6 for five sigmoid layers, whose
gradients shrink fourfold per layer towards the input while the rounding error
:math:`\\epsilon_{mach}|f|/h` does not.  Measured on wrong formulas: 6e-4 for GELU's tanh
approximation used as the derivative of exact GELU, 0.7 for batch norm without its
:math:`\\hat X` term.  1e-5 lies between the two groups, 50 times below the smallest
formula error; deeper saturating stacks need a larger step (``--step 1e-4``), which
smooth activations allow.
"""


def relative_error(analytic: NDArray[Any], numeric: NDArray[Any]) -> float:
    r"""The largest deviation relative to the tensor's scale (0 when both are all zero).

    .. math:: \mathrm{err} = \frac{\max_j |g_j - \hat g_j|}{\max(\max_j |g_j|,\ \max_j |\hat g_j|)}
    """
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(analytic - numeric))) / scale


def numerical_gradient(f: Callable[[], float], x: Array, h: float = 1e-6) -> NDArray[np.float64]:
    r"""Central-difference gradient of ``f()`` with respect to ``x``, perturbing ``x`` in place.

    .. math:: \hat g_j = \frac{f(x + h e_j) - f(x - h e_j)}{2h}

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


def check_network(network: Network, x: Array, y: Target, h: float = 1e-6, sample_weight: Any = None) -> Results:
    """Compare backprop with finite differences for every parameter of ``network`` and its input.

    The loss is the network's whole objective (its head's loss of the targets ``y``,
    weighted by ``sample_weight`` if given, plus the L2 penalty), evaluated
    in training mode (so layers with random behaviour must be made deterministic by the
    caller, e.g. a fixed dropout mask).  Returns
    ``{name: (shape, relative error)}`` with ``"input"`` for :math:`\\partial L/\\partial X`.
    """
    x = np.array(x, dtype=network.dtype)

    def loss() -> float:
        return network.loss.forward(network.forward(x, training=True), y, sample_weight) + network.penalty()

    loss()
    grad_x = network.backward(network.loss.backward())
    analytic = {name: g.copy() for name, _, g in network.parameters()}
    results: Results = {}
    for name, param, _ in network.parameters():
        results[name] = (param.shape, relative_error(analytic[name], numerical_gradient(loss, param, h)))
    results["input"] = (x.shape, relative_error(grad_x, numerical_gradient(loss, x, h)))
    return results


def fix_dropout_masks(
    network: Network, m: int, rng: np.random.Generator, input_shape: Sequence[int] | None = None
) -> None:
    """Make every layer of ``network`` that draws in training draw once, for ``m`` samples
    (:meth:`~ml_math_nn.layers.Layer.fix_randomness`: a :class:`~ml_math_nn.layers.Dropout` keep-mask).

    Each mask is drawn once from ``rng`` (an entry is kept with probability :math:`1-p`), so
    the training-mode loss becomes a deterministic function of the parameters, which finite
    differences need: a fresh mask per evaluation would change the function being differentiated.
    A mask has the shape of the batch reaching its layer, followed from ``input_shape``
    (one sample's shape; default the network's :attr:`~ml_math_nn.network.Network.input_shape`).
    """
    for layer, (shape, _) in zip(network.layers, network.shapes(input_shape), strict=True):
        layer.fix_randomness((m, *shape), rng)


def format_report(results: Results, tol: float = DEFAULT_TOL) -> tuple[str, bool]:
    """The table ``tensor  shape  max rel error  ok`` and whether every error is ``<= tol``."""
    if not tol > 0:
        raise ValueError(f"--tol must be > 0, got {tol}")
    rows = [("tensor", "shape", "max rel error", "ok")]
    rows += [(name, str(shape), f"{err:.2e}", "ok" if err <= tol else "FAIL") for name, (shape, err) in results.items()]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    worst = max(err for _, err in results.values())
    failed = sum(not err <= tol for _, err in results.values())  # a NaN error fails too
    verdict = f"{failed} of {len(results)} tensors above" if failed else f"all {len(results)} tensors within"
    lines.append(f"{verdict} tol {tol:.0e} (largest error {worst:.2e})")
    return "\n".join(lines), not failed
