"""The network: a stack of layers with a softmax cross-entropy head.

``Network.forward`` runs the layers in order and returns logits; ``Network.backward``
runs them in reverse from ``dL/dlogits``.  Gradients are stored in each layer; an
optimiser then updates ``network.parameters()`` in place (two separate steps).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import init as initializers
from ._types import Array, Labels
from .layers import Dense, Layer, ReLU, layer_from_config
from .losses import SoftmaxCrossEntropy, softmax

ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU}


class Network:
    """A feed-forward network ``layers[0] -> ... -> layers[-1]`` producing logits.

    Parameters
    ----------
    layers : sequence of Layer
        The layers in forward order; the last one outputs one logit per class.
    dtype : numpy dtype
        Floating type of parameters and of the data passed through.
    """

    def __init__(self, layers: Sequence[Layer], dtype: np.dtype[Any] | type = np.float32) -> None:
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        self.loss = SoftmaxCrossEntropy()

    # -- the two passes ----------------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:
        """Logits of the batch ``x`` (m, n_in)."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad: Array) -> Array:
        """Backpropagate ``dL/dlogits``; returns ``dL/dx`` and fills every layer's grads."""
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def loss_and_grads(self, x: Array, y: Labels) -> tuple[float, Array]:
        """Forward in training mode, loss, then backward: returns the loss and the logits."""
        logits = self.forward(x, training=True)
        loss = self.loss.forward(logits, y)
        self.backward(self.loss.backward())
        return loss, logits

    # -- inference ---------------------------------------------------------------
    def predict_proba(self, x: Array, batch_size: int = 4096) -> Array:
        """Class probabilities, evaluated in inference mode in chunks of ``batch_size``."""
        x = np.asarray(x, dtype=self.dtype)
        out = [softmax(self.forward(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.empty((0, self.n_out), dtype=self.dtype)

    def predict(self, x: Array, batch_size: int = 4096) -> NDArray[np.intp]:
        """Index of the most probable class of each row."""
        return np.argmax(self.predict_proba(x, batch_size), axis=1)

    # -- parameters --------------------------------------------------------------
    def parameters(self) -> Iterator[tuple[str, Array, Array]]:
        """Yield ``(name, param, grad)`` for every trainable tensor, e.g. ``"0.W"``."""
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                yield f"{i}.{key}", value, layer.grads[key]

    def state(self) -> dict[str, Array]:
        """Every saved array (parameters and buffers) by name, e.g. ``"0.W"``."""
        out: dict[str, Array] = {}
        for i, layer in enumerate(self.layers):
            for key, value in {**layer.params, **layer.buffers}.items():
                out[f"{i}.{key}"] = value
        return out

    @property
    def n_in(self) -> int:
        return next(layer.n_in for layer in self.layers if isinstance(layer, Dense))

    @property
    def n_out(self) -> int:
        return next(layer.n_out for layer in reversed(self.layers) if isinstance(layer, Dense))

    def config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name, "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Network:
        """Rebuild the architecture (parameters zeroed) from :meth:`config`."""
        dtype = np.dtype(config.get("dtype", "float32"))
        return cls([layer_from_config(c, dtype) for c in config["layers"]], dtype)

    def __repr__(self) -> str:
        return f"Network({self.layers!r}, dtype={self.dtype.name})"


def build_mlp(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    rng: np.random.Generator,
    activation: str = "relu",
    dtype: np.dtype[Any] | type = np.float32,
) -> Network:
    """``Dense -> activation`` for each hidden width, then a ``Dense`` to ``n_out`` logits.

    Hidden layers use the initialiser that suits ``activation``; the output layer,
    which feeds the softmax, uses Glorot.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    layers: list[Layer] = []
    width = n_in
    for h in hidden:
        layers += [Dense(width, h, initializers.default_for(activation), rng, dtype), ACTIVATIONS[activation]()]
        width = h
    layers.append(Dense(width, n_out, "glorot_uniform", rng, dtype))
    return Network(layers, dtype)
