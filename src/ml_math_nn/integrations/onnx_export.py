r"""Export a trained model to ONNX, the file format that ONNX Runtime and other deployment
runtimes read, so that it runs without this library or Python.

The graph is built node by node with ``onnx.helper`` from the model's own arrays: the math
is the library's, ONNX is only the file format.  It computes, for a batch of raw feature
rows :math:`X` (the input ``X``, float32, shape ``(batch, n_features)``, any batch size):

1. the run's standardisation, baked in as two nodes, ``Sub`` and ``Div``, the same
   operations as :meth:`ml_math_nn.data.datasets.Standardizer.transform`:
   :math:`X' = (X - \mu) / \sigma` (absent when the model has no scaler, as a model saved
   by the estimator);
2. the layers, each by its converter (:class:`LayerExport`): ``Dense`` is ``MatMul`` then
   ``Add``; the activations are ONNX's own (``Relu``, ``LeakyRelu``, ``Elu``, ``Tanh``,
   ``Sigmoid``) or, for GELU, its formula in ``Erf`` (exact) or ``Tanh`` (the tanh form);
   ``Dropout`` is dropped (the identity at inference); ``Flatten``, ``Reshape`` (the rows
   back to images), ``Conv2D`` (the same weight layout, :math:`(O, C, k_h, k_w)`),
   ``MaxPool2D`` and ``AvgPool2D`` are ONNX's ops of the same meaning; ``BatchNorm`` is
   folded into the ``Dense`` or ``Conv2D`` layer before it when there is one
   (:func:`fold_batch_norm`) and is a ``BatchNormalization`` node with the running
   statistics otherwise;
3. the head (the network's ``loss``, a :class:`ml_math_nn.losses.Loss`): for the softmax classifier the
   outputs ``label`` (the class of each row, ``ArgMax`` of the logits looked up in the
   class names) and ``probabilities`` (``Softmax``); for the multi-label head ``label``
   (the 0/1 indicators :math:`p > 0.5`, int8) and ``probabilities`` (``Sigmoid`` of each
   logit, independent), except that two classes on one sigmoid output (the layout of
   scikit-learn's binary classifier) give ``label`` (the second class where
   :math:`p > 0.5`) and ``probabilities`` :math:`(1 - p, p)`; for the regression head
   ``values``, :math:`z \sigma_y + \mu_y` when the model standardised its targets
   (``Mul`` and ``Add``).

The graph computes in float32 (a float64 model's arrays are rounded to it): ONNX Runtime
has no float64 ``Erf``, and float32 is what deployment runtimes run best.  The model's
``metadata_props`` hold the class names (JSON), the head's name and the library's name
and version.

A layer type without a converter is refused in one line that names it, never exported
as a wrong graph; every exported model passes ``onnx.checker.check_model(full_check=True)``
before it is written.  The ``onnx`` package is needed (``pip install 'ml-math-nn[export]'``);
``onnxruntime`` is needed only to run the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import __version__
from .._registry import Registry
from .._types import Array
from ..layers import Layer

if TYPE_CHECKING:
    import onnx

    from ..runs.persistence import Model

OPSET = 17
"""The ONNX operator set the graph uses: ONNX 1.12's, which has every op it needs (an older
set, not the newest, so that older runtimes read the file too)."""

INPUT = "X"
"""The name of the graph's input: raw feature rows, as ``ml-math-nn predict`` reads them."""


def _onnx() -> Any:
    """The ``onnx`` package, or a one-line ``ImportError`` that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'ml-math-nn[export]'") from None
    return onnx


class Graph:
    """The nodes and constant tensors of the graph being built, with fresh tensor names.

    Parameters
    ----------
    onnx : module
        The ``onnx`` package.
    """

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        """A tensor name not used before, ``hint`` followed by a number."""
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, hint: str, value: ArrayLike, dtype: type = np.float32) -> str:
        """Add a constant tensor (an initializer) holding ``value`` as ``dtype``; returns its name."""
        name = self.name(hint)
        array: NDArray[Any] = np.asarray(value, dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attributes: Any) -> str:
        """Add the node ``op(inputs)`` with ``attributes``; returns the name of its output."""
        out = output or self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attributes))
        return out


class LayerExport:
    """The converter of one layer type: the nodes that compute the layer's inference forward.

    A subclass that sets ``name`` to a layer type (the ``"type"`` of
    :meth:`ml_math_nn.layers.Layer.config`, as model files record it) is registered as its
    converter in :attr:`registry`; :meth:`nodes` gets the layer and the name of its input
    tensor and returns the name of its output tensor.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[Registry[type[LayerExport]]] = Registry("exportable layer type")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.registry.add(cls)

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        """Add the layer's nodes on input ``x``; returns the output's name."""
        raise NotImplementedError


def dense_nodes(graph: Graph, W: Array, b: Array | None, x: str) -> str:
    r""":math:`Z = X W + b` on the last axis: ``MatMul`` (which broadcasts over leading axes) then ``Add``."""
    z = graph.node("MatMul", [x, graph.constant("W", W)])
    return z if b is None else graph.node("Add", [z, graph.constant("b", b)])


class DenseExport(LayerExport):
    name = "Dense"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str, params: dict[str, Any] | None = None) -> str:
        params = layer.params if params is None else params
        return dense_nodes(graph, params["W"], params.get("b"), x)


def _window_attributes(config: dict[str, Any]) -> dict[str, Any]:
    """``kernel_shape``, ``strides`` and ``pads`` (begin and end of each axis) of a window layer's config."""
    (kh, kw), stride, (ph, pw) = config["kernel_size"], config["stride"], config["padding"]
    return {"kernel_shape": [kh, kw], "strides": list(stride), "pads": [ph, pw, ph, pw]}


class Conv2DExport(LayerExport):
    """``Conv``: ONNX's is also a cross-correlation with weights :math:`(O, C, k_h, k_w)` and zero padding."""

    name = "Conv2D"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str, params: dict[str, Any] | None = None) -> str:
        params = layer.params if params is None else params
        inputs = [x, graph.constant("W", params["W"])]
        if "b" in params:
            inputs.append(graph.constant("b", params["b"]))
        return graph.node("Conv", inputs, **_window_attributes(layer.config()))


class MaxPool2DExport(LayerExport):
    r"""``MaxPool``, whose padding is never the maximum, as our :math:`-\infty` padding."""

    name = "MaxPool2D"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("MaxPool", [x], **_window_attributes(layer.config()))


class AvgPool2DExport(LayerExport):
    """``AveragePool`` with ``count_include_pad=1``: the zero padding counts in the mean, as ours."""

    name = "AvgPool2D"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("AveragePool", [x], count_include_pad=1, **_window_attributes(layer.config()))


class ReshapeExport(LayerExport):
    """``Reshape`` to ``(batch, *shape)``; the 0 keeps the batch axis as it is (an empty batch stays empty)."""

    name = "Reshape"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Reshape", [x, graph.constant("shape", [0, *layer.config()["shape"]], np.int64)])


FOLDS_INTO = {"Dense": -1, "Conv2D": 0}
"""The layer types that a following ``BatchNorm`` is folded into, and the axis of their
weights ``W`` that runs over the output features (channels)."""


def fold_batch_norm(layer: Layer, batch_norm: Layer) -> dict[str, NDArray[np.float64]]:
    r"""The parameters ``W`` and ``b`` of one layer equal to ``layer`` (``Dense`` or ``Conv2D``)
    followed by ``batch_norm`` at inference.

    With the running statistics, batch normalisation is an affine map per feature or
    channel :math:`j`, :math:`a_j = s_j (z_j - \mu_j) + \beta_j` with
    :math:`s_j = \gamma_j / \sqrt{\sigma^2_j + \epsilon}`.  The output :math:`z_j` of a dense
    layer (:math:`Z = X W + b`) or a convolution is linear in the weights of output
    :math:`j` plus :math:`b_j`, so

    .. math::
        W'_j = s_j W_j, \qquad b'_j = s_j (b_j - \mu_j) + \beta_j

    with :math:`W_j` the column :math:`W_{:,j}` of a dense layer, the filter
    :math:`W_{j,:,:,:}` of a convolution, and :math:`b = 0` for a layer without bias.
    Computed in float64.
    """
    W = layer.params["W"].astype(np.float64)
    axis = FOLDS_INTO[layer.config()["type"]] % W.ndim
    b = layer.params["b"].astype(np.float64) if "b" in layer.params else np.zeros(W.shape[axis])
    gamma, beta = (batch_norm.params[k].astype(np.float64) for k in ("gamma", "beta"))
    mean, var = (batch_norm.buffers[k].astype(np.float64) for k in ("running_mean", "running_var"))
    s = gamma / np.sqrt(var + float(batch_norm.config()["eps"]))
    along = [1] * W.ndim
    along[axis] = -1
    return {"W": W * s.reshape(along), "b": s * (b - mean) + beta}


class BatchNormExport(LayerExport):
    r"""A ``BatchNormalization`` node (inference mode: the running statistics), per feature of
    an ``(m, F)`` input or per channel (axis 1) of an ``(m, C, ...)`` one:
    :math:`A = \gamma (X - \mu_{run}) / \sqrt{\sigma^2_{run} + \epsilon} + \beta`."""

    name = "BatchNorm"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        inputs = [x, *(graph.constant(k, layer.params[k]) for k in ("gamma", "beta"))]
        inputs += [graph.constant(k, layer.buffers[k]) for k in ("running_mean", "running_var")]
        return graph.node("BatchNormalization", inputs, epsilon=float(layer.config()["eps"]))


class DropoutExport(LayerExport):
    """Dropout is the identity at inference: no node."""

    name = "Dropout"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return x


class FlattenExport(LayerExport):
    """``Flatten`` with ``axis=1``: each sample to a vector, entries in C order."""

    name = "Flatten"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Flatten", [x], axis=1)


class ReLUExport(LayerExport):
    name = "ReLU"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Relu", [x])


class LeakyReLUExport(LayerExport):
    name = "LeakyReLU"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("LeakyRelu", [x], alpha=float(layer.config()["negative_slope"]))


class ELUExport(LayerExport):
    name = "ELU"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Elu", [x], alpha=float(layer.config()["alpha"]))


class TanhExport(LayerExport):
    name = "Tanh"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Tanh", [x])


class SigmoidExport(LayerExport):
    name = "Sigmoid"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        return graph.node("Sigmoid", [x])


class GELUExport(LayerExport):
    r"""GELU by its formula (:class:`ml_math_nn.layers.GELU`), in ops every runtime has:
    exact, :math:`\tfrac12 z (1 + \operatorname{erf}(z / \sqrt 2))` with ``Erf``; the tanh
    form, :math:`\tfrac12 z (1 + \tanh(\sqrt{2/\pi}(z + 0.044715 z^3)))` with ``Tanh``."""

    name = "GELU"

    @staticmethod
    def nodes(graph: Graph, layer: Layer, x: str) -> str:
        if layer.config()["approximate"] == "tanh":
            cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
            inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.constant("c", 0.044715)])])
            squashed = graph.node("Tanh", [graph.node("Mul", [inner, graph.constant("k", math.sqrt(2 / math.pi))])])
        else:
            squashed = graph.node("Erf", [graph.node("Div", [x, graph.constant("sqrt2", math.sqrt(2.0))])])
        one_plus = graph.node("Add", [squashed, graph.constant("one", 1.0)])
        return graph.node("Mul", [graph.node("Mul", [x, graph.constant("half", 0.5)]), one_plus])


def _layer_nodes(graph: Graph, layers: Sequence[Layer], shapes: Sequence[Any], x: str, fold: bool) -> str:
    """The nodes of every layer in order; a ``BatchNorm`` right after a ``Conv2D``, or after a
    ``Dense`` whose output is a vector per sample, is folded into it when ``fold``."""
    i = 0
    while i < len(layers):
        layer, kind = layers[i], layers[i].config()["type"]
        following = layers[i + 1].config()["type"] if i + 1 < len(layers) else None
        # BatchNorm normalises axis 1: a dense layer's output features only when it gives vectors
        foldable = kind == "Conv2D" or (kind == "Dense" and len(shapes[i][1]) == 1)
        if fold and foldable and following == "BatchNorm":
            folded = fold_batch_norm(layer, layers[i + 1])
            x = (DenseExport if kind == "Dense" else Conv2DExport).nodes(graph, layer, x, folded)
            i += 2
            continue
        converter = LayerExport.registry.get(kind)
        if converter is None:
            raise ValueError(
                f"cannot export layer {i}, {layer!r}, to ONNX: no converter for layer type {kind!r} "
                f"(exportable: {', '.join(LayerExport.registry)})"
            )
        x = converter.nodes(graph, layer, x)
        i += 1
    return x


def _labels(model: Model, classes: Sequence[Any] | NDArray[Any] | None) -> Sequence[Any] | NDArray[Any]:
    return model.class_names if classes is None else classes


def _class_tensor(classes: Sequence[Any] | NDArray[Any]) -> tuple[NDArray[Any], int]:
    """The class labels as a constant for ``Gather``, and their ONNX element type: int64 for
    integer (and bool) labels, float64 for real ones, strings otherwise."""
    from onnx import TensorProto

    labels = np.asarray(classes)
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64), TensorProto.INT64
    if labels.dtype.kind == "f":
        return labels.astype(np.float64), TensorProto.DOUBLE
    return np.array([str(c) for c in labels.tolist()], dtype=object), TensorProto.STRING


def to_onnx(model: Model, classes: Sequence[Any] | NDArray[Any] | None = None, fold: bool = True) -> onnx.ModelProto:
    """The ONNX model of ``model`` (see the module docstring for the graph), checked.

    Parameters
    ----------
    model : ml_math_nn.runs.persistence.Model
        The network, its class names and its scaler (``None``: the rows are not scaled).
    classes : sequence, optional
        The labels the ``label`` output gives, one per output of a classifier (default: the
        model's class names, as strings).  Integer labels give an int64 output.
    fold : bool
        Fold each ``BatchNorm`` into the ``Dense`` or ``Conv2D`` layer before it (:func:`fold_batch_norm`);
        otherwise, and where there is no such layer, it is a ``BatchNormalization`` node.

    Raises
    ------
    ValueError
        A layer type or head that has no converter, named in one line.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper

    network = model.network
    shapes = network.shapes()
    n_in, n_out = network.n_in, network.n_out
    graph = Graph(onnx)
    x = INPUT
    if model.scaler is not None:
        x = graph.node("Sub", [x, graph.constant("mean", model.scaler.mean)])
        x = graph.node("Div", [x, graph.constant("scale", model.scaler.scale)])
    logits = _layer_nodes(graph, network.layers, shapes, x, fold)
    if len(network.output_shape) != 1:
        raise ValueError(f"cannot export to ONNX: the network's outputs have shape {network.output_shape}, not (K,)")

    head = network.loss.name
    batch = "batch"
    if head == "softmax_cross_entropy":
        labels, label_type = _class_tensor(_labels(model, classes))
        if labels.shape != (n_out,):
            raise ValueError(f"cannot export to ONNX: {len(labels)} class labels for {n_out} outputs")
        index = graph.node("ArgMax", [logits], axis=1, keepdims=0)
        graph.node("Gather", [graph.constant("classes", labels, labels.dtype.type), index], "label", axis=0)
        graph.node("Softmax", [logits], "probabilities", axis=1)
        outputs = [
            helper.make_tensor_value_info("label", label_type, [batch]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, n_out]),
        ]
    elif head == "sigmoid_cross_entropy" and n_out == 1 and len(names := _labels(model, classes)) == 2:
        # two classes on one logistic output (scikit-learn's binary MLPClassifier): p is class 1's
        labels, label_type = _class_tensor(names)
        p = graph.node("Sigmoid", [logits])
        index = graph.node("Cast", [graph.node("Greater", [p, graph.constant("half", 0.5)])], to=TensorProto.INT64)
        flat = graph.node("Reshape", [index, graph.constant("shape", [-1], np.int64)])
        graph.node("Gather", [graph.constant("classes", labels, labels.dtype.type), flat], "label", axis=0)
        graph.node("Concat", [graph.node("Sub", [graph.constant("one", 1.0), p]), p], "probabilities", axis=1)
        outputs = [
            helper.make_tensor_value_info("label", label_type, [batch]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 2]),
        ]
    elif head == "sigmoid_cross_entropy":
        probabilities = graph.node("Sigmoid", [logits], "probabilities")
        above = graph.node("Greater", [probabilities, graph.constant("half", 0.5)])
        graph.node("Cast", [above], "label", to=TensorProto.INT8)
        outputs = [
            helper.make_tensor_value_info("label", TensorProto.INT8, [batch, n_out]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, n_out]),
        ]
    elif head == "mean_squared_error":
        target = getattr(model, "target_scaler", None)  # outputs standardised in training: back to the targets' units
        if target is None:
            graph.node("Identity", [logits], "values")
        else:
            scaled = graph.node("Mul", [logits, graph.constant("target_scale", target.scale)])
            graph.node("Add", [scaled, graph.constant("target_mean", target.mean)], "values")
        outputs = [helper.make_tensor_value_info("values", TensorProto.FLOAT, [batch, n_out])]
    else:
        raise ValueError(f"cannot export to ONNX: no converter for the {head!r} head")

    inputs = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [batch, n_in])]
    inputs[0].doc_string = "raw feature rows (standardised inside the graph)"
    onnx_graph = helper.make_graph(graph.nodes, "ml_math_nn", inputs, outputs, graph.initializers)
    proto = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ml-math-nn",
        producer_version=__version__,
        doc_string=f"{network!r}",
    )
    proto.ir_version = 8  # ONNX 1.12's (the release of opset 17): older runtimes read it too
    helper.set_model_props(
        proto,
        {
            "class_names": json.dumps(model.class_names),
            "head": head,
            "library": "ml-math-nn",
            "library_version": __version__,
        },
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_onnx(
    model: Model, path: str | Path, classes: Sequence[Any] | NDArray[Any] | None = None, fold: bool = True
) -> Path:
    """Write :func:`to_onnx` of ``model`` to ``path`` atomically (a crash leaves no half-written file)."""
    from ..runs.persistence import atomic_write

    data = to_onnx(model, classes, fold).SerializeToString()
    path = Path(path)
    atomic_write(path, lambda f: f.write(data))
    return path
