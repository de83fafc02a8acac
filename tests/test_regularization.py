"""Regularisation: inverted dropout, batch normalisation (both modes) and the L2 penalty.

Gradients are checked by finite differences and against PyTorch in float64; the
running statistics against ``torch.nn.BatchNorm1d`` step by step.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from ml_math_nn.gradcheck import check_network
from ml_math_nn.layers import BatchNorm, Dense, Dropout
from ml_math_nn.network import Network, build_mlp
from test_layers import TOL, layer_errors
from torch_reference import TOL as TORCH_TOL
from torch_reference import Twin, assert_batch_norm_matches, rel


def random_shape(seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    return int(rng.integers(2, 13)), int(rng.integers(1, 9))


def random_batch_norm(n: int, rng: np.random.Generator) -> BatchNorm:
    """A BatchNorm with random gamma, beta and running statistics (all nonzero)."""
    layer = BatchNorm(n, momentum=0.3, eps=1e-3, dtype=np.float64)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)
    layer.params["beta"][:] = rng.normal(size=n)
    layer.buffers["running_mean"][:] = rng.normal(size=n)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, n)
    return layer


# -- dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_dropout_fixed_mask_finite_differences(seed: int, rng: np.random.Generator) -> None:
    shape = random_shape(seed)
    layer = Dropout(0.4)
    layer.fixed_mask = rng.random(shape) >= 0.4
    errors = layer_errors(layer, rng.normal(size=shape), rng)
    assert errors["input"] <= TOL, errors


@pytest.mark.parametrize("seed", range(3))
def test_dropout_fixed_mask_matches_pytorch(seed: int, torch: ModuleType, rng: np.random.Generator) -> None:
    shape = random_shape(seed)
    layer = Dropout(0.25)
    layer.fixed_mask = rng.random(shape) >= 0.25
    x, G = rng.normal(size=shape), rng.normal(size=shape)
    out, grad_x = layer.forward(x, training=True), layer.backward(G)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = Twin(torch, [layer]).forward(x_t, training=True)  # torch's dropout cannot take a mask: x * M / (1-p)
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL


def test_dropout_is_inverted_and_drawn_from_its_generator() -> None:
    x = np.ones((200, 500))
    out = Dropout(0.3, np.random.default_rng(7)).forward(x, training=True)
    kept = out != 0
    assert set(np.unique(out)) == {0.0, 1 / 0.7}
    assert abs(kept.mean() - 0.7) < 0.01  # 100,000 Bernoulli(0.7) draws: std 0.0014
    assert abs(out.mean() - 1.0) < 0.015  # inverted: the expected output is the input
    again = Dropout(0.3, np.random.default_rng(7)).forward(x, training=True)
    assert np.array_equal(out, again)
    assert not np.array_equal(out, Dropout(0.3, np.random.default_rng(8)).forward(x, training=True))


def test_dropout_is_the_identity_in_evaluation(rng: np.random.Generator) -> None:
    layer, x, G = Dropout(0.5), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    assert np.array_equal(layer.forward(x, training=False), x)  # no generator needed either
    assert np.array_equal(layer.backward(G), G)
    assert np.array_equal(Dropout(0.0).forward(x, training=True), x)


def test_dropout_bad_use_is_reported() -> None:
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError, match=f"dropout rate must be in \\[0, 1\\), got {rate}"):
            Dropout(rate)
    with pytest.raises(RuntimeError, match="Dropout needs a generator in training: set layer.rng"):
        Dropout(0.5).forward(np.ones((2, 2)), training=True)
    layer = Dropout(0.5)
    layer.fixed_mask = np.ones((3, 2), dtype=bool)
    with pytest.raises(ValueError, match=r"Dropout fixed_mask has shape \(3, 2\), input has \(2, 2\)"):
        layer.forward(np.ones((2, 2)), training=True)


def test_network_set_rng_reaches_every_dropout(rng: np.random.Generator) -> None:
    net = build_mlp(4, (5, 3), 2, rng, dropout=0.5)
    x, y = rng.normal(size=(6, 4)), rng.integers(0, 2, size=6)
    with pytest.raises(RuntimeError, match="network.set_rng"):
        net.forward_backward(x, y)
    gen = np.random.default_rng(3)
    net.set_rng(gen)
    assert [layer.rng for layer in net.layers if isinstance(layer, Dropout)] == [gen, gen]
    net.set_rng(np.random.default_rng(3))
    first = net.forward_backward(x, y)[0]
    net.set_rng(np.random.default_rng(3))
    assert net.forward_backward(x, y)[0] == first


# -- batch normalisation -----------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_batch_norm_finite_differences(seed: int, training: bool, rng: np.random.Generator) -> None:
    m, n = random_shape(seed)
    layer = random_batch_norm(n, rng)
    errors = layer_errors(layer, 2 * rng.normal(size=(m, n)) + 1, rng, training)
    assert set(errors) == {"input", "gamma", "beta"}
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("seed", range(3))
def test_batch_norm_matches_torch_batchnorm1d(seed: int, torch: ModuleType, rng: np.random.Generator) -> None:
    """Three training steps (outputs, gradients, running statistics), then evaluation."""
    m, n = random_shape(seed)
    ours = random_batch_norm(n, rng)
    ref = torch.nn.BatchNorm1d(n, eps=ours.eps, momentum=ours.momentum)
    assert_batch_norm_matches(torch, ours, ref, (m, n), rng)


def test_batch_norm_training_statistics(rng: np.random.Generator) -> None:
    x = 5 * rng.normal(size=(9, 4)) + 2
    layer = BatchNorm(4, momentum=1.0, dtype=np.float64)
    running_mean = layer.buffers["running_mean"]
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(out.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-12)
    # momentum 1 keeps only this batch: its mean and its unbiased variance
    np.testing.assert_allclose(layer.buffers["running_mean"], x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(layer.buffers["running_var"], x.var(axis=0, ddof=1), rtol=1e-14)
    assert layer.buffers["running_mean"] is running_mean  # updated in place: what state() saves


def test_batch_norm_evaluation_uses_running_statistics(rng: np.random.Generator) -> None:
    layer = random_batch_norm(3, rng)
    before = {k: v.copy() for k, v in layer.buffers.items()}
    x = rng.normal(size=(1, 3))  # one row is fine in evaluation
    out = layer.forward(x, training=False)
    expected = (x - before["running_mean"]) / np.sqrt(before["running_var"] + layer.eps)
    np.testing.assert_allclose(out, layer.params["gamma"] * expected + layer.params["beta"], rtol=1e-14)
    assert all(np.array_equal(layer.buffers[k], before[k]) for k in before)


def test_batch_norm_bad_use_is_reported() -> None:
    with pytest.raises(ValueError, match="at least 2 rows per batch in training, got 1"):
        BatchNorm(3).forward(np.ones((1, 3)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm expects input of shape \(m, 3\) or \(m, 3, ...\), got \(4, 2\)"):
        BatchNorm(3).forward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="n_features must be >= 1, got 0"):
        BatchNorm(0)
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\], got 1.5"):
        BatchNorm(2, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be > 0, got 0.0"):
        BatchNorm(2, eps=0.0)


# -- L2 penalty ------------------------------------------------------------------------------


def regularised_net(rng: np.random.Generator, l2: float) -> Network:
    """Dense layers with and without bias, batch norm: only the three W are penalised."""
    net = build_mlp(5, (4, 3), 3, rng, ["elu", "tanh"], np.float64, batch_norm=True, l2=l2)
    for _, p, _ in net.parameters():
        p += rng.normal(scale=0.2, size=p.shape)
    return net


def test_l2_penalty_and_gradient_are_the_formula(rng: np.random.Generator) -> None:
    net = regularised_net(rng, 0.3)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    Ws = [layer.params["W"] for layer in net.layers if isinstance(layer, Dense)]
    assert len(Ws) == 3
    assert net.penalty() == pytest.approx(0.15 * sum(float(np.sum(W**2)) for W in Ws), rel=1e-14)

    loss, _ = net.forward_backward(x, y)
    with_l2 = {name: g.copy() for name, _, g in net.parameters()}
    net.l2 = 0.0
    assert net.penalty() == 0.0
    ce, _ = net.forward_backward(x, y)
    assert loss == pytest.approx(ce + 0.15 * sum(float(np.sum(W**2)) for W in Ws), rel=1e-14)
    for name, param, grad in net.parameters():
        decay = 0.3 * param if name.endswith(".W") else 0.0  # not b, gamma, beta
        np.testing.assert_allclose(with_l2[name], grad + decay, rtol=1e-13, atol=1e-15, err_msg=name)


def test_l2_finite_differences(rng: np.random.Generator) -> None:
    net = regularised_net(rng, 0.7)
    results = check_network(net, rng.normal(size=(6, 5)), rng.integers(0, 3, size=6))
    assert max(err for _, err in results.values()) <= 1e-7, results


def test_l2_matches_pytorch(torch: ModuleType, rng: np.random.Generator) -> None:
    net = regularised_net(rng, 0.7)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    twin = Twin(torch, net.layers)
    logits_t = twin.forward(torch.tensor(x), training=True)
    weights = [p["W"] for p in twin.params if "W" in p]
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(y)) + 0.35 * sum((W**2).sum() for W in weights)
    loss_t.backward()
    loss, _ = net.forward_backward(x, y)
    assert abs(loss - loss_t.item()) <= TORCH_TOL * abs(loss_t.item())
    errors = twin.errors()
    assert max(errors.values()) <= TORCH_TOL, errors


def test_l2_must_be_a_finite_nonnegative_number(rng: np.random.Generator) -> None:
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"l2 must be a finite number >= 0, got {bad}"):
            build_mlp(3, (2,), 2, rng, l2=bad)
