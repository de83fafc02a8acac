"""Layers: each one a forward/backward pair.

Conventions (used everywhere in the library and in ``docs/math.md``): a batch is a
matrix ``X`` of shape ``(m, n)`` with one **sample per row**.  A dense layer computes
``Z = X W + b`` with ``W`` of shape ``(n_in, n_out)``.  This is the transpose of the
column convention ``Z = W X + b`` used in many textbooks: ``W_ours = W_col^T``.

Every layer follows one protocol:

* ``forward(x, training)`` returns the output and caches what ``backward`` needs;
* ``backward(grad)`` takes ``dL/d(output)``, returns ``dL/d(input)`` and stores
  ``dL/d(param)`` in ``self.grads``.  It never writes into ``grad``.

Applying an update to ``self.params`` is the optimiser's job (:mod:`ml_math_nn.optim`),
never the layer's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import init as initializers
from ._types import Array


class Layer:
    """Base class of every layer.

    Attributes
    ----------
    params : dict of str to ndarray
        Trainable parameters, updated in place by an optimiser.
    grads : dict of str to ndarray
        Gradients of the loss with respect to ``params``, same keys and shapes,
        written by :meth:`backward`.
    buffers : dict of str to ndarray
        Non-trainable state that is saved with the model (e.g. running statistics).
    """

    registry: ClassVar[dict[str, type[Layer]]] = {}

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.__name__] = cls

    def forward(self, x: Array, training: bool = False) -> Array:
        """Compute the layer's output for the batch ``x`` (one sample per row)."""
        raise NotImplementedError

    def backward(self, grad: Array) -> Array:
        """Given ``dL/d(output)``, store parameter gradients and return ``dL/d(input)``."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description from which :func:`layer_from_config` rebuilds it."""
        return {"type": type(self).__name__}

    def output_dim(self, input_dim: int) -> int:
        """Width of the output for an input of width ``input_dim``."""
        return input_dim

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def layer_from_config(config: dict[str, Any], dtype: np.dtype[Any] | type = np.float32) -> Layer:
    """Rebuild a layer (with freshly allocated, zero parameters) from :meth:`Layer.config`."""
    kwargs = dict(config)
    name = kwargs.pop("type", None)
    cls = Layer.registry.get(str(name))
    if cls is None:
        raise ValueError(f"unknown layer type {name!r}; known: {', '.join(sorted(Layer.registry))}")
    if cls is Dense:
        return Dense(**kwargs, dtype=dtype)
    return cls(**kwargs)


class Dense(Layer):
    r"""Fully connected affine layer.

    Forward:

    .. math:: Z = X W + \mathbf{1} b

    Backward, given :math:`G = \partial L / \partial Z`:

    .. math::
        \frac{\partial L}{\partial W} = X^\top G,\quad
        \frac{\partial L}{\partial b} = \mathbf{1}^\top G,\quad
        \frac{\partial L}{\partial X} = G W^\top

    The :math:`1/m` of the batch mean is already inside ``G`` (see
    :class:`ml_math_nn.losses.SoftmaxCrossEntropy`).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    init : str
        Name of the weight initialiser in :mod:`ml_math_nn.init`.
    rng : numpy.random.Generator, optional
        Source of the initial weights; without one, weights start at zero
        (as when a model is about to be loaded from a file).
    dtype : numpy dtype
        Floating type of the parameters.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        init: str = "he_normal",
        rng: np.random.Generator | None = None,
        dtype: np.dtype[Any] | type = np.float32,
    ) -> None:
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"Dense layer widths must be >= 1, got n_in={n_in}, n_out={n_out}")
        self.n_in, self.n_out, self.init = int(n_in), int(n_out), init
        if rng is None:
            weights = np.zeros((self.n_in, self.n_out), dtype=dtype)
        else:
            weights = initializers.get(init)(self.n_in, self.n_out, rng).astype(dtype)
        self.params = {"W": weights, "b": np.zeros(self.n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: Array | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad: Array) -> Array:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        np.matmul(self._x.T, grad, out=self.grads["W"])
        np.sum(grad, axis=0, out=self.grads["b"])
        return grad @ self.params["W"].T

    def config(self) -> dict[str, Any]:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "init": self.init}

    def output_dim(self, input_dim: int) -> int:
        if input_dim != self.n_in:
            raise ValueError(f"Dense layer expects {self.n_in} inputs, got {input_dim}")
        return self.n_out


class ReLU(Layer):
    r"""Rectified linear unit, :math:`A = \max(0, Z)`.

    Backward: :math:`\partial L/\partial Z = \partial L/\partial A \odot \mathbf{1}[Z > 0]`
    (the subgradient at 0 is taken as 0, as in PyTorch).
    """

    def __init__(self) -> None:
        super().__init__()
        self._mask: NDArray[np.bool_] | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad: Array) -> Array:
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        return grad * self._mask
