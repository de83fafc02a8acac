"""The whole network: finite differences and PyTorch autograd on the same weights and batch."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ml_math_nn.gradcheck import check_network
from ml_math_nn.layers import ELU, BatchNorm, Dense, Dropout, Sigmoid, Tanh
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import SGD, Adam, ParameterBuffer
from ml_math_nn.runs.persistence import Model, load_model, save_model
from torch_reference import TOL as TORCH_TOL
from torch_reference import Twin, rel


def batch(rng: np.random.Generator, m: int = 8, n: int = 6, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(m, n)), rng.integers(0, k, size=m)


@pytest.mark.parametrize("hidden", [(), (5,), (7, 5), (4, 6, 3)])
def test_network_finite_differences(hidden: tuple[int, ...], rng: np.random.Generator) -> None:
    net = build_mlp(6, hidden, 4, rng, dtype=np.float64)
    for _, p, _ in net.parameters():
        p += rng.normal(scale=0.1, size=p.shape)  # nonzero biases too
    x, y = batch(rng)
    results = check_network(net, x, y)
    assert set(results) == {name for name, _, _ in net.parameters()} | {"input"}
    assert max(err for _, err in results.values()) <= 1e-7, results


def test_network_matches_pytorch(torch: ModuleType, rng: np.random.Generator) -> None:
    """Loss, logits, every gradient and one SGD step agree with torch to rel. error <= 1e-10."""
    net = build_mlp(64, (32,), 10, rng, dtype=np.float64)
    for _, p, _ in net.parameters():
        p += rng.normal(scale=0.05, size=p.shape)
    x, y = rng.normal(size=(16, 64)), rng.integers(0, 10, size=16)

    W1, b1 = (torch.tensor(a, requires_grad=True) for a in (net.layers[0].params["W"], net.layers[0].params["b"]))
    W2, b2 = (torch.tensor(a, requires_grad=True) for a in (net.layers[2].params["W"], net.layers[2].params["b"]))
    logits_t = torch.relu(torch.tensor(x) @ W1 + b1) @ W2 + b2
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(y))
    loss_t.backward()

    loss, logits = net.forward_backward(x, y)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    assert abs(loss - loss_t.item()) / abs(loss_t.item()) <= 1e-10
    assert rel(logits, logits_t.detach().numpy()) <= 1e-10
    for ours, ref in [
        (net.layers[0].grads["W"], W1),
        (net.layers[0].grads["b"], b1),
        (net.layers[2].grads["W"], W2),
        (net.layers[2].grads["b"], b2),
    ]:
        assert rel(ours, ref.grad.numpy()) <= 1e-10

    lr = 0.1
    SGD(lr).step(net.parameters())
    torch_opt = torch.optim.SGD([W1, b1, W2, b2], lr=lr)
    torch_opt.step()
    for ours, ref in [
        (net.layers[0].params["W"], W1),
        (net.layers[0].params["b"], b1),
        (net.layers[2].params["W"], W2),
        (net.layers[2].params["b"], b2),
    ]:
        assert rel(ours, ref.detach().numpy()) <= 1e-10


def test_the_specified_equations_in_column_form(rng: np.random.Generator) -> None:
    """The issue's equations, transcribed in column form (X is features x samples), give our gradients."""
    net = build_mlp(5, (4,), 3, rng, dtype=np.float64)
    x, y = batch(rng, m=7, n=5, k=3)
    m = len(y)
    W1, b1 = net.layers[0].params["W"].T, net.layers[0].params["b"][:, None]
    W2, b2 = net.layers[2].params["W"].T, net.layers[2].params["b"][:, None]
    X, Y = x.T, np.eye(3)[y].T
    Z1 = W1 @ X + b1
    A1 = np.maximum(0, Z1)
    Z2 = W2 @ A1 + b2
    A2 = np.exp(Z2) / np.exp(Z2).sum(axis=0)
    L = -np.sum(Y * np.log(A2)) / m
    dZ2 = A2 - Y
    dW2, db2 = dZ2 @ A1.T / m, dZ2.sum(axis=1) / m
    dZ1 = (W2.T @ dZ2) * (Z1 > 0)
    dW1, db1 = dZ1 @ X.T / m, dZ1.sum(axis=1) / m

    loss, _ = net.forward_backward(x, y)
    assert loss == pytest.approx(L, rel=1e-13)
    np.testing.assert_allclose(net.layers[0].grads["W"], dW1.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[0].grads["b"], db1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[2].grads["W"], dW2.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[2].grads["b"], db2, rtol=1e-12, atol=1e-15)


def test_same_seed_same_weights_different_seed_different() -> None:
    def weights(seed: int) -> list[np.ndarray]:
        net = build_mlp(64, (128,), 10, np.random.default_rng(seed))
        return [p.copy() for _, p, _ in net.parameters()]

    a, b, c = weights(1), weights(1), weights(2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_config_round_trip(rng: np.random.Generator) -> None:
    net = build_mlp(8, (6, 5), 3, rng)
    clone = Network.from_config(net.config())
    assert clone.config() == net.config()
    assert [p.shape for _, p, _ in clone.parameters()] == [p.shape for _, p, _ in net.parameters()]


def test_unknown_activation_is_rejected(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        build_mlp(4, (3,), 2, rng, activation="swish")


def test_predict_proba_rows_sum_to_one(rng: np.random.Generator) -> None:
    net = build_mlp(4, (3,), 2, rng)
    p = net.predict_proba(rng.normal(size=(10, 4)), batch_size=3)
    assert p.shape == (10, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


# Depth, per-layer activations, batch norm, dropout and L2 together: (hidden, activation, batch_norm, dropout, l2).
ARCHITECTURES = {
    "gelu-l2": ((5,), "gelu", False, 0.0, 0.1),
    "tanh-sigmoid-bn": ((7, 5), ["tanh", "sigmoid"], True, 0.0, 0.0),
    "three-deep-all": ((4, 6, 3), ["leaky_relu", "elu", "gelu"], True, 0.3, 0.05),
    "relu-dropout-l2": ((6, 4), "relu", False, 0.5, 0.2),
}


def regularised_mlp(name: str, rng: np.random.Generator, m: int) -> Network:
    """The architecture ``name`` in float64, weights perturbed, dropout masks fixed for a batch of m."""
    hidden, activation, batch_norm, dropout, l2 = ARCHITECTURES[name]
    net = build_mlp(6, hidden, 4, rng, activation, np.float64, dropout=dropout, batch_norm=batch_norm, l2=l2)
    for _, p, _ in net.parameters():
        p += rng.normal(scale=0.1, size=p.shape)
    for layer, (_, shape) in zip(net.layers, net.shapes(), strict=True):
        if isinstance(layer, Dropout):
            layer.fixed_mask = rng.random((m, *shape)) >= layer.rate
        if isinstance(layer, BatchNorm):
            layer.buffers["running_mean"][:] = rng.normal(size=layer.n_features)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2, size=layer.n_features)
    return net


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_regularised_network_finite_differences(name: str, rng: np.random.Generator) -> None:
    net = regularised_mlp(name, rng, m=8)
    results = check_network(net, *batch(rng))
    assert set(results) == {n for n, _, _ in net.parameters()} | {"input"}
    assert max(err for _, err in results.values()) <= 1e-7, results


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_regularised_network_matches_pytorch(name: str, torch: ModuleType, rng: np.random.Generator) -> None:
    """Training: loss, logits, dL/dx, every gradient and running statistic; then evaluation."""
    net = regularised_mlp(name, rng, m=8)
    x, y = batch(rng)
    twin = Twin(torch, net.layers)
    x_t = torch.tensor(x, requires_grad=True)
    logits_t = twin.forward(x_t, training=True)
    penalty_t = net.l2 / 2 * sum((p["W"] ** 2).sum() for p in twin.params if "W" in p)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(y)) + penalty_t
    loss_t.backward()

    loss, logits = net.forward_backward(x, y)
    grad_x = net.backward(net.loss.backward())  # the same backward again, for dL/dx
    assert abs(loss - loss_t.item()) <= TORCH_TOL * abs(loss_t.item())
    assert rel(logits, logits_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL
    errors = twin.errors()
    assert max(errors.values()) <= TORCH_TOL, errors

    with torch.no_grad():
        proba_t = torch.softmax(twin.forward(torch.tensor(x), training=False), dim=1)
    assert rel(net.predict_proba(x), proba_t.numpy()) <= TORCH_TOL
    # and against the softmax written out here: exp of the shifted logits over their row sums
    inference = net.forward(x)
    z = inference - inference.max(axis=1, keepdims=True)
    np.testing.assert_allclose(net.predict_proba(x), np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), rtol=1e-12)


def test_build_mlp_layout(rng: np.random.Generator) -> None:
    net = build_mlp(4, (3, 2), 5, rng, ["tanh", "elu"], batch_norm=True, dropout=0.5)
    hidden = [Dense, BatchNorm, Tanh, Dropout, Dense, BatchNorm, ELU, Dropout]
    assert [type(layer) for layer in net.layers] == [*hidden, Dense]
    assert [layer.bias for layer in net.layers if isinstance(layer, Dense)] == [False, False, True]
    assert [type(layer) for layer in build_mlp(4, (3,), 5, rng, "sigmoid").layers] == [Dense, Sigmoid, Dense]
    assert [type(layer) for layer in build_mlp(4, (), 5, rng).layers] == [Dense]


def test_build_mlp_initialisers(rng: np.random.Generator) -> None:
    def inits(net: Network) -> list[str]:
        return [layer.init for layer in net.layers if isinstance(layer, Dense)]

    names = ["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"]
    defaults = inits(build_mlp(3, (3,) * 6, 2, rng, names))
    assert defaults == ["he_normal"] * 4 + ["glorot_uniform"] * 3  # the last is the output layer
    assert inits(build_mlp(3, (3, 3), 2, rng, "tanh", init="he_uniform")) == ["he_uniform"] * 3


def test_build_mlp_rejects_bad_options(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose one of: relu, leaky_relu, elu, gelu"):
        build_mlp(4, (3, 3), 2, rng, ["relu", "swish"])
    with pytest.raises(ValueError, match="got 3 activations for 2 hidden layers"):
        build_mlp(4, (3, 3), 2, rng, ["relu", "tanh", "elu"])
    for bad in (-0.5, 1.0):
        with pytest.raises(ValueError, match=f"dropout must be in \\[0, 1\\), got {bad}"):
            build_mlp(4, (3,), 2, rng, dropout=bad)
    with pytest.raises(ValueError, match="unknown initialiser 'lecun_normal'; choose one of: he_normal"):
        build_mlp(4, (3,), 2, rng, init="lecun_normal")
    with pytest.raises(ValueError, match="widths must be >= 1"):
        build_mlp(4, (3, 0), 2, rng)


def test_trained_regularised_model_survives_saving(tmp_path: Path, rng: np.random.Generator) -> None:
    """Batch-norm statistics, the penalty and every layer's options come back from the files."""
    net = build_mlp(6, (5, 4), 3, rng, ["gelu", "sigmoid"], dropout=0.2, batch_norm=True, l2=0.01)
    net.set_rng(rng)
    x, y = batch(rng, m=16, k=3)
    for _ in range(3):
        net.forward_backward(x.astype(np.float32), y)
        SGD(0.1).step(net.parameters())
    save_model(tmp_path, Model(net, ["a", "b", "c"]))
    loaded = load_model(tmp_path).network
    assert loaded.config() == net.config()
    assert all(np.array_equal(loaded.state()[k], v) for k, v in net.state().items())
    assert not np.array_equal(net.state()["1.running_var"], np.ones(5, dtype=np.float32))  # trained, not initial
    np.testing.assert_array_equal(loaded.predict_proba(x), net.predict_proba(x))


def test_parameters_and_grads_lie_end_to_end(rng: np.random.Generator) -> None:
    """One buffer for the parameters and one for the grads, each array a view in order, values kept."""
    layers = [Dense(6, 5, rng=rng), BatchNorm(5), Tanh(), Dense(5, 4, rng=rng)]
    before = [p.copy() for layer in layers for p in layer.params.values()]
    net = Network(layers)
    triples = list(net.parameters())
    flat = net.flat_parameters()
    assert isinstance(flat, ParameterBuffer)
    assert [(n, p.shape) for n, p, _ in triples] == list(flat.layout)
    for kind, whole in ((1, flat.param), (2, flat.grad)):
        arrays = [t[kind] for t in triples]
        assert whole.ndim == 1 and whole.size == sum(a.size for a in arrays)
        assert all(a is b[kind] for a, b in zip(arrays, flat, strict=True))  # the layers' own arrays
        assert all(a.base is whole for a in arrays)
        assert np.array_equal(whole, np.concatenate([a.ravel() for a in arrays]))
    flat.param[0] = 123.0
    assert layers[0].params["W"][0, 0] == 123.0
    flat.param[0] = before[0][0, 0]
    assert all(np.array_equal(p, b) for (_, p, _), b in zip(triples, before, strict=True))
    assert net.flat_parameters() is flat  # the same buffer every step
    assert "1.running_mean" in net.state() and net.state()["1.running_mean"].base is None  # buffers stay apart


def test_a_replaced_layer_array_is_packed_again(rng: np.random.Generator) -> None:
    """Assigning a new array to a layer (instead of writing into it) cannot leave the buffer stale."""
    net = build_mlp(6, (5,), 4, rng)
    W = rng.normal(size=(6, 5)).astype(np.float32)
    net.layers[0].params["W"] = W.copy()
    flat = net.flat_parameters()
    assert flat is not None and np.array_equal(flat.param[: W.size], W.ravel())
    assert net.layers[0].params["W"].base is flat.param
    x, y = batch(rng)
    net.forward_backward(x.astype(np.float32), y)
    SGD(0.1).step(flat)
    assert not np.array_equal(net.layers[0].params["W"], W)


def test_a_layer_used_twice_gets_no_flat_buffer(rng: np.random.Generator) -> None:
    """parameters() yields a shared layer's tensors once per use; a flat update would update them once."""
    shared = Dense(5, 5, rng=rng)
    net = Network([Dense(6, 5, rng=rng), shared, Tanh(), shared, Dense(5, 4, rng=rng)])
    assert net.flat_parameters() is None
    assert [name for name, _, _ in net.parameters()] == ["0.W", "0.b", "1.W", "1.b", "3.W", "3.b", "4.W", "4.b"]


def test_unpickled_network_is_laid_out_again(rng: np.random.Generator) -> None:
    import pickle

    original = build_mlp(6, (5,), 4, rng)
    net = pickle.loads(pickle.dumps(original))
    flat = net.flat_parameters()
    assert flat is not None and np.array_equal(flat.param, original.flat_parameters().param)  # type: ignore[union-attr]
    assert all(p is q for (_, p, _), (_, q, _) in zip(net.parameters(), flat, strict=True))
    x, y = batch(rng)
    net.forward_backward(x.astype(np.float32), y)
    original.forward_backward(x.astype(np.float32), y)
    Adam(0.1).step(flat)
    Adam(0.1).step(original.parameters())
    for (_, p, _), (_, q, _) in zip(net.parameters(), original.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_mixed_dtypes_are_left_apart_and_still_train(rng: np.random.Generator) -> None:
    layers = [Dense(6, 5, rng=rng, dtype=np.float64), Dense(5, 4, rng=rng, dtype=np.float32)]
    net = Network(layers, dtype=np.float64)
    assert all(p.base is None for _, p, _ in net.parameters()) and net.flat_parameters() is None
    x, y = batch(rng)
    before = layers[1].params["W"].copy()
    net.forward_backward(x, y)
    SGD(0.1).step(net.parameters())
    assert layers[1].params["W"].dtype == np.float32 and not np.array_equal(layers[1].params["W"], before)


def test_layers_that_draw_get_the_generator_and_fix_their_draws_through_the_protocol() -> None:
    """Network.set_rng and gradcheck.fix_dropout_masks ask each layer, not its type: a new
    layer that draws at random (here a noise layer) gets both without edits elsewhere."""
    from ml_math_nn.gradcheck import fix_dropout_masks
    from ml_math_nn.layers import Dense, Dropout, Layer

    class Noise(Layer):
        def __init__(self) -> None:
            super().__init__()
            self.rng: np.random.Generator | None = None
            self.fixed: tuple[int, ...] | None = None

        def set_rng(self, rng: np.random.Generator) -> None:
            self.rng = rng

        def fix_randomness(self, batch_shape: tuple[int, ...], rng: np.random.Generator) -> None:
            self.fixed = tuple(batch_shape)

        def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            return x

        def backward(self, grad: np.ndarray) -> np.ndarray:
            return grad

    rng = np.random.default_rng(0)
    noise, drop = Noise(), Dropout(0.5)
    network = Network([Dense(4, 3, rng=rng), noise, drop, Dense(3, 2, rng=rng)], np.float64)
    generator = np.random.default_rng(1)
    network.set_rng(generator)
    assert noise.rng is generator and drop.rng is generator
    fix_dropout_masks(network, 5, np.random.default_rng(2))
    assert noise.fixed == (5, 3)
    assert drop.fixed_mask is not None and drop.fixed_mask.shape == (5, 3)
    assert np.array_equal(drop.fixed_mask, np.random.default_rng(2).random((5, 3)) >= 0.5)
