"""One digit through a 64-8-10 network: forward pass, loss, backward pass, one SGD step.

Run ``python examples/walkthrough.py``.  ``docs/walkthrough.md`` quotes what it prints,
and ``tests/test_docs.py`` checks that every number quoted there is printed here.

Every step calls the library's own layers, then checks the result against the formula
of ``docs/math.md`` written out by hand, so the printed numbers are both.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.datasets import load_digits

from ml_math_nn.losses import softmax
from ml_math_nn.network import build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.data.datasets import Standardizer
from ml_math_nn.runs.builders import prepare_data
from ml_math_nn.runs.options import TrainConfig

SEED = 0
HIDDEN = 8
LR = 0.05  # the default learning rate of `ml-math-nn train`


def fmt(values: Iterable[float], spec: str = "+.4f") -> str:
    """One line of numbers in a fixed format, so the output is the same on every machine."""
    # Adding 0.0 turns -0.0 (a ReLU-masked negative) into 0.0, which prints without a sign flip.
    return " ".join(format(float(v) + 0.0, spec) for v in values)


def show(name: str, values: np.ndarray, spec: str = "+.4f") -> None:
    """Print a vector on one line, or a matrix one row per line, under ``name``."""
    rows = np.atleast_2d(values)
    print(f"{name} {values.shape}:")
    for row in rows:
        print("  " + fmt(row, spec))


def main() -> None:
    digits = load_digits()
    pixels, label = digits.data[0], int(digits.target[0])
    # The scaling `ml-math-nn train` fits: one mean and one std over all training pixels.
    scaler = prepare_data(TrainConfig(seed=SEED, dtype="float64")).scaler
    x = scaler.transform(pixels[None, :])
    y = np.array([label])
    onehot = np.eye(10)[y]

    print("== input ==")
    print(f"digit 0 of load_digits(), label y = {label}")
    show("pixels", pixels.reshape(8, 8), "2.0f")
    print(f"scaling: mean {float(scaler.mean[0]):.4f}, std {float(scaler.scale[0]):.4f}")
    show("x = (pixels - mean) / std", x.reshape(8, 8), "+.2f")

    net = build_mlp(64, (HIDDEN,), 10, np.random.default_rng(SEED), dtype=np.float64)
    dense1, relu, dense2 = net.layers
    W1, b1 = dense1.params["W"], dense1.params["b"]
    W2, b2 = dense2.params["W"], dense2.params["b"]

    print("\n== forward ==")
    z1 = dense1.forward(x, training=True)
    np.testing.assert_allclose(z1, x @ W1 + b1, rtol=1e-13)
    show("z1 = x W1 + b1", z1)
    a1 = relu.forward(z1, training=True)
    np.testing.assert_array_equal(a1, np.maximum(z1, 0))
    show("a1 = max(0, z1)", a1)
    z2 = dense2.forward(a1, training=True)
    show("z2 = a1 W2 + b2 (logits)", z2)
    loss = net.loss.forward(z2, y)
    probs = softmax(z2)
    np.testing.assert_allclose(probs, np.exp(z2) / np.exp(z2).sum(), rtol=1e-13)
    show("a2 = softmax(z2)", probs)
    np.testing.assert_allclose(loss, -np.log(probs[0, label]), rtol=1e-13)
    print(f"loss = -log a2[{label}] = {loss:.6f}")
    print(f"prediction = {int(probs.argmax())}")

    print("\n== backward ==")
    dz2 = net.loss.backward()
    np.testing.assert_allclose(dz2, probs - onehot, rtol=1e-13, atol=1e-16)
    show("dz2 = a2 - y (m = 1)", dz2)
    da1 = dense2.backward(dz2)
    np.testing.assert_allclose(dense2.grads["W"], a1.T @ dz2, rtol=1e-13, atol=1e-16)
    show("dW2 = a1^T dz2", dense2.grads["W"])
    show("db2 = dz2", dense2.grads["b"])
    np.testing.assert_allclose(da1, dz2 @ W2.T, rtol=1e-13)
    show("da1 = dz2 W2^T", da1)
    dz1 = relu.backward(da1)
    np.testing.assert_array_equal(dz1, da1 * (z1 > 0))
    show("dz1 = da1 * [z1 > 0]", dz1)
    dense1.backward(dz1)
    # dW1 = x^T dz1 is 64 x 8: each row is dz1 scaled by one pixel. Two rows show it.
    for k in (0, 3):
        np.testing.assert_allclose(dense1.grads["W"][k], x[0, k] * dz1[0], rtol=1e-13, atol=1e-16)
        show(f"dW1[{k}] = x[{k}] dz1 = {x[0, k]:+.4f} dz1", dense1.grads["W"][k])
    show("db1 = dz1", dense1.grads["b"])

    print("\n== one SGD step ==")
    before = b2.copy()
    SGD(LR).step(net.parameters())
    np.testing.assert_allclose(b2, before - LR * dz2[0], rtol=1e-13)
    print(f"theta <- theta - {LR} * grad, for W1, b1, W2, b2")
    show("b2 after the step", b2)
    new_loss = net.loss.forward(net.forward(x), y)
    show("softmax(z2) after the step", softmax(net.forward(x)))
    print(f"loss {loss:.6f} -> {new_loss:.6f}")

    two_digits(scaler, digits.data[:2], digits.target[:2])


def two_digits(scaler: Standardizer, pixels: np.ndarray, labels: np.ndarray) -> None:
    """The same fresh network on a batch of two digits: where 1/m and the sums over rows act."""
    x, y = scaler.transform(pixels), labels.astype(np.int64)
    m = len(y)
    net = build_mlp(64, (HIDDEN,), 10, np.random.default_rng(SEED), dtype=np.float64)
    dense1, relu, dense2 = net.layers
    print(f"\n== two digits (m = {m}) ==")
    print(f"digits 0 and 1 of load_digits(), labels y = {y.tolist()}, the same initial weights")
    loss, logits = net.forward_backward(x, y)
    probs = softmax(logits)
    per_sample = -np.log(probs[np.arange(m), y])
    np.testing.assert_allclose(loss, per_sample.mean(), rtol=1e-13)
    print(f"per-sample losses {fmt(per_sample, '.6f')}, L = their mean = {loss:.6f}")
    # What the loss head handed to the last layer: (A - Y) / m, one row per digit.
    dz2 = (probs - np.eye(10)[y]) / m
    a1 = relu.forward(dense1.forward(x, training=True), training=True)
    show(f"dz2 = (a2 - Y) / {m}", dz2)
    # Each parameter gradient sums the rows: the mean of the two one-digit gradients.
    np.testing.assert_allclose(dense2.grads["b"], dz2.sum(axis=0), rtol=1e-13, atol=1e-16)
    show("db2 = dz2[0] + dz2[1]", dense2.grads["b"])
    one_each = [np.outer(a1[i], probs[i] - np.eye(10)[y[i]]) for i in range(m)]
    np.testing.assert_allclose(dense2.grads["W"], a1.T @ dz2, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(dense2.grads["W"], sum(one_each) / m, rtol=1e-12, atol=1e-16)
    show("dW2[1] = a1^T dz2, row 1 (the mean of the two digits' rows)", dense2.grads["W"][1])
    show("  digit 0 alone", one_each[0][1])
    show("  digit 1 alone", one_each[1][1])


if __name__ == "__main__":
    main()
