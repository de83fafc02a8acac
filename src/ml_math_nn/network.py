r"""The network: a stack of layers with a loss head and an L2 penalty.

``Network.forward`` runs the layers in order and returns the outputs (the logits of a
classifier); ``Network.backward`` runs them in reverse from ``dL/doutputs``.  The head
(:attr:`Network.loss`, a :class:`~ml_math_nn.losses.Loss`; softmax cross-entropy unless
chosen) gives the loss, its gradient, the predictions and the score.  Gradients are
stored in each layer; an optimiser then updates ``network.parameters()`` in place (two
separate steps).

The network lays all its layers' parameters end to end in one buffer and their gradients
in another (each layer's arrays become views of them) and hands both out as a
:class:`~ml_math_nn.optim.ParameterBuffer` (:meth:`Network.flat_parameters`), so that an
elementwise optimiser can update every parameter in one pass over one array (see
:meth:`ml_math_nn.optim.Optimizer.step`).

The objective minimised is the head's (weighted) mean loss :math:`L_0` plus an optional
L2 penalty on the layers' weights (those their ``weight_names`` name: the weight
matrices of the dense layers, not biases, nor batch-norm parameters):

.. math::
    L = L_0 + \frac{\lambda}{2} \sum_{\ell} \lVert W_\ell \rVert_F^2,\qquad
    \frac{\partial L}{\partial W_\ell} = \frac{\partial L_0}{\partial W_\ell} + \lambda W_\ell
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import init as initializers
from ._types import Array
from .layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    Reshape,
    Shape,
    layer_from_config,
)
from .losses import Loss, SoftmaxCrossEntropy, Target, loss_from_config
from .optim import ParameterBuffer

ACTIVATIONS = Activation.options
"""Activation layers by the name used in options, each built with its defaults (``gelu``
is the exact GELU and ``gelu_tanh`` its tanh approximation, ``leaky_relu`` has slope
0.01, ``elu`` has alpha 1).  A read-only mapping to the classes, filled by the classes
themselves: an :class:`~ml_math_nn.layers.Activation` registers itself by its ``name``."""


INFERENCE_BYTES = 64 * 2**20
"""The memory an inference chunk's largest layer may take (:meth:`Network.predict`): 64 MiB.
An MLP's chunks stay at their 4096 rows; a convolution's im2col rows make its chunks smaller."""


class Network:
    r"""A feed-forward network ``layers[0] -> ... -> layers[-1]`` with a loss head.

    Parameters
    ----------
    layers : sequence of Layer
        The layers in forward order; the last one gives the outputs the head expects
        (one logit per class for the default head).
    dtype : numpy dtype
        Floating type of parameters and of the data passed through.
    l2 : float
        :math:`\lambda \ge 0`, the weight of the L2 penalty (see the module docstring).
    loss : Loss, optional
        The head (:mod:`ml_math_nn.losses`); None means
        :class:`~ml_math_nn.losses.SoftmaxCrossEntropy`.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        dtype: np.dtype[Any] | type = np.float32,
        l2: float = 0.0,
        loss: Loss | None = None,
    ) -> None:
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        self.loss: Loss = SoftmaxCrossEntropy() if loss is None else loss
        self.l2 = l2
        self._pack()

    def _pack(self) -> None:
        """Move every layer's params into one buffer and its grads into another, values kept.

        Arrays of mixed dtypes are left as they are (an optimiser then updates them one by one).
        """
        layers = list(dict.fromkeys(self.layers))  # a layer used twice is packed once
        first = {id(layer): i for i, layer in reversed(list(enumerate(self.layers)))}
        places = [(layer, key) for layer in layers for key in layer.params]
        tensors = [(f"{first[id(layer)]}.{key}", layer.params[key], layer.grads[key]) for layer, key in places]
        self._buffer: ParameterBuffer | None = None
        if not tensors or len({a.dtype for _, p, g in tensors for a in (p, g)}) != 1:
            return
        self._buffer = ParameterBuffer.pack(tensors)
        for (layer, key), (_, param, grad) in zip(places, self._buffer, strict=True):
            layer.params[key], layer.grads[key] = param, grad
        self._placed = [(layer.params, layer.grads, key) for layer, key in places]
        self._shared_layers = len(layers) != len(self.layers)

    def flat_parameters(self) -> ParameterBuffer | None:
        """Every parameter end to end in one flat array and every gradient in another.

        The buffer's tensors are the layers' own arrays (the same objects that
        :meth:`parameters` yields, under the same names), so an optimiser that updates the
        flat array updates the layers.  ``None`` when the parameters do not lie in one
        buffer: mixed dtypes, or a layer used twice (whose tensors :meth:`parameters`
        yields, and an optimiser updates, once per use).  A layer array replaced since
        the packing (rather than written into) is packed again first, values kept.
        """
        if self._buffer is None or self._shared_layers:
            return None
        if not all(
            params[key] is param and grads[key] is grad
            for (params, grads, key), (_, param, grad) in zip(self._placed, self._buffer.tensors, strict=True)
        ):
            self._pack()
        return self._buffer

    def __getstate__(self) -> dict[str, Any]:
        # The buffer is the layers' arrays again; pickle stores each view as an array of its own.
        return {k: v for k, v in self.__dict__.items() if k not in ("_buffer", "_placed", "_shared_layers")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pack()

    @property
    def l2(self) -> float:
        r""":math:`\lambda`, the L2 penalty's weight; may be changed between steps."""
        return self._l2

    @l2.setter
    def l2(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {value}")
        self._l2 = float(value)

    # -- the two passes ----------------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:
        """The outputs of the batch ``x`` (samples along the first axis; the logits of a classifier)."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad: Array) -> Array:
        r"""Backpropagate ``dL/dlogits``; returns ``dL/dx`` and fills every layer's grads.

        The grads are those of the whole objective: each dense weight gradient also
        receives the penalty's :math:`\lambda W`.
        """
        grad = self._backward_to_first(grad)
        grad = self.layers[0].backward(grad)
        self._add_penalty_grads()
        return grad

    def _backward_to_first(self, grad: Array) -> Array:
        """Backpropagate through every layer but the first; returns the first one's output gradient."""
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        return grad

    def _add_penalty_grads(self) -> None:
        if self.l2:
            for layer, key in self._penalised():
                layer.grads[key] += self.l2 * layer.params[key]

    def penalty(self) -> float:
        r"""The L2 term :math:`\frac{\lambda}{2} \sum_\ell \lVert W_\ell \rVert_F^2` (0 when :math:`\lambda = 0`)."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * sum(float(np.vdot(layer.params[k], layer.params[k])) for layer, k in self._penalised())

    def forward_backward(self, x: Array, target: Target, sample_weight: Any = None) -> tuple[float, Array]:
        """Forward in training mode, the loss (the head's plus the penalty), then backward.

        Returns the loss and the outputs; every layer's grads are filled.  Unlike
        :meth:`backward`, it does not compute ``dL/dx``: the first layer stores its
        parameter gradients only (:meth:`~ml_math_nn.layers.Layer.param_grads`).
        ``sample_weight`` (m,) weights the samples' losses (see :mod:`ml_math_nn.losses`).
        """
        output = self.forward(x, training=True)
        loss = self.loss.forward(output, target, sample_weight) + self.penalty()
        grad = self._backward_to_first(self.loss.backward())
        self.layers[0].param_grads(grad)
        self._add_penalty_grads()
        return loss, output

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give ``rng`` to every layer that draws in training (:meth:`Layer.set_rng`), e.g. the
        masks of :class:`~ml_math_nn.layers.Dropout`."""
        for layer in self.layers:
            layer.set_rng(rng)

    def _penalised(self) -> Iterator[tuple[Layer, str]]:
        """Each layer and key of a weight the L2 penalty applies to (its :attr:`~Layer.weight_names`)."""
        return ((layer, key) for layer in self.layers for key in layer.weight_names)

    # -- inference ---------------------------------------------------------------
    def predict_proba(self, x: Array, batch_size: int = 4096) -> Array:
        """The head's probabilities (of each class, or of each label), in inference mode in chunks.

        A head that predicts values, not probabilities (mean squared error), raises ``ValueError``.
        """
        if not self.loss.probabilistic:
            raise ValueError(
                f"predict_proba: the {self.loss.name} head predicts values, not probabilities; use predict"
            )
        return self._inference(self.loss.activate, x, batch_size)

    def predict(self, x: Array, batch_size: int = 4096) -> NDArray[Any]:
        """The head's decisions: the most probable class, the 0/1 labels, or the values."""
        return self._inference(self.loss.decide, x, batch_size)

    def _inference(self, head: Callable[[Array], NDArray[Any]], x: Array, batch_size: int) -> NDArray[Any]:
        x = np.asarray(x, dtype=self.dtype)
        batch_size = min(batch_size, self.inference_rows())
        # An empty x still runs one (empty) chunk, which gives the result its shape.
        return np.concatenate([head(self.forward(x[i : i + batch_size])) for i in range(0, max(len(x), 1), batch_size)])

    def inference_rows(self, budget: int = INFERENCE_BYTES) -> int:
        r"""How many samples one inference chunk may hold for its largest layer to stay within
        ``budget`` bytes: per sample, a layer holds its input, its output and the left matrix
        of its product (:math:`\text{multiply-adds} / \text{output channels}`: a dense layer's
        input again, a convolution's im2col rows, much the largest).  At least 1."""
        try:
            shapes = self.shapes()
        except ValueError:  # no layer fixes the input shape: nothing to size by
            return 1 << 30
        per_sample = max(
            math.prod(s_in) + math.prod(s_out) + layer.multiply_adds(s_in) // max(s_out[0] if s_out else 1, 1)
            for layer, (s_in, s_out) in zip(self.layers, shapes, strict=True)
        )
        return max(1, budget // (per_sample * self.dtype.itemsize))

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
    def input_shape(self) -> Shape:
        """The shape of one input sample: the one the first layer that fixes its input
        declares (:attr:`~ml_math_nn.layers.Layer.input_shape`, ``(n_in,)`` for a dense layer),
        provided the layers before it keep that shape.

        ``ValueError`` when no layer fixes it.  A network that also takes other shapes
        (``Flatten -> Dense(64, ...)`` takes ``(64,)`` and ``(1, 8, 8)``) answers the
        simplest one.
        """
        for i, layer in enumerate(self.layers):
            shape = layer.input_shape
            if shape is not None:
                if all(_keeps(before, shape) for before in self.layers[:i]):
                    return shape
                break
        raise ValueError(f"no layer of the network fixes the shape of its input: {self.layers!r}")

    @property
    def output_shape(self) -> Shape:
        """The shape of one output sample for an input of :attr:`input_shape`."""
        return self.shapes()[-1][1]

    def shapes(self, input_shape: Sequence[int] | None = None) -> list[tuple[Shape, Shape]]:
        """``(input shape, output shape)`` of one sample at each layer, from ``input_shape``
        (default :attr:`input_shape`); ``ValueError`` from the first layer that cannot take its input."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        out = []
        for layer in self.layers:
            out.append((shape, shape := layer.output_shape(shape)))
        return out

    @property
    def n_in(self) -> int:
        """Number of input features: the size of :attr:`input_shape`."""
        return math.prod(self.input_shape)

    @property
    def n_out(self) -> int:
        """Number of outputs per sample (classes of a classifier): the size of :attr:`output_shape`."""
        return math.prod(self.output_shape)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable architecture; the head is recorded only when it is not the default.

        (So the configuration of a softmax cross-entropy network, and every model file
        written before heads could be chosen, stay as they were.)
        """
        out: dict[str, Any] = {
            "dtype": self.dtype.name,
            "l2": self.l2,
            "layers": [layer.config() for layer in self.layers],
        }
        if self.loss.config() != SoftmaxCrossEntropy().config():
            out["loss"] = self.loss.config()
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Network:
        """Rebuild the architecture (parameters zeroed) and the head from :meth:`config`."""
        dtype = np.dtype(config.get("dtype", "float32"))
        loss = loss_from_config(config["loss"]) if "loss" in config else None
        return cls([layer_from_config(c, dtype) for c in config["layers"]], dtype, config.get("l2", 0.0), loss)

    def __repr__(self) -> str:
        head = "" if "loss" not in self.config() else f", loss={self.loss!r}"
        return f"Network({self.layers!r}, dtype={self.dtype.name}, l2={self.l2}{head})"


def _keeps(layer: Layer, shape: Shape) -> bool:
    """Whether ``layer`` takes samples of ``shape`` and gives samples of the same shape."""
    try:
        return layer.output_shape(shape) == shape
    except ValueError:
        return False


def build_mlp(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    rng: np.random.Generator,
    activation: str | Sequence[str] = "relu",
    dtype: np.dtype[Any] | type = np.float32,
    *,
    dropout: float = 0.0,
    batch_norm: bool = False,
    init: str | None = None,
    l2: float = 0.0,
    loss: Loss | None = None,
) -> Network:
    """A multilayer perceptron: per hidden width ``Dense [-> BatchNorm] -> activation [-> Dropout]``,
    then a ``Dense`` to ``n_out`` logits.

    Parameters
    ----------
    n_in, hidden, n_out : int, sequence of int, int
        Input width, hidden widths (any number, ``()`` for none) and number of classes.
    rng : numpy.random.Generator
        Source of the initial weights.
    activation : str or sequence of str
        A key of :data:`ACTIVATIONS` for every hidden layer, or one per hidden layer.
    dtype : numpy dtype
        Floating type of every parameter.
    dropout : float
        Rate of a :class:`~ml_math_nn.layers.Dropout` after each hidden activation
        (none when 0).  Its generator is set later with :meth:`Network.set_rng`.
    batch_norm : bool
        Put a :class:`~ml_math_nn.layers.BatchNorm` between each hidden ``Dense``
        (then built without bias, which BatchNorm would cancel) and its activation.
    init : str, optional
        Initialiser of every ``Dense`` layer.  None picks
        :func:`ml_math_nn.init.default_for` the activation that follows each layer
        (Glorot uniform for the output layer, which feeds the softmax).
    l2 : float
        Weight of the L2 penalty on the dense weight matrices.
    loss : Loss, optional
        The head (None: softmax cross-entropy over ``n_out`` classes).
    """
    names = [activation] * len(hidden) if isinstance(activation, str) else list(activation)
    if len(names) != len(hidden):
        raise ValueError(f"got {len(names)} activations for {len(hidden)} hidden layers; give one or one per layer")
    activations = [ACTIVATIONS.lookup(name) for name in names]
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[Layer] = []
    width = n_in
    for h, activation_cls in zip(hidden, activations, strict=True):
        layers.append(Dense(width, h, init or activation_cls.default_init, rng, dtype, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm(h, dtype=dtype))
        layers.append(activation_cls())
        if dropout > 0:
            layers.append(Dropout(dropout))
        width = h
    layers.append(Dense(width, n_out, init or initializers.default_for(None), rng, dtype))
    return Network(layers, dtype, l2, loss)


# -- any architecture from a list of layers (the ``layers`` option) ------------------

SPEC_SYNTAX = {
    "input": "input CxHxW",
    "conv": "conv OUT K [stride S] [pad P]",
    "maxpool": "maxpool K [stride S] [pad P]",
    "avgpool": "avgpool K [stride S] [pad P]",
    "batchnorm": "batchnorm",
    "dropout": "dropout RATE",
    "flatten": "flatten",
    "dense": "dense [UNITS]",
}
"""The form of each item of a layer spec but the activations (named alone: ``relu``, ...).

``K``, ``S`` and ``P`` are one size (``3``) or height x width (``5x3``); a pooling's
stride defaults to its kernel, a convolution's to 1, paddings to 0."""


def _sizes(text: str, count: int | None = None) -> tuple[int, ...]:
    parts = text.split("x")
    if (count is not None and len(parts) not in (1, count)) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a size like 3 or 5x3")
    values = tuple(int(p) for p in parts)
    return values * count if count is not None and len(values) == 1 else values


def parse_layer(text: str) -> dict[str, Any]:
    """One item of a layer spec as ``{"kind": ..., and its numbers}``; ``ValueError`` saying what is wrong.

    The forms are :data:`SPEC_SYNTAX`'s, and any activation name of :data:`ACTIVATIONS`.
    """
    words = text.split()
    if not words:
        raise ValueError("empty item")
    kind, args = words[0], words[1:]
    if kind in ACTIVATIONS:
        if args:
            raise ValueError(f"an activation takes no arguments (got {' '.join(args)!r})")
        return {"kind": "activation", "name": kind}
    if kind not in SPEC_SYNTAX:
        known = ", ".join([*SPEC_SYNTAX, *ACTIVATIONS])
        raise ValueError(f"unknown layer {kind!r}; known: {known}")
    usage = f"expected {SPEC_SYNTAX[kind]!r}"
    out: dict[str, Any] = {"kind": kind}
    try:
        if kind in ("conv", "maxpool", "avgpool"):
            lead = 2 if kind == "conv" else 1
            if len(args) < lead or (len(args) - lead) % 2:
                raise ValueError("wrong number of words")
            if kind == "conv":
                out["units"] = int(args[0])
                if out["units"] < 1:
                    raise ValueError(f"OUT must be >= 1, got {args[0]}")
            out["kernel_size"] = _sizes(args[lead - 1], 2)
            if min(out["kernel_size"]) < 1:
                raise ValueError(f"K must be >= 1, got {args[lead - 1]}")
            for key, value in zip(args[lead::2], args[lead + 1 :: 2], strict=True):
                name = {"stride": "stride", "pad": "padding"}.get(key)
                if name is None or name in out:
                    raise ValueError(f"unexpected {key!r}")
                out[name] = _sizes(value, 2)
                if name == "stride" and min(out[name]) < 1:
                    raise ValueError(f"S must be >= 1, got {value}")
        elif kind == "input":
            if len(args) != 1:
                raise ValueError("wrong number of words")
            out["shape"] = _sizes(args[0])
            if len(out["shape"]) != 3 or min(out["shape"]) < 1:
                raise ValueError(f"{args[0]!r} is not a positive shape CxHxW")
        elif kind == "dropout":
            if len(args) != 1:
                raise ValueError("wrong number of words")
            out["rate"] = float(args[0])
            if not 0.0 <= out["rate"] < 1.0:
                raise ValueError(f"RATE must be in [0, 1), got {args[0]}")
        elif kind == "dense":
            if len(args) > 1:
                raise ValueError("wrong number of words")
            if args:
                out["units"] = int(args[0])
                if out["units"] < 1:
                    raise ValueError(f"UNITS must be >= 1, got {args[0]}")
        elif args:
            raise ValueError("takes no arguments")
    except ValueError as e:
        raise ValueError(f"{e}; {usage}") from None
    return out


def parse_layers(items: Sequence[str]) -> list[dict[str, Any]]:
    """Every item of a layer spec parsed (:func:`parse_layer`) and the list's shape checked.

    ``ValueError`` in one line naming the first bad item, its position and text: e.g.
    ``layers item 3 'maxpool two': invalid literal ...; expected 'maxpool K [stride S] [pad P]'``.
    The list ends with ``dense`` without a width (the output layer, one unit per class,
    or whatever the head needs); ``input`` may only come first.
    """
    parsed = []
    for i, text in enumerate(items, 1):
        try:
            item = parse_layer(text)
        except ValueError as e:
            raise ValueError(f"layers item {i} {text!r}: {e}") from None
        if item["kind"] == "input" and i != 1:
            raise ValueError(f"layers item {i} {text!r}: 'input' may only be the first item")
        if item["kind"] == "dense" and "units" not in item and i != len(items):
            raise ValueError(f"layers item {i} {text!r}: only the last item is a dense layer without a width")
        parsed.append(item)
    if not parsed:
        raise ValueError("layers: the list is empty; the shortest network is ['dense']")
    if parsed[-1]["kind"] != "dense" or "units" in parsed[-1]:
        raise ValueError(
            f"layers item {len(items)} {items[-1]!r}: the last item must be 'dense' without a width (the output layer)"
        )
    return parsed


def build_from_spec(
    items: Sequence[str],
    sample_shape: Sequence[int],
    n_out: int,
    rng: np.random.Generator,
    dtype: np.dtype[Any] | type = np.float32,
    *,
    init: str | None = None,
    l2: float = 0.0,
    loss: Loss | None = None,
) -> Network:
    """The network a layer spec describes (its syntax: :data:`SPEC_SYNTAX` and ``docs/math.md``).

    Parameters
    ----------
    items : sequence of str
        The spec, e.g. ``["conv 16 3 pad 1", "relu", "maxpool 2", "flatten", "dense"]``.
    sample_shape : sequence of int
        The shape of one sample of the data: ``(C, H, W)`` for images, ``(n,)`` otherwise.
        The data reaches the network as rows, so a network for images starts with a
        :class:`~ml_math_nn.layers.Reshape` to ``(C, H, W)`` (the first item ``input
        CxHxW`` gives that shape to data of any shape with as many values).
    n_out : int
        The width of the last ``dense``: the number of classes of the default head.
    rng, dtype, init, l2, loss
        As for :func:`build_mlp`: a ``conv`` or ``dense`` is initialised with ``init``,
        or by default for the activation that follows it (before the next layer with
        weights); one directly followed by ``batchnorm`` has no bias.

    A layer that cannot take what comes to it raises ``ValueError`` naming the item.
    """
    parsed = parse_layers(items)
    sample_shape = tuple(sample_shape)
    layers: list[Layer] = []
    shape: Shape = (math.prod(sample_shape),)
    if parsed[0]["kind"] == "input":
        target: Shape = parsed[0]["shape"]
    elif len(sample_shape) > 1 and any(p["kind"] in ("conv", "maxpool", "avgpool") for p in parsed):
        target = sample_shape
    else:
        target = shape
    if target != shape:
        layers.append(Reshape(target))
        try:
            shape = layers[-1].output_shape(shape)
        except ValueError:
            raise ValueError(f"layers item 1 {items[0]!r}: the data's samples have {shape[0]} values") from None
    for i, (text, item) in enumerate(zip(items, parsed, strict=True)):
        kind = item["kind"]
        if kind == "input":
            continue
        following = [p for p in parsed[i + 1 :] if p["kind"] in ("activation", "conv", "dense")][:1]
        activation = following[0]["name"] if following and following[0]["kind"] == "activation" else None
        weight_init = init or initializers.default_for(activation)
        bias = i + 1 == len(parsed) or parsed[i + 1]["kind"] != "batchnorm"
        try:
            layer: Layer
            if kind == "conv":
                if len(shape) != 3:
                    hint = ": start the list with 'input CxHxW'" if len(shape) == 1 else ""
                    raise ValueError(f"needs images (C, H, W), got samples of shape {shape}{hint}")
                layer = Conv2D(
                    shape[0], item["units"], item["kernel_size"], item.get("stride", 1), item.get("padding", 0),
                    weight_init, rng, dtype, bias,
                )  # fmt: skip
            elif kind in ("maxpool", "avgpool"):
                pool = MaxPool2D if kind == "maxpool" else AvgPool2D
                layer = pool(item["kernel_size"], item.get("stride"), item.get("padding", 0))
            elif kind == "dense":
                if len(shape) != 1:
                    raise ValueError(f"needs flat samples, got shape {shape}: put 'flatten' before it")
                layer = Dense(shape[0], item.get("units", n_out), weight_init, rng, dtype, bias)
            elif kind == "batchnorm":
                layer = BatchNorm(shape[0], dtype=dtype)
            elif kind == "dropout":
                layer = Dropout(item["rate"])
            elif kind == "flatten":
                layer = Flatten()
            else:
                layer = ACTIVATIONS.lookup(item["name"])()
            shape = layer.output_shape(shape)
        except ValueError as e:
            raise ValueError(f"layers item {i + 1} {text!r}: {e}") from None
        layers.append(layer)
    return Network(layers, dtype, l2, loss)
