"""ONNX export: every layer type, every head and the shipped configs, checked by ONNX's own
checker and run by ONNX Runtime (CPU) and by ONNX's reference evaluator, against what the
library itself predicts on the same raw features (``ml-math-nn predict`` for the runs)."""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from conftest import fashion_mnist_missing
from ml_math_nn import __version__
from ml_math_nn.data.datasets import Standardizer
from ml_math_nn.data.readers import DataError
from ml_math_nn.integrations.onnx_export import LayerExport, save_onnx, to_onnx
from ml_math_nn.layers import (
    ELU,
    GELU,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Reshape,
)
from ml_math_nn.losses import Loss, MeanSquaredError, SigmoidCrossEntropy
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.runs.builders import load_configured_dataset
from ml_math_nn.runs.cli import main
from ml_math_nn.runs.options import TrainConfig, read_toml
from ml_math_nn.runs.persistence import Model

CONFIGS = [
    path
    for path in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    if not any(isinstance(value, dict) for value in read_toml(path).values())  # a sweep's file has tables
]
"""The shipped training configs (a sweep's file, with its [base] and [vary] tables, is not one)."""
TOL = 1e-5


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs {name} (the test extra) for the ONNX export checks")
        pytest.skip(f"{name} not installed: the ONNX checks need pip install -e '.[test]'")


@pytest.fixture(scope="module")
def onnx() -> ModuleType:
    module = _module("onnx")
    importlib.import_module("onnx.reference")
    return module


@pytest.fixture(scope="module")
def ort() -> ModuleType:
    return _module("onnxruntime")


def run_both(onnx: ModuleType, ort: ModuleType, proto: Any, X: np.ndarray) -> list[list[np.ndarray]]:
    """The outputs of ONNX Runtime (CPU) and of the reference evaluator on ``X``, after the full check."""
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, {"X": X}), onnx.reference.ReferenceEvaluator(proto).run(None, {"X": X})]


def assert_classifier_matches(
    outputs: Sequence[Sequence[np.ndarray]], labels: np.ndarray, probabilities: np.ndarray
) -> None:
    for label, proba in outputs:
        assert proba.dtype == np.float32 and proba.shape == probabilities.shape
        np.testing.assert_allclose(proba, probabilities, rtol=0, atol=TOL)
        np.testing.assert_array_equal(label, labels)


def randomise_batch_norm(network: Network, rng: np.random.Generator) -> None:
    """Running statistics and scales away from their initial 0, 1, so that getting them wrong shows."""
    for layer in network.layers:
        if isinstance(layer, BatchNorm):
            n = layer.n_features
            layer.buffers["running_mean"][...] = rng.normal(size=n)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, size=n)
            layer.params["gamma"][...] = rng.uniform(0.5, 2.0, size=n)
            layer.params["beta"][...] = rng.normal(size=n)


def raw_features(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    return (rng.normal(size=(m, n)) * 4.0 + 3.0).astype(np.float32)


@pytest.mark.parametrize("batch_norm", ["none", "folded", "node"])
@pytest.mark.parametrize("activation", list(Activation.options))
def test_every_activation_and_batch_norm_exports(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator, activation: str, batch_norm: str
) -> None:
    network = build_mlp(6, [9, 7], 4, rng, activation, batch_norm=batch_norm != "none", dropout=0.3)
    randomise_batch_norm(network, rng)
    X = raw_features(rng, 40, 6)
    model = Model(network, ["a", "b", "c", "d"], Standardizer.fit(X))
    proto = to_onnx(model, fold=batch_norm == "folded")
    ops = {node.op_type for node in proto.graph.node}
    assert ("BatchNormalization" in ops) == (batch_norm == "node")
    assert "Dropout" not in ops
    probabilities = network.predict_proba(model.transform(X))
    labels = np.array(model.class_names, dtype=object)[probabilities.argmax(axis=1)]
    assert_classifier_matches(run_both(onnx, ort, proto, X), labels, probabilities)


def test_activation_parameters_are_exported(onnx: ModuleType, ort: ModuleType, rng: np.random.Generator) -> None:
    """Not ONNX's defaults (LeakyRelu's 0.01 and Elu's 1.0 are ours too): a dropped attribute would show."""
    layers = [Dense(5, 8, rng=rng), LeakyReLU(0.3), Dense(8, 8, rng=rng), ELU(0.4), Dense(8, 3, rng=rng)]
    network = Network(layers)
    X = raw_features(rng, 50, 5)
    model = Model(network, ["a", "b", "c"], Standardizer.fit(X))
    z = model.transform(X) @ layers[0].params["W"] + layers[0].params["b"]
    assert (z < 0).any()
    probabilities = network.predict_proba(model.transform(X))
    labels = np.array(model.class_names, dtype=object)[probabilities.argmax(axis=1)]
    assert_classifier_matches(run_both(onnx, ort, to_onnx(model), X), labels, probabilities)


def conv_network(rng: np.random.Generator) -> Network:
    """Every image layer, with odd strides, paddings and kernels, batch norm per channel after
    a convolution (foldable) and right after the reshape (never foldable)."""
    return Network(
        [
            Reshape((1, 8, 8)),
            BatchNorm(1),
            Conv2D(1, 4, 3, padding=1, rng=rng),
            BatchNorm(4, eps=0.05),  # not ONNX's default epsilon, 1e-5
            ReLU(),
            MaxPool2D(3, stride=2, padding=1),  # (4, 4, 4)
            Conv2D(4, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng, bias=False),  # (3, 2, 3)
            BatchNorm(3, eps=0.2),
            GELU(),
            AvgPool2D(2, stride=1, padding=1),  # (3, 3, 4), the zero padding counted
            Dropout(0.5),
            Flatten(),
            Dense(36, 5, rng=rng),
        ]
    )


@pytest.mark.parametrize("fold", [True, False])
def test_convolution_pooling_and_per_channel_batch_norm_export(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator, fold: bool
) -> None:
    network = conv_network(rng)
    randomise_batch_norm(network, rng)
    X = raw_features(rng, 30, 64)
    model = Model(network, list("abcde"), Standardizer.fit(X, per_feature=False))
    proto = to_onnx(model, fold=fold)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("BatchNormalization") == (1 if fold else 3)  # the one after Reshape is never folded
    assert {"Conv", "MaxPool", "AveragePool", "Flatten", "Reshape"} <= set(ops)
    probabilities = network.predict_proba(model.transform(X))
    labels = np.array(model.class_names, dtype=object)[probabilities.argmax(axis=1)]
    assert_classifier_matches(run_both(onnx, ort, proto, X), labels, probabilities)


def test_gelu_is_its_formula_in_erf_or_tanh(onnx: ModuleType, rng: np.random.Generator) -> None:
    for activation, op in [("gelu", "Erf"), ("gelu_tanh", "Tanh")]:
        model = Model(build_mlp(3, [4], 2, rng, activation), ["x", "y"])
        assert op in {node.op_type for node in to_onnx(model).graph.node}


def test_the_batch_is_dynamic_and_the_metadata_says_what_the_model_is(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator
) -> None:
    network = build_mlp(5, [8], 3, rng)
    model = Model(network, ["cat", "dog", "eel"], Standardizer.fit(raw_features(rng, 20, 5)))
    proto = to_onnx(model)
    (x,) = proto.graph.input
    assert x.name == "X" and [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["batch", 5]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["class_names"]) == ["cat", "dog", "eel"]
    assert meta["library"] == "ml-math-nn" and meta["library_version"] == __version__
    assert meta["head"] == "softmax_cross_entropy"
    assert proto.producer_name == "ml-math-nn" and proto.producer_version == __version__
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for m in (1, 2, 33):
        X = raw_features(rng, m, 5)
        label, proba = session.run(None, {"X": X})
        assert label.shape == (m,) and proba.shape == (m, 3)
        np.testing.assert_allclose(proba, network.predict_proba(model.transform(X)), rtol=0, atol=TOL)


def test_multi_label_gives_independent_probabilities_and_regression_values(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator
) -> None:
    X = raw_features(rng, 30, 4)
    scaler = Standardizer.fit(X)
    multi = build_mlp(4, [8], 3, rng, "tanh", loss=SigmoidCrossEntropy())
    model = Model(multi, ["red", "green", "blue"], scaler)
    proto = to_onnx(model)
    assert {p.key: p.value for p in proto.metadata_props}["head"] == "sigmoid_cross_entropy"
    for labels, proba in run_both(onnx, ort, proto, X):
        np.testing.assert_allclose(proba, multi.predict_proba(scaler.transform(X)), rtol=0, atol=TOL)
        assert labels.dtype == np.int8
        np.testing.assert_array_equal(labels, multi.predict(scaler.transform(X)))

    regressor = build_mlp(4, [8], 2, rng, "elu", loss=MeanSquaredError())
    proto = to_onnx(Model(regressor, ["y0", "y1"], scaler))
    assert [o.name for o in proto.graph.output] == ["values"]
    for (values,) in run_both(onnx, ort, proto, X):
        np.testing.assert_allclose(values, regressor.predict(scaler.transform(X)), rtol=1e-5, atol=TOL)

    # a regression run standardises its targets: the values come back in their units
    model = Model(regressor, ["y0", "y1"], scaler)
    model.target_scaler = Standardizer(np.array([100.0, -3.0], np.float32), np.array([20.0, 0.5], np.float32))
    proto = to_onnx(model)
    expected = regressor.predict(scaler.transform(X)) * np.float32([20.0, 0.5]) + np.float32([100.0, -3.0])
    for (values,) in run_both(onnx, ort, proto, X):
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=TOL)


def test_two_classes_on_one_sigmoid_output_give_a_label_and_both_probabilities(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator
) -> None:
    """scikit-learn's binary MLPClassifier has one logistic output: p is the second class's."""
    network = build_mlp(4, [6], 1, rng, "relu", loss=SigmoidCrossEntropy())
    X = raw_features(rng, 40, 4)
    model = Model(network, ["no", "yes"], Standardizer.fit(X))
    p = network.predict_proba(model.transform(X))[:, 0]
    assert 0 < (p > 0.5).sum() < len(p)
    for classes, expected in [(None, np.array(["no", "yes"], dtype=object)), ([-1, 1], np.array([-1, 1]))]:
        outputs = run_both(onnx, ort, to_onnx(model, classes), X)
        assert_classifier_matches(outputs, expected[(p > 0.5).astype(int)], np.stack([1 - p, p], axis=1))


def test_a_float64_model_runs_in_float32(onnx: ModuleType, ort: ModuleType, rng: np.random.Generator) -> None:
    network = build_mlp(5, [8], 3, rng, "gelu", np.float64, batch_norm=True)
    randomise_batch_norm(network, rng)
    X = raw_features(rng, 25, 5)
    model = Model(network, ["p", "q", "r"], Standardizer.fit(X, np.float64))
    probabilities = network.predict_proba(model.transform(X))
    labels = np.array(model.class_names, dtype=object)[probabilities.argmax(axis=1)]
    assert_classifier_matches(run_both(onnx, ort, to_onnx(model), X), labels, probabilities)


class Doubling(Layer, abstract=True):  # abstract: kept out of the library's registry of layer types
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return 2 * x


class Unnamed(Loss):
    pass


def test_every_layer_type_of_the_library_has_a_converter() -> None:
    """By its own name or, as ``GELUTanh`` (saved as a ``GELU``), by the class it specialises."""
    library = {n: cls for n, cls in Layer.registry.items() if cls.__module__.startswith("ml_math_nn.")}
    assert {"Dense", "Conv2D", "BatchNorm", "Flatten"} <= set(library)  # (layers the tests define are left out)
    missing = [n for n, cls in library.items() if not any(c.__name__ in LayerExport.registry for c in cls.__mro__)]
    assert missing == []


def test_an_unsupported_layer_or_head_is_a_one_line_error_naming_it(onnx: ModuleType, rng: np.random.Generator) -> None:
    network = Network([Dense(3, 4, rng=rng), Doubling(), ReLU(), Dense(4, 2, rng=rng)])
    with pytest.raises(
        ValueError,
        match=r"^cannot export layer 1, Doubling\(\), to ONNX: no converter for layer type "
        r"'Doubling' \(exportable: Dense, .*\)$",
    ):
        to_onnx(Model(network, ["a", "b"]))
    with pytest.raises(ValueError, match=r"^cannot export to ONNX: no converter for the '' head$"):
        to_onnx(Model(Network([Dense(3, 2, rng=rng)], loss=Unnamed()), ["a", "b"]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_estimator_exports_with_its_own_labels(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator, tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    from ml_math_nn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:300].astype(np.float32), y[:300] * 10 + 5  # integer labels that are not indices
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "est.onnx"
    est.to_onnx(path)
    outputs = run_both(onnx, ort, onnx.load(str(path)), X)
    assert_classifier_matches(outputs, est.predict(X), est.predict_proba(X))
    assert outputs[0][0].dtype == np.int64


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_binary_multi_label_and_regression_estimators_export(
    onnx: ModuleType, ort: ModuleType, tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    from ml_math_nn import MLPClassifier, MLPRegressor

    X, y = load_digits(return_X_y=True)
    X, y = X[:300].astype(np.float32), y[:300]
    binary = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, np.where(y < 5, "low", "high"))
    binary.to_onnx(tmp_path / "binary.onnx")
    outputs = run_both(onnx, ort, onnx.load(str(tmp_path / "binary.onnx")), X)
    assert_classifier_matches(outputs, binary.predict(X), binary.predict_proba(X))

    Y = np.stack([y % 2, y > 4, y == 0], axis=1).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, Y)
    multi.to_onnx(tmp_path / "multi.onnx")
    for labels, probabilities in run_both(onnx, ort, onnx.load(str(tmp_path / "multi.onnx")), X):
        np.testing.assert_allclose(probabilities, multi.predict_proba(X), rtol=0, atol=TOL)
        np.testing.assert_array_equal(labels, multi.predict(X))

    regressor = MLPRegressor(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, y * 1.5 + 10)
    regressor.to_onnx(tmp_path / "regressor.onnx")
    for (values,) in run_both(onnx, ort, onnx.load(str(tmp_path / "regressor.onnx")), X):
        np.testing.assert_allclose(values[:, 0], regressor.predict(X), rtol=1e-5, atol=TOL)


def predict_csv(run: Path, X: np.ndarray, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The classes and probabilities that ``ml-math-nn predict`` writes for the rows of ``X``."""
    np.savez(tmp_path / "rows.npz", X=X)
    assert main(["predict", "--model", str(run), "--input", str(tmp_path / "rows.npz"), "--output",
                 str(tmp_path / "pred.csv")]) == 0  # fmt: skip
    with open(tmp_path / "pred.csv", newline="") as f:
        rows = list(csv.reader(f))
    body = rows[1:]
    return np.array([r[1] for r in body], dtype=object), np.array([[float(v) for v in r[2:]] for r in body])


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_the_shipped_configs_export_and_agree_with_predict(
    onnx: ModuleType,
    ort: ModuleType,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each config trained briefly (1 epoch), exported with the command line, and run on its
    test set by ``predict``, ONNX Runtime and the reference evaluator.

    Fashion-MNIST with dense layers trains on 2,000 of its training images and is checked on
    the whole official test set.  A convolutional network on Fashion-MNIST would take our
    forward about 30 s for the 10,000 test images (and training evaluates them every epoch),
    and the reference evaluator, which convolves in Python, about 7 minutes on 2 cores: it
    trains on 300 images and is checked on the first 300 test images (given to train as an
    NPZ test file), the reference evaluator on the first 50 of them.
    """
    settings = TrainConfig.from_mapping(read_toml(config), str(config))
    try:
        ds = load_configured_dataset(settings)
    except DataError as e:
        fashion_mnist_missing(e)
    X, options, reference_rows = ds.X_test, ["--epochs", "1"], len(ds.X_test)
    convolutional = any("conv" in str(item) for item in getattr(settings, "layers", None) or ())
    if settings.dataset == "fashion-mnist" and convolutional:
        images = (-1, *(ds.image_shape or ()))
        np.savez(tmp_path / "train.npz", X=ds.X_train[:300].reshape(images), y=ds.y_train[:300])
        np.savez(tmp_path / "test.npz", X=X[:300].reshape(images), y=ds.y_test[:300])
        options += ["--dataset", f"npz:{tmp_path / 'train.npz'}", "--test-file", str(tmp_path / "test.npz")]
        X, reference_rows = X[:300], 50
    elif settings.dataset == "fashion-mnist":
        options += ["--subset", "2000"]
    from ml_math_nn.results import plots

    for name in ("write_run_figures", "write_task_figures"):  # the run's figures: most of its time, none of this test
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: [], raising=False)
    run, onnx_file = tmp_path / "run", tmp_path / "model.onnx"
    assert main(["train", "--config", str(config), *options, "--quiet", "--out", str(run)]) == 0
    assert main(["export", "--model", str(run), "--format", "onnx", "--output", str(onnx_file)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"onnx model written to {onnx_file}"

    classes, probabilities = predict_csv(run, X, tmp_path)  # probabilities printed with 6 significant digits
    proto = onnx.load(str(onnx_file))
    onnx.checker.check_model(proto, full_check=True)
    X = X.astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_classifier_matches([session.run(None, {"X": X})], classes, probabilities)
    n = reference_rows
    outputs = onnx.reference.ReferenceEvaluator(proto).run(None, {"X": X[:n]})
    assert_classifier_matches([outputs], classes[:n], probabilities[:n])


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_regression_and_multi_label_runs_export_and_agree_with_predict(
    onnx: ModuleType,
    ort: ModuleType,
    task: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A diabetes regression run (targets standardised in training) and a multi-label run on
    digits (three 0/1 labels per image), exported and compared with ``predict`` on the test rows."""
    from sklearn.datasets import load_digits

    from ml_math_nn.results import plots

    for name in ("write_run_figures", "write_task_figures"):
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: [], raising=False)
    if task == "regression":
        dataset = ["--dataset", "diabetes"]
    else:
        X, y = load_digits(return_X_y=True)
        np.savez(tmp_path / "labels.npz", X=X, y=np.stack([y % 2, y > 4, y == 0], axis=1).astype(np.int64))
        dataset = ["--dataset", f"npz:{tmp_path / 'labels.npz'}"]
    run, onnx_file = tmp_path / "run", tmp_path / "model.onnx"
    train = ["train", *dataset, "--task", task, "--hidden", "16", "--epochs", "2", "--quiet", "--out", str(run)]
    assert main(train) == 0
    assert main(["export", "--model", str(run), "--output", str(onnx_file)]) == 0
    capsys.readouterr()
    config = json.loads((run / "model.json").read_text())["meta"]["config"]
    X_test = load_configured_dataset(TrainConfig.from_mapping(config, "model.json")).X_test
    np.savez(tmp_path / "rows.npz", X=X_test)
    predict = ["predict", "--model", str(run), "--input", str(tmp_path / "rows.npz"), "--output"]
    assert main([*predict, str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    table = np.array([[float(v) for v in r[1:]] for r in rows])
    outputs = run_both(onnx, ort, onnx.load(str(onnx_file)), X_test.astype(np.float32))
    if task == "regression":
        for (values,) in outputs:
            np.testing.assert_allclose(values, table, rtol=1e-5)  # printed with 6 significant digits
    else:
        k = (len(header) - 1) // 2
        for labels, probabilities in outputs:
            np.testing.assert_array_equal(labels, table[:, :k])
            np.testing.assert_allclose(probabilities, table[:, k:], rtol=0, atol=TOL)


def test_the_readme_runs_an_exported_model_with_onnxruntime_alone(
    onnx: ModuleType, ort: ModuleType, rng: np.random.Generator, tmp_path: Path
) -> None:
    """The README's onnxruntime lines, run in a fresh interpreter beside the files they name
    (the README's plain python blocks run in an empty folder, so this one has its own fence)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = re.findall(r"^```python onnxruntime\n(.*?)^```", readme, flags=re.M | re.S)
    network = build_mlp(64, [16], 10, rng, "gelu", batch_norm=True)
    X = raw_features(rng, 12, 64)
    model = Model(network, [str(k) for k in range(10)], Standardizer.fit(X))
    save_onnx(model, tmp_path / "digits.onnx")
    np.savez(tmp_path / "rows.npz", X=X.astype(np.float64))
    check = "\nimport sys; assert 'ml_math_nn' not in sys.modules\nprint(list(label))"
    done = subprocess.run([sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    probabilities = network.predict_proba(model.transform(X))
    assert done.stdout.strip() == str([str(k) for k in probabilities.argmax(axis=1)])


def test_export_errors_are_one_line_and_leave_no_file(
    onnx: ModuleType,
    rng: np.random.Generator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml_math_nn.runs.persistence import save_model

    run, out = str(tmp_path / "run"), str(tmp_path / "m.onnx")
    save_model(run, Model(build_mlp(4, [5], 2, rng), ["a", "b"]))
    cases = [
        (["--model", str(tmp_path / "none"), "--output", out], "none/model.npz: no such file"),
        (["--model", run, "--output", str(tmp_path / "missing" / "m.onnx")], "m.onnx: cannot write"),
    ]
    for args, message in cases:
        assert main(["export", *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err
    with pytest.raises(SystemExit):
        main(["export", "--model", run, "--format", "tflite", "--output", out])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert main(["export", "--model", run, "--output", out]) == 2
    assert "pip install 'ml-math-nn[export]'" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.glob(".m.onnx.*"))
