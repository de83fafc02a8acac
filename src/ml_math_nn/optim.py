r"""Optimisers: turn stored gradients into parameter updates.

Every optimiser has one interface, ``step(parameters)``, where ``parameters`` yields
``(name, param, grad)`` triples (see :meth:`ml_math_nn.network.Network.parameters`);
``param`` is updated in place.  Any per-parameter state lives in ``self.state`` keyed by
the parameter's name, so it can be saved and restored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._types import Array

Parameters = Iterable[tuple[str, Array, Array]]


class Optimizer:
    """Base class. ``lr`` may be changed between steps (learning-rate schedules do)."""

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.state: dict[str, dict[str, Any]] = {}
        self.t = 0

    def step(self, parameters: Parameters) -> None:
        """Apply one update to every parameter from its gradient."""
        self.t += 1
        for name, param, grad in parameters:
            self.update(name, param, grad)

    def update(self, name: str, param: Array, grad: Array) -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__.lower(), "lr": self.lr}


class SGD(Optimizer):
    r"""Plain mini-batch gradient descent, :math:`\theta \leftarrow \theta - \eta\, g`."""

    def update(self, name: str, param: Array, grad: Array) -> None:
        param -= self.lr * grad
