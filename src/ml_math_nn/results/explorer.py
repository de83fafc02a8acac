r"""Inside a trained network: what the web explorer of ``ml-math-nn serve`` shows, computed here.

Everything is the library's own math on the saved model: the layers' ``forward`` and
``backward``, the network's loss and :class:`~ml_math_nn.optim.SGD`.  The server turns the
results into JSON; this module knows nothing of HTTP.

Drawings
--------
A drawing arrives as an ink bitmap (0 = paper, 1 = ink) of any size and becomes one row of
raw features the way the model's training data were made:

* scikit-learn's digits (8x8, values 0..16) come from 32x32 black-and-white bitmaps whose
  4x4 blocks were counted (UCI's "optdigits" preprocessing), so :func:`digits_from_ink`
  crops the strokes to their bounding box, scales it (aspect kept) to fill a 32x32 box,
  centres it, calls a pixel "on" when ink covers at least half of it, and counts the on
  pixels of each 4x4 block: :math:`v_{ij} = \sum_{(p,q) \in B_{ij}} [c_{pq} \ge 1/2] \in 0..16`;
* MNIST-like data (28x28, 0..255) were made by fitting each digit's bounding box into
  20x20 (aspect kept, grey levels from anti-aliasing) and placing it so that its centre
  of mass falls on the centre of the 28x28 image: :func:`mnist_from_ink` does the same;
* other image shapes are treated like MNIST, the box scaled by the same 20/28.

The model's own scaling (``Model.transform``) is then applied, as for any input row.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._types import Array, Labels
from ..optim import SGD
from ..runs.persistence import Model

MAX_INK_SIDE = 512
"""Largest width or height of a drawing's bitmap."""


def area_resize(image: Array, height: int, width: int) -> Array:
    r"""Resample ``image`` to ``(height, width)`` by area averaging (each output pixel is the
    mean of the input area it covers, fractions of pixels weighted by their share)."""
    h, w = image.shape
    # Repeating every pixel height (width) times makes both grids divide the same fine grid.
    fine = np.repeat(np.repeat(np.asarray(image, dtype=np.float64), height, axis=0), width, axis=1)
    return fine.reshape(height, h, width, w).mean(axis=(1, 3))


def _crop(ink: Array, threshold: float = 0.05) -> Array | None:
    """The bounding box of the pixels with ink above ``threshold`` (None when there is none)."""
    rows, cols = np.nonzero(ink > threshold)
    if len(rows) == 0:
        return None
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _fit(box: Array, side: int) -> Array:
    """``box`` scaled, aspect kept, so that its longer side is ``side`` pixels."""
    h, w = box.shape
    scale = side / max(h, w)
    return area_resize(box, max(1, round(h * scale)), max(1, round(w * scale)))


def digits_from_ink(ink: Array) -> Array:
    """An 8x8 image of counts 0..16 in the format of scikit-learn's digits (see the module docstring)."""
    box = _crop(ink)
    out = np.zeros((8, 8))
    if box is None:
        return out
    fitted = _fit(box, 32)
    bitmap = np.zeros((32, 32))
    top, left = (32 - fitted.shape[0]) // 2, (32 - fitted.shape[1]) // 2
    bitmap[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted >= 0.5
    return bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))


def mnist_from_ink(ink: Array, shape: tuple[int, int] = (28, 28)) -> Array:
    """An image of ``shape`` with grey levels 0..255: the box fitted into 20/28 of it, centred by mass."""
    h, w = shape
    box = _crop(ink)
    out = np.zeros(shape)
    if box is None:
        return out
    fitted = np.clip(_fit(box, max(1, round(min(h, w) * 20 / 28))), 0.0, 1.0)
    rows, cols = np.indices(fitted.shape)
    mass = fitted.sum()
    centre = (float((rows * fitted).sum() / mass), float((cols * fitted).sum() / mass))
    top = int(np.clip(round((h - 1) / 2 - centre[0]), 0, h - fitted.shape[0]))
    left = int(np.clip(round((w - 1) / 2 - centre[1]), 0, w - fitted.shape[1]))
    out[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    return out * 255.0


def image_from_ink(ink: Array, dataset: str, shape: tuple[int, int]) -> Array:
    """The drawing as an image of the model's training data: digits format or MNIST's (see above)."""
    ink = np.asarray(ink, dtype=np.float64)
    if ink.ndim != 2 or not (1 <= ink.shape[0] <= MAX_INK_SIDE and 1 <= ink.shape[1] <= MAX_INK_SIDE):
        raise ValueError(f"drawing: expected a bitmap of at most {MAX_INK_SIDE}x{MAX_INK_SIDE}, got {ink.shape}")
    if dataset == "digits" and shape == (8, 8):
        return digits_from_ink(ink)
    return mnist_from_ink(ink, shape)


@dataclass
class TestSet:
    """A model's test split: the rows as the network sees them (scaled), the raw rows, labels."""

    X: Array
    raw: Array
    y: Labels
    image_shape: tuple[int, int] | None


class Explorer:
    """A saved model and its test split, with the computations of the explorer pages.

    Calls are serialised by a lock: the layers cache their inputs between ``forward`` and
    ``backward``, so two requests must not interleave on one network.  The one-step demo
    works on a copy and never changes the model.
    """

    def __init__(self, model: Model, dataset: str, test: TestSet | None) -> None:
        self.model, self.dataset, self.test = model, dataset, test
        self.lock = threading.Lock()
        self._evaluation: dict[str, Any] | None = None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self.test.image_shape if self.test is not None else _square_shape(self.model.network.n_in)

    # -- inputs ------------------------------------------------------------------
    def raw_from_ink(self, ink: Array) -> Array:
        """One row of raw features from a drawing (ValueError when the model's data are not images)."""
        shape = self.image_shape
        if shape is None:
            raise ValueError("drawing: this model's inputs are not images; pick a test row instead")
        return image_from_ink(ink, self.dataset, shape).reshape(1, -1)

    def raw_test_row(self, index: int) -> tuple[Array, int]:
        """Raw features and label of test row ``index``."""
        if self.test is None:
            raise ValueError("index: this model's test split cannot be loaded here")
        if not 0 <= index < len(self.test.y):
            raise ValueError(f"index: expected 0..{len(self.test.y) - 1}, got {index}")
        return self.test.raw[index : index + 1], int(self.test.y[index])

    # -- the pages' computations ---------------------------------------------------
    def explain(self, raw: Array, target: int | None = None) -> dict[str, Any]:
        r"""Activations of every layer, the class probabilities, and the gradient of the chosen
        class's logit :math:`z_c` with respect to the input, :math:`\partial z_c / \partial x`
        (backward from the one-hot :math:`e_c`; :math:`c` is the predicted class unless ``target``).
        """
        network = self.model.network
        x = self.model.transform(raw, "drawing")
        with self.lock:
            probs = np.asarray(network.predict_proba(x), dtype=np.float64)[0]
            activations = []
            a = x
            for layer in network.layers:
                a = layer.forward(a, training=False)
                activations.append(a)
            c = int(probs.argmax()) if target is None else int(target)
            if not 0 <= c < network.n_out:
                raise ValueError(f"target: expected a class 0..{network.n_out - 1}, got {target}")
            grad = np.zeros_like(a)
            grad[0, c] = 1.0
            for layer in reversed(network.layers):
                grad = layer.backward(grad)
        return {
            "input": raw[0].tolist(),
            "scaled": x[0].tolist(),
            "layers": [
                {"index": i, "type": type(layer).__name__, "width": int(act[0].size), "values": act[0].ravel().tolist()}
                for i, (layer, act) in enumerate(zip(network.layers, activations, strict=True))
            ],
            "probabilities": probs.tolist(),
            "predicted": int(probs.argmax()),
            "target": c,
            "input_gradient": grad[0].ravel().tolist(),
        }

    def sgd_step(self, raw: Array, label: int, lr: float) -> dict[str, Any]:
        r"""One backward pass layer by layer and one SGD step :math:`\theta \leftarrow \theta - \eta g`
        on a copy of the network, for the single row ``raw`` with label ``label``.

        The passes run in inference mode (no dropout; batch normalisation with its running
        statistics), so the numbers are the model's own and a one-row batch is valid.  The
        loss is the network's objective, cross-entropy plus its L2 penalty.
        """
        network = self.model.network
        if not 0 <= label < network.n_out:
            raise ValueError(f"label: expected a class 0..{network.n_out - 1}, got {label}")
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: expected a number > 0, got {lr}")
        x = self.model.transform(raw, "input")
        y = np.array([label], dtype=np.intp)
        with self.lock:
            net = copy.deepcopy(network)
        probs_before = np.asarray(net.predict_proba(x), dtype=np.float64)[0]
        logits = net.forward(x)
        loss_before = net.loss.forward(logits, y) + net.penalty()
        top = net.loss.backward()
        layers: list[dict[str, Any]] = []
        grad = top
        for i in reversed(range(len(net.layers))):
            layer = net.layers[i]
            incoming = grad
            grad = layer.backward(incoming)
            layers.append(
                {
                    "index": i,
                    "type": type(layer).__name__,
                    "grad_output": incoming[0].ravel().tolist(),
                    "grad_output_norm": float(np.linalg.norm(incoming)),
                    "grad_input_norm": float(np.linalg.norm(grad)),
                }
            )
        net.backward(top)  # every parameter's gradient, the L2 penalty's share included
        before = {name: param.copy() for name, param, _ in net.parameters()}
        grads = {name: g.copy() for name, _, g in net.parameters()}
        SGD(lr).step(net.parameters())
        params = {
            name: {
                "shape": list(param.shape),
                "norm": float(np.linalg.norm(before[name])),
                "grad_norm": float(np.linalg.norm(grads[name])),
                "update_norm": float(np.linalg.norm(param - before[name])),
                "update_max": float(np.max(np.abs(param - before[name]), initial=0.0)),
            }
            for name, param, _ in net.parameters()
        }
        for entry in layers:
            prefix = f"{entry['index']}."
            entry["params"] = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
        loss_after = net.loss.forward(net.forward(x), y) + net.penalty()
        probs_after = np.asarray(net.predict_proba(x), dtype=np.float64)[0]
        return {
            "label": label,
            "lr": lr,
            "loss_before": float(loss_before),
            "loss_after": float(loss_after),
            "probabilities_before": probs_before.tolist(),
            "probabilities_after": probs_after.tolist(),
            "loss_gradient": top[0].ravel().tolist(),
            "layers": layers,
        }

    def evaluation(self) -> dict[str, Any]:
        """Confusion matrix, per-class metrics and the misclassified rows of the test split."""
        if self.test is None:
            raise ValueError("evaluation: this model's test split cannot be loaded here")
        if self._evaluation is None:
            from .plots import confusion_counts, per_class_rows

            with self.lock:
                proba = self.model.network.predict_proba(self.test.X)
            pred = proba.argmax(axis=1)
            y = self.test.y
            names = self.model.class_names
            wrong = np.flatnonzero(pred != y)
            self._evaluation = {
                "class_names": names,
                "n_test": len(y),
                "accuracy": float(np.mean(pred == y)),
                "confusion": confusion_counts(y, pred, len(names)).tolist(),
                "per_class": [_plain(row) for row in per_class_rows(y, pred, names)],
                "labels": y.tolist(),
                "predicted": pred.tolist(),
                "confidence": proba.max(axis=1).round(4).tolist(),
                "misclassified": wrong.tolist(),
            }
        return self._evaluation


def _square_shape(n: int) -> tuple[int, int] | None:
    side = round(n**0.5)
    return (side, side) if side * side == n and side >= 8 else None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str) else int(v) if k == "support" else float(v) for k, v in row.items()}
