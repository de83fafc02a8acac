"""Convolution and pooling (issue 16): each layer against central finite differences
(float64) and against ``torch.nn.functional`` (conv2d, max_pool2d, avg_pool2d, batch_norm),
on random shapes, strides, paddings and channel counts; then the layer spec, and
convolutional networks built from it, trained, saved and checked.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ml_math_nn.gradcheck import check_network, fix_dropout_masks
from ml_math_nn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Reshape,
    layer_from_config,
    window_sums,
    windows,
)
from ml_math_nn.network import Network, build_from_spec
from ml_math_nn.runs.cli import main
from ml_math_nn.runs.options import TrainConfig, load_config
from ml_math_nn.runs.persistence import load_model
from ml_math_nn.runs.training import run_training
from test_layers import TOL, layer_errors
from test_regularization import random_batch_norm
from torch_reference import TOL as TORCH_TOL
from torch_reference import Twin, rel


def random_window_setup(seed: int) -> dict[str, object]:
    """A random (batch, channels, image, kernel, stride, padding): kernels up to 4, strides up
    to 3 (smaller than, equal to and larger than the kernel: overlapping, tiled and skipping
    windows), sizes the stride need not divide."""
    r = np.random.default_rng(seed)
    kernel = tuple(int(k) for k in r.integers(1, 5, 2))
    stride = tuple(int(s) for s in r.integers(1, 4, 2))
    padding = tuple(int(r.integers(0, k // 2 + 1)) for k in kernel)
    size = tuple(int(k + r.integers(0, 6)) for k in kernel)
    return {
        "m": int(r.integers(1, 4)),
        "c": int(r.integers(1, 4)),
        "o": int(r.integers(1, 5)),
        "size": size,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
    }


SEEDS = range(8)


def random_conv(s: dict[str, object], rng: np.random.Generator, bias: bool = True) -> Conv2D:
    layer = Conv2D(s["c"], s["o"], s["kernel"], s["stride"], s["padding"], rng=rng, dtype=np.float64, bias=bias)  # type: ignore[arg-type]
    if bias:
        layer.params["b"][:] = rng.normal(size=layer.out_channels)
    return layer


def images(s: dict[str, object], rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(s["m"], s["c"], *s["size"]))  # type: ignore[misc]


# -- finite differences (float64) --------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_finite_differences(seed: int, rng: np.random.Generator) -> None:
    s = random_window_setup(seed)
    for bias in (True, False):
        errors = layer_errors(random_conv(s, rng, bias), images(s, rng), rng)
        assert set(errors) == ({"input", "W", "b"} if bias else {"input", "W"})
        assert max(errors.values()) <= TOL, (s, errors)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_finite_differences(cls: type[MaxPool2D], seed: int, rng: np.random.Generator) -> None:
    s = random_window_setup(seed)
    # continuous random values: no two entries of a window within the step of each other
    errors = layer_errors(cls(s["kernel"], s["stride"], s["padding"]), images(s, rng), rng)  # type: ignore[arg-type]
    assert errors["input"] <= TOL, (s, errors)


# -- PyTorch (float64, 1e-10) ------------------------------------------------------


def assert_matches_twin(
    torch: ModuleType, model: Layer | Network, layers: list[Layer], x: np.ndarray, rng: np.random.Generator
) -> None:
    """``model``'s forward, input gradient and parameter gradients (for a random upstream
    gradient) equal those of ``layers`` rebuilt in PyTorch, within TORCH_TOL."""
    twin = Twin(torch, layers)
    out = model.forward(x, training=True)
    G = rng.normal(size=out.shape)
    grad_x = model.backward(G)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = twin.forward(x_t, training=True)
    out_t.backward(torch.tensor(G))
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL
    assert max(twin.errors().values()) <= TORCH_TOL, twin.errors()


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_matches_pytorch(seed: int, torch: ModuleType, rng: np.random.Generator) -> None:
    s = random_window_setup(seed)
    for bias in (True, False):
        layer = random_conv(s, rng, bias)
        assert_matches_twin(torch, layer, [layer], images(s, rng), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_matches_pytorch(cls: type[MaxPool2D], seed: int, torch: ModuleType, rng: np.random.Generator) -> None:
    s = random_window_setup(seed)
    layer = cls(s["kernel"], s["stride"], s["padding"])  # type: ignore[arg-type]
    x = images(s, rng)
    out = layer.forward(x)
    G = rng.normal(size=out.shape)
    grad_x = layer.backward(G)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = Twin(torch, [layer]).forward(x_t, training=True)
    out_t.backward(torch.tensor(G))
    assert out.shape == tuple(out_t.shape) == (s["m"], s["c"], *layer.spatial_output(*s["size"]))  # type: ignore[misc]
    assert rel(out, out_t.detach().numpy()) <= TORCH_TOL
    assert rel(grad_x, x_t.grad.numpy()) <= TORCH_TOL


def small_cnn(rng: np.random.Generator, dtype: type = np.float64) -> Network:
    """Every image layer in one stack: reshape, convolutions (one overlapping, one strided,
    one without bias before batch norm), per-channel batch norm and dropout, both poolings."""
    layers: list[Layer] = [
        Reshape((2, 7, 6)),
        Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype),
        ReLU(),
        MaxPool2D(3, stride=2, padding=1),
        Conv2D(3, 4, (2, 3), stride=(1, 2), rng=rng, dtype=dtype, bias=False),
        random_batch_norm(4, rng) if dtype == np.float64 else BatchNorm(4, dtype=dtype),
        ReLU(),
        Dropout(0.25),
        AvgPool2D((2, 1), stride=1),
        Flatten(),
    ]
    shape = Network(layers, dtype).shapes()[-1][1]
    return Network([*layers, Dense(shape[0], 3, rng=rng, dtype=dtype)], dtype, l2=0.01)


def test_cnn_finite_differences(rng: np.random.Generator) -> None:
    net = small_cnn(rng)
    x, y = rng.normal(size=(5, 84)), rng.integers(0, 3, 5)
    fix_dropout_masks(net, len(x), rng)
    errors = check_network(net, x, y)
    assert max(e for _, e in errors.values()) <= 1e-6, errors


def test_cnn_matches_pytorch(torch: ModuleType, rng: np.random.Generator) -> None:
    """The whole stack in training mode (batch norm's batch statistics and running averages,
    fixed dropout masks) against the same layers in torch: outputs, every gradient, buffers."""
    net = small_cnn(rng)
    net.l2 = 0.0  # the twin has no penalty
    x = rng.normal(size=(4, 84))
    fix_dropout_masks(net, len(x), rng)
    assert_matches_twin(torch, net, net.layers, x, rng)


# -- the protocol ------------------------------------------------------------------


def image_layers(c: int, rng: np.random.Generator, dtype: type = np.float64) -> list[Layer]:
    """One of each image layer type on (m, c, 5, 5) batches, non-default options where there are any."""
    return [
        Reshape((c, 5, 5)),
        Conv2D(c, c, 3, stride=2, padding=1, init="glorot_uniform", rng=rng, dtype=dtype, bias=False),
        Conv2D(c, 2, (2, 3), rng=rng, dtype=dtype),
        MaxPool2D(3, stride=2, padding=1),
        AvgPool2D((2, 3), stride=(1, 2), padding=(1, 0)),
    ]


def test_image_layers_keep_the_protocol(rng: np.random.Generator) -> None:
    """backward before forward is an error; backward never writes into its gradient and
    returns the input's shape; float32 stays float32; the config rebuilds the layer."""
    for layer in image_layers(3, rng, np.float32):
        with pytest.raises(RuntimeError, match=f"{type(layer).__name__}.backward called before forward"):
            layer.backward(np.ones((2, 3, 3, 3), dtype=np.float32))
        x = rng.normal(size=(2, 75) if isinstance(layer, Reshape) else (2, 3, 5, 5)).astype(np.float32)
        out = layer.forward(x, training=True)
        assert out.shape[1:] == layer.output_shape(x.shape[1:])
        G = rng.normal(size=out.shape).astype(np.float32)
        G_before = G.copy()
        grad_x = layer.backward(G)
        assert np.array_equal(G, G_before) and grad_x.shape == x.shape
        assert out.dtype == grad_x.dtype == np.float32 and all(g.dtype == np.float32 for g in layer.grads.values())
        clone = layer_from_config(layer.config(), np.float32)
        assert clone.config() == layer.config() and repr(clone) == repr(layer)


def test_conv_layout_and_attributes(rng: np.random.Generator) -> None:
    """PyTorch's weight layout (out, in, kh, kw) and the attributes an exporter reads."""
    layer = Conv2D(3, 8, (5, 3), stride=(2, 1), padding=(2, 1), rng=rng)
    assert layer.params["W"].shape == (8, 3, 5, 3) and layer.params["b"].shape == (8,)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((5, 3), (2, 1), (2, 1))
    assert layer.params["W"].dtype == np.float32 and layer.unit_weights() is layer.params["W"]
    assert layer.output_shape((3, 28, 28)) == (8, 14, 28)
    assert layer.multiply_adds((3, 28, 28)) == 14 * 28 * 8 * 3 * 5 * 3
    # He normal over the fan-in C kh kw = 45
    big = Conv2D(20, 200, 3, rng=np.random.default_rng(0), dtype=np.float64)
    assert abs(big.params["W"].std() - np.sqrt(2 / 180)) < 0.01 * np.sqrt(2 / 180) * 5


def test_shape_errors_name_the_layer() -> None:
    with pytest.raises(ValueError, match=r"Conv2D\(.*\) takes samples of shape \(3, H, W\), got \(1, 8, 8\)"):
        Conv2D(3, 4, 3).output_shape((1, 8, 8))
    with pytest.raises(ValueError, match=r"MaxPool2D\(.*\) needs images of at least 5x5, got 4x4"):
        MaxPool2D(5).output_shape((2, 4, 4))
    with pytest.raises(ValueError, match=r"takes samples of shape \(C, H, W\), got \(64,\)"):
        AvgPool2D(2).output_shape((64,))
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="Conv2D stride must be an integer >= 1"):
        Conv2D(1, 1, 3, stride=0)
    with pytest.raises(ValueError, match=r"Reshape\(shape=\[1, 8, 8\]\) takes samples of 64 values"):
        Reshape((1, 8, 8)).output_shape((65,))


def test_max_pool_ties_go_to_the_first_entry_of_the_window(torch: ModuleType) -> None:
    """A constant image: every window's maximum is tied; the gradient goes to the first
    (top-left) entry of each window, as in PyTorch, and overlapping windows add up there."""
    x = np.ones((1, 1, 4, 4))
    for kernel, stride in ((2, 2), (3, 1)):
        layer = MaxPool2D(kernel, stride)
        G = np.arange(1.0, 1.0 + np.prod(layer.output_shape((1, 4, 4)))).reshape(
            1, 1, *layer.output_shape((1, 4, 4))[1:]
        )
        layer.forward(x)
        grad = layer.backward(G)
        expected = np.zeros((1, 1, 4, 4))
        for i in range(G.shape[2]):
            for j in range(G.shape[3]):
                expected[0, 0, i * stride, j * stride] += G[0, 0, i, j]
        assert np.array_equal(grad, expected)
        x_t = torch.tensor(x, requires_grad=True)
        torch.nn.functional.max_pool2d(x_t, kernel, stride).backward(torch.tensor(G))
        assert np.array_equal(grad, x_t.grad.numpy())


def test_window_sums_is_the_adjoint_of_windows(rng: np.random.Generator) -> None:
    """<windows(x), D> = <x, window_sums(D)> for every x and D: col2im is im2col's transpose."""
    for seed in SEEDS:
        s = random_window_setup(seed)
        x = images(s, rng)
        view = windows(x, s["kernel"], s["stride"])  # type: ignore[arg-type]
        D = rng.normal(size=view.shape)
        back = window_sums(D, x.shape, s["stride"])  # type: ignore[arg-type]
        assert np.isclose(np.vdot(view, D), np.vdot(x, back), rtol=1e-12)


# -- the layer spec ----------------------------------------------------------------

CNN_SPEC = ["conv 4 3 pad 1", "relu", "maxpool 2", "conv 6 3x3", "batchnorm", "relu", "flatten", "dropout 0.2", "dense"]


def test_spec_builds_the_network_it_says(rng: np.random.Generator) -> None:
    net = build_from_spec(CNN_SPEC, (1, 8, 8), 10, rng, np.float64)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == [
        "Reshape",
        "Conv2D",
        "ReLU",
        "MaxPool2D",
        "Conv2D",
        "BatchNorm",
        "ReLU",
        "Flatten",
        "Dropout",
        "Dense",
    ]
    conv1, conv2 = net.layers[1], net.layers[4]
    assert isinstance(conv1, Conv2D) and isinstance(conv2, Conv2D)
    assert (conv1.in_channels, conv1.out_channels, conv1.padding, conv1.bias) == (1, 4, (1, 1), True)
    assert (conv2.in_channels, conv2.kernel_size, conv2.bias) == (4, (3, 3), False)  # batch norm follows
    assert conv1.init == "he_normal" and net.layers[-1].config()["init"] == "glorot_uniform"
    assert net.input_shape == (64,) and net.shapes()[4] == ((4, 4, 4), (6, 2, 2)) and net.output_shape == (10,)
    # 'input CxHxW' gives rows of any origin their image shape
    flat = build_from_spec(["input 1x8x8", *CNN_SPEC], (64,), 10, rng)
    assert [type(a) for a in flat.layers] == [type(b) for b in net.layers] and flat.layers[0].config() == {
        "type": "Reshape",
        "shape": [1, 8, 8],
    }


@pytest.mark.parametrize(
    "items,message",
    [
        (["conv 8 3 padd 1", "dense"], "layers item 1 'conv 8 3 padd 1': unexpected 'padd'; expected 'conv OUT K"),
        (["relu", "maxpool two", "dense"], "layers item 2 'maxpool two': 'two' is not a size like 3 or 5x3"),
        (["conv 0 3", "dense"], "layers item 1 'conv 0 3': OUT must be >= 1"),
        (["dropout 1.5", "dense"], r"layers item 1 'dropout 1.5': RATE must be in \[0, 1\)"),
        (["pool 2", "dense"], "layers item 1 'pool 2': unknown layer 'pool'; known: input, conv"),
        (["relu 2", "dense"], "layers item 1 'relu 2': an activation takes no arguments"),
        (["relu", "dense 10"], "layers item 2 'dense 10': the last item must be 'dense' without a width"),
        (["dense", "relu", "dense"], "layers item 1 'dense': only the last item is a dense layer without a width"),
        (["relu", "input 1x8x8", "dense"], "layers item 2 'input 1x8x8': 'input' may only be the first item"),
        (["conv 4 3", "relu", "dense"], r"layers item 3 'dense': needs flat samples, got shape \(4, 6, 6\)"),
        (["maxpool 9", "flatten", "dense"], r"layers item 1 'maxpool 9': MaxPool2D\(.*\) needs images of at least 9x9"),
        (["input 2x8x8", "flatten", "dense"], "layers item 1 'input 2x8x8': the data's samples have 64 values"),
    ],
)
def test_spec_errors_name_the_item(items: list[str], message: str, rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match=message):
        build_from_spec(items, (1, 8, 8), 10, rng)


def test_conv_spec_on_rows_without_an_image_shape_says_how(rng: np.random.Generator) -> None:
    with pytest.raises(
        ValueError, match=r"layers item 1 'conv 4 3': needs images .* start the list with 'input CxHxW'"
    ):
        build_from_spec(["conv 4 3", "flatten", "dense"], (64,), 10, rng)


def test_layers_option_from_toml_and_the_command_line(tmp_path: Path) -> None:
    """One declaration: a TOML list, comma-separated text (CLI), the same tuple; errors say where."""
    path = tmp_path / "c.toml"
    path.write_text('layers = ["conv 8 3  pad 1", "relu", "flatten", "dense"]\n')
    config = load_config(path)
    assert config.layers == ("conv 8 3 pad 1", "relu", "flatten", "dense")
    assert TrainConfig.from_mapping({"layers": "conv 8 3 pad 1,relu, flatten ,dense"}).layers == config.layers
    assert load_config(_written(tmp_path / "again.toml", config.to_toml())).layers == config.layers
    with pytest.raises(ValueError, match=r"c\.toml: layers item 2 'relu x': an activation takes no arguments"):
        load_config(_written(path, 'layers = ["conv 8 3", "relu x", "dense"]\n'))
    with pytest.raises(ValueError, match="layers replaces hidden and dropout: give none of them"):
        TrainConfig(layers=("dense",), hidden=(64,), dropout=0.5)
    with pytest.raises(ValueError, match="option 'layers' must be a list of strings"):
        TrainConfig.from_mapping({"layers": [3, 4]})
    assert TrainConfig().layers == () and TrainConfig(hidden=(64,)).hidden == (64,)  # --hidden builds MLPs


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- convolutional runs ------------------------------------------------------------


def test_digits_cnn_trains_saves_loads_and_resumes(tmp_path: Path) -> None:
    """A conv-first model: its file records the image shape (the Reshape layer), it loads to
    the same predictions, and a run stopped at a checkpoint resumes to the same weights."""
    spec = "conv 4 3 pad 1, relu, maxpool 2, flatten, dense"
    options = {"dataset": "digits", "layers": spec, "optimizer": "adam", "lr": 0.01, "epochs": 2, "batch_size": 64}
    config = TrainConfig.from_mapping(options)
    full = run_training(config, tmp_path / "full", report=lambda _: None)
    model = load_model(tmp_path / "full")
    assert model.network.config()["layers"][0] == {"type": "Reshape", "shape": [1, 8, 8]}
    assert model.network.input_shape == (64,)
    assert full.summary["final"]["test_acc"] > 0.5
    for name in ("conv_filters.png", "feature_maps.png"):
        assert (tmp_path / "full" / name).stat().st_size > 1000, name
    half = config.merged({"checkpoint_every": 1})
    run_training(half.merged({"epochs": 1}), tmp_path / "part", report=lambda _: None)
    resumed = run_training(half, tmp_path / "part", resume=True, report=lambda _: None)
    again = load_model(tmp_path / "part")
    for name, value in model.network.state().items():
        np.testing.assert_array_equal(again.network.state()[name], value, err_msg=name)
    assert resumed.summary["final"]["test_acc"] == full.summary["final"]["test_acc"]


def test_gradcheck_takes_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    spec = "conv 3 3 pad 1, batchnorm, relu, maxpool 2 stride 1, conv 2 2 stride 2, tanh, avgpool 2, flatten, dense"
    code = main(["gradcheck", "--dataset", "digits", "--layers", spec, "--samples", "3"])
    out = capsys.readouterr().out
    assert code == 0, out


def test_inference_chunks_are_sized_by_the_im2col_rows(rng: np.random.Generator) -> None:
    """A convolution's chunks hold fewer rows than an MLP's (its im2col matrix per sample is
    large), and chunked predictions are those of one forward pass."""
    net = build_from_spec(["conv 8 3 pad 1", "relu", "flatten", "dense"], (1, 8, 8), 10, rng, np.float64)
    per_sample = 64 + 8 * 64 + 64 * 9  # input, output, im2col rows of the convolution (the largest layer)
    assert net.inference_rows(per_sample * 8 * 5) == 5
    x = rng.normal(size=(23, 64))
    assert np.allclose(net._inference(lambda z: z, x, 4096), net.forward(x), rtol=0, atol=1e-12)
    chunked = Network(net.layers, np.float64)
    assert np.array_equal(net.predict(x), chunked.predict(x, batch_size=3))


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_digits_cnn_config_on_the_split_of_seed_0(tmp_path: Path) -> None:
    """configs/digits-cnn.toml's network on the stratified 80/20 split of seed 0, trained for
    8 of its 20 epochs (the whole run takes about 37 s of CPU, too much for the suite).  The
    issue's target is a mean of 0.99 over seeds 0..4 for the config itself; the README gives
    the figures measured per seed with ``ml-math-nn train --config configs/digits-cnn.toml --seed S``."""
    config = load_config(CONFIGS / "digits-cnn.toml")
    assert config.layers[0].startswith("conv") and config.test_size == 0.2 and config.seed == 0
    result = run_training(config.merged({"epochs": 8}), tmp_path / "run", report=lambda _: None)
    assert result.summary["final"]["test_acc"] >= 0.97
