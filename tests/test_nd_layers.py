"""Layers on N-D batches, and the layer protocol that the rest of the library asks.

Dense on (m, ..., n_in), BatchNorm per channel on (m, C, ...), Flatten and Dropout on any
shape: finite differences and PyTorch (float64).  Then the protocol: output shapes and their
errors, the network's input and output shapes, the penalty and the first-layer shortcut
asked of any layer, a Flatten network trained on digits as 8x8 images, model files with a
Flatten layer, a model file written before this protocol, and a scan of the sources that
keeps ``isinstance(..., Dense)`` inside the layers module.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ml_math_nn import init
from ml_math_nn.data.datasets import digits
from ml_math_nn.gradcheck import check_network, fix_dropout_masks
from ml_math_nn.layers import GELU, Activation, BatchNorm, Dense, Dropout, Flatten, Layer, ReLU, Tanh, layer_from_config
from ml_math_nn.network import ACTIVATIONS, Network, build_mlp
from ml_math_nn.optim import Adam
from ml_math_nn.runs.persistence import Model, load_model, save_model
from ml_math_nn.train import Trainer
from test_layers import TOL, layer_errors
from test_regularization import random_batch_norm
from torch_reference import TOL as TORCH_TOL
from torch_reference import assert_batch_norm_matches, rel

ROOT = Path(__file__).resolve().parents[1]
OLD_MODEL = Path(__file__).with_name("data") / "model-before-nd"

# -- Dense on N-D input ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 5), (2, 3, 2, 5)])
def test_dense_nd_finite_differences(shape: tuple[int, ...], rng: np.random.Generator) -> None:
    layer = Dense(5, 4, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=4)
    errors = layer_errors(layer, rng.normal(size=shape), rng)
    assert set(errors) == {"input", "W", "b"}
    assert max(errors.values()) <= TOL, errors


def test_dense_nd_is_dense_on_the_rows_of_every_leading_axis(rng: np.random.Generator) -> None:
    """The same numbers, to the bit, as the 2-D layer on the (m*a*b, n_in) matrix of rows."""
    nd, flat = Dense(5, 3, rng=rng, dtype=np.float64), Dense(5, 3, dtype=np.float64)
    nd.params["b"][:] = rng.normal(size=3)
    for key in nd.params:
        flat.params[key][...] = nd.params[key]
    x, G = rng.normal(size=(4, 2, 3, 5)), rng.normal(size=(4, 2, 3, 3))
    out, grad_x = nd.forward(x, training=True), nd.backward(G)
    assert out.shape == (4, 2, 3, 3) and grad_x.shape == x.shape
    np.testing.assert_array_equal(out.reshape(-1, 3), flat.forward(x.reshape(-1, 5), training=True))
    np.testing.assert_array_equal(grad_x.reshape(-1, 5), flat.backward(G.reshape(-1, 3)))
    for key in nd.grads:
        np.testing.assert_array_equal(nd.grads[key], flat.grads[key])


@pytest.mark.parametrize("shape", [(3, 4, 6), (2, 3, 4, 6)])
def test_dense_nd_matches_pytorch(shape: tuple[int, ...], torch: ModuleType, rng: np.random.Generator) -> None:
    layer = Dense(6, 5, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=5)
    x, G = rng.normal(size=shape), rng.normal(size=(*shape[:-1], 5))
    out, grad_x = layer.forward(x, training=True), layer.backward(G)
    linear = torch.nn.Linear(6, 5)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.params["W"].T))
        linear.bias.copy_(torch.tensor(layer.params["b"]))
    x_t = torch.tensor(x, requires_grad=True)
    out_t = linear(x_t)
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL
    assert rel(layer.grads["W"], linear.weight.grad.numpy().T) <= TORCH_TOL
    assert rel(layer.grads["b"], linear.bias.grad.numpy()) <= TORCH_TOL


# -- BatchNorm per channel -----------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 4), (3, 2, 3, 4)])
def test_batch_norm_per_channel_finite_differences(
    shape: tuple[int, ...], training: bool, rng: np.random.Generator
) -> None:
    layer = random_batch_norm(shape[1], rng)
    errors = layer_errors(layer, 2 * rng.normal(size=shape) + 1, rng, training)
    assert set(errors) == {"input", "gamma", "beta"}
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 2, 7)])
def test_batch_norm_per_channel_matches_pytorch(
    shape: tuple[int, ...], torch: ModuleType, rng: np.random.Generator
) -> None:
    """Three training steps (outputs, gradients, running statistics), then evaluation:
    BatchNorm2d for images (m, C, H, W), BatchNorm1d for sequences (m, C, L)."""
    ours = random_batch_norm(shape[1], rng)
    module = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    ref = module(shape[1], eps=ours.eps, momentum=ours.momentum)
    assert_batch_norm_matches(torch, ours, ref, shape, rng)


def test_batch_norm_per_channel_statistics(rng: np.random.Generator) -> None:
    """Each channel normalised over batch and positions; the running variance is unbiased
    with the k = m*H*W values of a channel."""
    x = 5 * rng.normal(size=(3, 2, 4, 5)) + np.array([2.0, -7.0])[:, None, None]
    layer = BatchNorm(2, momentum=1.0, dtype=np.float64)
    out = layer.forward(x, training=True)
    axes = (0, 2, 3)
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-14)
    np.testing.assert_allclose(out.var(axis=axes), x.var(axis=axes) / (x.var(axis=axes) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], x.mean(axis=axes), rtol=1e-14)
    np.testing.assert_allclose(layer.buffers["running_var"], x.var(axis=axes, ddof=1), rtol=1e-14)
    assert x.var(axis=axes, ddof=1)[0] == pytest.approx(x.var(axis=axes)[0] * 60 / 59, rel=1e-14)


def test_batch_norm_per_channel_needs_two_values_per_channel() -> None:
    BatchNorm(3).forward(np.ones((1, 3, 2)), training=True)  # one image, two positions: fine
    with pytest.raises(ValueError, match="at least 2 values per channel in training, got 1"):
        BatchNorm(3).forward(np.ones((1, 3, 1, 1)), training=True)


# -- Flatten and Dropout -------------------------------------------------------------------


def test_flatten_forward_backward_and_shapes(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 2, 3, 5))
    layer = Flatten()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, x.reshape(4, 30))
    assert np.shares_memory(out, x)  # a view of a contiguous batch
    G = rng.normal(size=(4, 30))
    np.testing.assert_array_equal(layer.backward(G), G.reshape(4, 2, 3, 5))
    assert layer.output_shape((2, 3, 5)) == (30,) and layer.output_shape((7,)) == (7,)
    assert layer.forward(np.empty((0, 2, 3))).shape == (0, 6)
    assert layer_errors(Flatten(), x, rng)["input"] <= TOL


def test_flatten_matches_pytorch(torch: ModuleType, rng: np.random.Generator) -> None:
    x, G = rng.normal(size=(3, 2, 4, 5)), rng.normal(size=(3, 40))
    layer = Flatten()
    out, grad_x = layer.forward(x, training=True), layer.backward(G)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = torch.nn.Flatten()(x_t)
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) == 0.0
    assert rel(grad_x, x_t.grad.numpy()) == 0.0


def test_dropout_nd_fixed_mask(torch: ModuleType, rng: np.random.Generator) -> None:
    shape = (3, 2, 4, 5)
    layer = Dropout(0.3)
    layer.fixed_mask = rng.random(shape) >= 0.3
    x, G = rng.normal(size=shape), rng.normal(size=shape)
    assert layer_errors(layer, x, rng)["input"] <= TOL
    out, grad_x = layer.forward(x, training=True), layer.backward(G)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = x_t * torch.tensor(layer.fixed_mask) / 0.7
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL
    with pytest.raises(ValueError, match=r"fixed_mask has shape \(3, 2, 4, 5\), input has \(3, 40\)"):
        layer.forward(np.ones((3, 40)), training=True)


def image_network(rng: np.random.Generator, dropout: float = 0.0) -> Network:
    """BatchNorm per channel -> Flatten -> Dense -> [Dropout] -> Tanh -> Dense, in float64."""
    layers: list[Layer] = [random_batch_norm(2, rng), Flatten(), Dense(18, 5, rng=rng, dtype=np.float64)]
    layers += [Dropout(dropout)] if dropout else []
    layers += [Tanh(), Dense(5, 3, rng=rng, dtype=np.float64)]
    return Network(layers, np.float64, l2=0.1)


def test_image_network_finite_differences(rng: np.random.Generator) -> None:
    """Every parameter and the input gradient of a (m, 2, 3, 3) batch through the whole stack."""
    net = image_network(rng, dropout=0.3)
    x, y = rng.normal(size=(6, 2, 3, 3)), rng.integers(0, 3, size=6)
    fix_dropout_masks(net, 6, rng, input_shape=(2, 3, 3))
    assert next(layer for layer in net.layers if isinstance(layer, Dropout)).fixed_mask.shape == (6, 5)
    results = check_network(net, x, y)
    assert results["input"][0] == (6, 2, 3, 3)
    assert max(err for _, err in results.values()) <= 1e-6, results


# -- the protocol: shapes ---------------------------------------------------------------------


def test_output_shapes_and_their_errors() -> None:
    dense, norm = Dense(4, 3), BatchNorm(2)
    assert dense.output_shape((4,)) == (3,) and dense.output_shape((2, 7, 4)) == (2, 7, 3)
    assert norm.output_shape((2,)) == (2,) and norm.output_shape((2, 5, 5)) == (2, 5, 5)
    assert ReLU().output_shape((2, 5)) == (2, 5) and Dropout(0.5).output_shape((3,)) == (3,)
    with pytest.raises(ValueError, match=r"Dense\(n_in=4, n_out=3, init='he_normal'\) takes samples of shape "):
        dense.output_shape((5,))
    with pytest.raises(ValueError, match=r"takes samples of shape \(\.\.\., 4\), got \(4, 5\)"):
        dense.output_shape((4, 5))
    with pytest.raises(
        ValueError, match=r"BatchNorm\(.*\) takes samples of shape \(2,\) or \(2, \.\.\.\), got \(3, 2\)"
    ):
        norm.output_shape((3, 2))
    with pytest.raises(ValueError, match=r"got \(\)"):
        dense.output_shape(())


def test_network_shapes(rng: np.random.Generator) -> None:
    mlp = build_mlp(6, (5, 4), 3, rng, batch_norm=True, dropout=0.2)
    assert mlp.input_shape == (6,) and mlp.output_shape == (3,) and (mlp.n_in, mlp.n_out) == (6, 3)
    assert [out for _, out in mlp.shapes()] == [(5,), (5,), (5,), (5,), (4,), (4,), (4,), (4,), (3,)]
    # Dropout first: the dense layer behind it still fixes the input.
    assert Network([Dropout(0.1), Dense(7, 2)]).n_in == 7
    # Flatten first: the network takes (64,) rows, or 8x8 images; the simplest shape is reported.
    net = Network([Flatten(), Dense(64, 8), ReLU(), Dense(8, 10)])
    assert net.input_shape == (64,) and net.n_out == 10
    assert net.shapes((1, 8, 8))[0] == ((1, 8, 8), (64,)) and net.shapes((1, 8, 8))[-1][1] == (10,)
    with pytest.raises(ValueError, match=r"takes samples of shape \(\.\.\., 64\), got \(48,\)"):
        net.shapes((3, 4, 4))
    # Per-channel batch norm before Flatten cannot take a (64,) sample: the shape must be given.
    with pytest.raises(ValueError, match="no layer of the network fixes the shape of its input"):
        _ = Network([BatchNorm(1), Flatten(), Dense(64, 10)]).input_shape
    with pytest.raises(ValueError, match="no layer of the network fixes the shape of its input"):
        _ = Network([ReLU()]).n_in


# -- the protocol: what the network asks of any layer -------------------------------------------


def test_penalty_applies_to_the_weight_names(rng: np.random.Generator) -> None:
    """A layer type of its own declares its weights; the network penalises exactly those."""

    class Scale(Layer):  # elementwise x * s, with s a "weight"
        weight_names = ("s",)

        def __init__(self) -> None:
            super().__init__()
            self.params = {"s": np.array([2.0, -1.0, 0.5])}
            self.grads = {"s": np.zeros(3)}

        def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            self._x = x
            return x * self.params["s"]

        def backward(self, grad: np.ndarray) -> np.ndarray:
            np.sum(grad * self._x, axis=0, out=self.grads["s"])
            return grad * self.params["s"]

    dense = Dense(3, 3, rng=rng, dtype=np.float64, bias=False)
    net = Network([Scale(), dense, BatchNorm(3, dtype=np.float64)], np.float64, l2=0.5)
    expected = 0.25 * (np.sum(net.layers[0].params["s"] ** 2) + np.sum(dense.params["W"] ** 2))
    assert net.penalty() == pytest.approx(expected, rel=1e-14)
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    results = check_network(net, x, y)
    assert max(err for _, err in results.values()) <= 1e-6, results


def count_backward_calls(layer: Layer) -> list[str]:
    """A list that gets one entry per call of ``layer.backward`` from now on."""
    calls: list[str] = []
    backward = layer.backward

    def counted(grad: np.ndarray) -> np.ndarray:
        calls.append("backward")
        return backward(grad)

    layer.backward = counted  # type: ignore[method-assign]
    return calls


def test_first_layer_stores_only_its_parameter_gradients(rng: np.random.Generator) -> None:
    """The training step asks the first layer, whatever its type, for param_grads: the same
    gradients as a full backward (Dense skips G W^T; the base class runs backward)."""
    for first in (Dense(4, 3, rng=rng, dtype=np.float64), random_batch_norm(4, rng)):
        rest = [Tanh(), Dense(first.output_shape((4,))[0], 2, rng=rng, dtype=np.float64)]
        net = Network([first, *rest], np.float64)
        x, y = rng.normal(size=(6, 4)), rng.integers(0, 2, size=6)
        net.loss.forward(net.forward(x, training=True), y)
        net.backward(net.loss.backward())
        full = {name: g.copy() for name, _, g in net.parameters()}
        calls = count_backward_calls(first)
        net.forward_backward(x, y)
        assert calls == ([] if isinstance(first, Dense) else ["backward"])
        for name, _, g in net.parameters():
            np.testing.assert_allclose(g, full[name], rtol=1e-14, atol=1e-15)


def test_unit_weights_and_multiply_adds(rng: np.random.Generator) -> None:
    dense = Dense(6, 4, rng=rng)
    np.testing.assert_array_equal(dense.unit_weights(), dense.params["W"].T)
    assert dense.multiply_adds((6,)) == 24 and dense.multiply_adds((3, 5, 6)) == 15 * 24
    for layer in (ReLU(), BatchNorm(6), Flatten(), Dropout(0.5)):
        assert layer.unit_weights() is None and layer.multiply_adds((6,)) == 0 and layer.weight_names == ()
    assert Dense.weight_names == ("W",)


# -- activations: one class each -------------------------------------------------------------------


def test_every_activation_class_is_an_option_with_its_initialiser() -> None:
    named = {cls.name: cls for cls in Layer.registry.values() if issubclass(cls, Activation) and cls.name}
    assert dict(ACTIVATIONS) == named
    assert list(ACTIVATIONS) == ["relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "tanh", "sigmoid"]
    for name, cls in ACTIVATIONS.items():
        assert init.default_for(name) == cls.default_init
    assert init.RELU_LIKE == {"relu", "leaky_relu", "elu", "gelu", "gelu_tanh"}
    # gelu_tanh is saved as the GELU it is, so model files written before it had a class still load.
    layer = ACTIVATIONS["gelu_tanh"]()
    assert layer.config() == {"type": "GELU", "approximate": "tanh"} and repr(layer) == "GELU(approximate='tanh')"
    assert isinstance(layer_from_config(layer.config()), GELU)
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose one of: relu, leaky_relu, elu"):
        build_mlp(3, (2,), 2, np.random.default_rng(0), "swish")


# -- training on images, model files ----------------------------------------------------------------


def test_flatten_network_learns_digits_as_images() -> None:
    """``Flatten -> Dense -> ReLU -> Dense`` on (m, 1, 8, 8) batches of the digits."""
    data = digits(test_size=0.25, seed=0)
    X_train = (data.X_train / 16.0).reshape(-1, 1, 8, 8)
    X_test = (data.X_test / 16.0).reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(0)
    net = Network(
        [Flatten(), Dense(64, 32, rng=rng, dtype=np.float64), ReLU(), Dense(32, 10, "glorot_uniform", rng, np.float64)],
        np.float64,
    )
    trainer = Trainer(net, Adam(0.01), 32, np.random.default_rng(1))
    for _ in range(15):
        trainer.train_epoch(X_train, data.y_train)
    accuracy = float(np.mean(net.predict(X_test) == data.y_test))
    assert accuracy >= 0.93, accuracy
    # The same network reads the rows as they come too: Flatten of a (m, 64) batch is itself.
    np.testing.assert_array_equal(net.predict(X_test.reshape(-1, 64)), net.predict(X_test))


def test_model_file_with_flatten_round_trips(tmp_path: Path, rng: np.random.Generator) -> None:
    net = Network([Flatten(), Dense(12, 5, rng=rng), ReLU(), Dense(5, 3, rng=rng)])
    save_model(tmp_path, Model(net, ["a", "b", "c"]))
    loaded = load_model(tmp_path).network
    assert loaded.config() == net.config() and loaded.config()["layers"][0] == {"type": "Flatten"}
    x = rng.normal(size=(4, 3, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), net.predict_proba(x))


def test_model_file_written_before_nd_layers_still_loads() -> None:
    """A model file (every layer type of its day, gelu_tanh and a scaler included) written
    by the code before the layers became N-D: it loads and predicts what it predicted then."""
    model = load_model(OLD_MODEL)
    expected = np.load(OLD_MODEL / "expected.npz")
    np.testing.assert_allclose(
        model.network.predict_proba(model.transform(expected["X"])), expected["proba"], rtol=1e-6
    )
    assert model.class_names == ["cat", "dog", "eel"] and model.network.n_in == 4 and model.network.n_out == 3
    gelu = model.network.layers[2]
    assert type(gelu) is GELU and gelu.approximate == "tanh"


# -- nothing outside the layers asks whether a layer is Dense ----------------------------------------


def test_no_isinstance_dense_outside_the_layers_module() -> None:
    pattern = re.compile(r"isinstance\([^)]*\bDense\b")
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    assert len(files) > 20
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        if path.name != "layers.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
