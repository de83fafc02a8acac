"""The optimised hot path computes the plain math.

Each fast path (ReLU through a float indicator, the fused softmax cross-entropy, the
shuffled epoch) is compared in float64 with a direct transcription of its equations,
to rounding; a whole SGD epoch is compared with backpropagation written out by hand;
and float32 training (the default) must learn digits as well as float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn.data.datasets import Standardizer, digits
from ml_math_nn.layers import Dense, Dropout, ReLU
from ml_math_nn.losses import SoftmaxCrossEntropy
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.train import Trainer, evaluate
from test_optim import count_updates

RTOL = 1e-12


def softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_relu_is_max_and_indicator(rng: np.random.Generator) -> None:
    z = rng.normal(size=(9, 7))
    z[0, :3] = 0.0  # the kink: output 0, subgradient 0
    g = rng.normal(size=z.shape)
    g_before = g.copy()
    layer = ReLU()
    a = layer.forward(z, training=True)
    dz = layer.backward(g)
    assert np.array_equal(a, np.maximum(z, 0))
    assert np.array_equal(dz, g * (z > 0))
    assert np.array_equal(g, g_before)
    assert not np.shares_memory(a, z) and not np.shares_memory(dz, g)


def test_relu_keeps_nan_and_float32() -> None:
    z = np.array([[np.nan, -2.0, 3.0]], dtype=np.float32)
    a = ReLU().forward(z)
    assert a.dtype == np.float32
    assert np.isnan(a[0, 0]) and a[0, 1] == 0 and a[0, 2] == 3


def test_dense_is_the_affine_map_and_its_transposes(rng: np.random.Generator) -> None:
    layer = Dense(6, 4, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=4)
    x, g = rng.normal(size=(5, 6)), rng.normal(size=(5, 4))
    W, b = layer.params["W"], layer.params["b"]
    z = layer.forward(x, training=True)
    dx = layer.backward(g)
    np.testing.assert_allclose(z, x @ W + b, rtol=RTOL)
    np.testing.assert_allclose(layer.grads["W"], x.T @ g, rtol=RTOL)
    np.testing.assert_allclose(layer.grads["b"], g.sum(axis=0), rtol=RTOL)
    np.testing.assert_allclose(dx, g @ W.T, rtol=RTOL)
    assert not np.shares_memory(z, x) and not np.shares_memory(dx, g)


def test_training_skips_only_the_data_gradient(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """forward_backward stores the same gradients as a full backward pass without ``G W^T`` of the first layer."""
    net = build_mlp(6, (5, 4), 3, rng, dtype=np.float64, l2=0.1)
    x, y = rng.normal(size=(8, 6)), rng.integers(0, 3, size=8)
    net.loss.forward(net.forward(x, training=True), y)
    net.backward(net.loss.backward())
    full = {name: g.copy() for name, _, g in net.parameters()}

    def no_data_gradient(grad: np.ndarray) -> np.ndarray:
        raise AssertionError("the first layer's input gradient was computed")

    monkeypatch.setattr(net.layers[0], "backward", no_data_gradient)
    net.forward_backward(x, y)
    for name, _, g in net.parameters():
        np.testing.assert_array_equal(g, full[name], err_msg=name)


def test_training_a_network_that_does_not_start_with_dense(rng: np.random.Generator) -> None:
    """A first layer without the parameter-only half still gets its full backward pass."""
    dense = Dense(4, 3, rng=rng, dtype=np.float64)
    net = Network([Dropout(0.0), dense], np.float64)
    x, y = rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)
    net.forward_backward(x, y)
    g = (softmax_rows(x @ dense.params["W"] + dense.params["b"]) - np.eye(3)[y]) / 5
    np.testing.assert_allclose(dense.grads["W"], x.T @ g, rtol=RTOL)


def test_fused_loss_is_mean_negative_log_softmax(rng: np.random.Generator) -> None:
    z, y = 3 * rng.normal(size=(8, 5)), rng.integers(0, 5, size=8)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, y)
    p = softmax_rows(z)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(8), y])), rel=RTOL)
    expected = (p - np.eye(5)[y]) / 8
    first, second = loss.backward(), loss.backward()
    np.testing.assert_allclose(first, expected, rtol=RTOL, atol=1e-16)
    np.testing.assert_array_equal(first, second)  # backward does not consume its state


def test_fused_loss_is_shift_invariant_at_extreme_logits(rng: np.random.Generator) -> None:
    z, y = rng.normal(size=(4, 3)), np.array([0, 1, 2, 0])
    loss = SoftmaxCrossEntropy()
    base = loss.forward(z, y)
    assert loss.forward(z + 1e4, y) == pytest.approx(base, rel=1e-9)
    z_far = z.copy()
    z_far[:, 0] -= 1e4  # true class 0 has probability e^-10000 in rows 0 and 3
    far = loss.forward(z_far, y)
    assert np.isfinite(far) and far > 2500


def test_float32_stays_float32_through_a_training_step(rng: np.random.Generator) -> None:
    net = build_mlp(6, (5,), 3, rng)
    x, y = rng.normal(size=(4, 6)).astype(np.float32), np.array([0, 1, 2, 1])
    net.forward_backward(x, y)
    assert net.loss.backward().dtype == np.float32
    assert all(g.dtype == np.float32 for _, _, g in net.parameters())


def reference_epoch(
    Ws: list[np.ndarray], bs: list[np.ndarray], X: np.ndarray, y: np.ndarray, perm: np.ndarray, batch: int, lr: float
) -> float:
    """One SGD epoch of a ReLU MLP, written out from the equations; updates Ws, bs in place.

    Returns the mean of the batch losses weighted by batch size.
    """
    total = 0.0
    K = len(bs[-1])
    for start in range(0, len(X), batch):
        idx = perm[start : start + batch]
        m = len(idx)
        acts, zs = [X[idx]], []
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            zs.append(acts[-1] @ W + b)
            acts.append(np.maximum(zs[-1], 0) if i < len(Ws) - 1 else zs[-1])
        p = softmax_rows(acts[-1])
        total += -np.sum(np.log(p[np.arange(m), y[idx]]))
        G = (p - np.eye(K)[y[idx]]) / m
        grads = {}
        for i in reversed(range(len(Ws))):
            grads[i] = (acts[i].T @ G, G.sum(axis=0))
            if i:
                G = (G @ Ws[i].T) * (zs[i - 1] > 0)
        for i, (dW, db) in grads.items():
            Ws[i] -= lr * dW
            bs[i] -= lr * db
    return total / len(X)


def test_sgd_epoch_matches_backpropagation_written_out(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(50, 7)), rng.integers(0, 3, size=50)
    net = build_mlp(7, (6, 5), 3, rng, dtype=np.float64)
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    for layer in dense:  # nonzero biases, so a wrong broadcast would show
        layer.params["b"][:] = 0.1 * rng.normal(size=layer.n_out)
    Ws = [layer.params["W"].copy() for layer in dense]
    bs = [layer.params["b"].copy() for layer in dense]
    X_before = X.copy()

    trainer = Trainer(net, SGD(0.1), batch_size=8, rng=np.random.default_rng(7))
    shuffles = np.random.default_rng(7)  # the trainer draws one permutation per epoch
    for _ in range(2):
        ours = trainer.train_epoch(X, y)
        expected = reference_epoch(Ws, bs, X, y, shuffles.permutation(len(X)), 8, 0.1)
        assert ours == pytest.approx(expected, rel=1e-10)
    for layer, W, b in zip(dense, Ws, bs, strict=True):
        np.testing.assert_allclose(layer.params["W"], W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(layer.params["b"], b, rtol=1e-10, atol=1e-13)
    assert np.array_equal(X, X_before), "training must not modify the caller's data"


def test_float32_learns_digits_as_well_as_float64() -> None:
    data = digits()
    accuracy = {}
    for dtype in (np.float32, np.float64):
        scaler = Standardizer.fit(data.X_train, dtype, per_feature=False)
        X_train, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
        net = build_mlp(64, (128,), 10, np.random.default_rng(0), dtype=dtype)
        trainer = Trainer(net, SGD(0.05), batch_size=32, rng=np.random.default_rng(1))
        for _ in range(20):
            trainer.train_epoch(X_train, data.y_train)
        accuracy[dtype] = evaluate(net, X_test, data.y_test)[1]
    assert accuracy[np.float32] >= 0.95
    assert abs(accuracy[np.float32] - accuracy[np.float64]) <= 0.01


class PerTensorSGD(SGD):
    """SGD declared not elementwise (unnamed, so not registered): it must get one call per tensor."""

    elementwise = False


def test_the_trainer_hands_the_optimiser_the_flat_buffer(rng: np.random.Generator) -> None:
    """An elementwise rule: one update per batch on the network's flat arrays; any other: one per tensor.

    Both give the same weights to the bit.
    """
    X, y = rng.normal(size=(40, 7)), rng.integers(0, 3, size=40)
    weights = []
    for cls in (SGD, PerTensorSGD):
        net = build_mlp(7, (6, 5), 3, np.random.default_rng(3), dtype=np.float64)
        buffer = net.flat_parameters()
        assert buffer is not None
        opt = cls(0.1, momentum=0.9, weight_decay=0.01)
        shapes = count_updates(opt)
        Trainer(net, opt, batch_size=8, rng=np.random.default_rng(7), clip_norm=1.0).train_epoch(X, y)
        expected = [buffer.param.shape] if cls is SGD else [p.shape for _, p, _ in net.parameters()]
        assert shapes == expected * 5
        weights.append(buffer.param.copy())
    assert np.array_equal(weights[0], weights[1])
