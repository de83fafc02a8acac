"""Regression and multi-label from the command line (issue 15): the task told from the data
and said, the metrics of the run directory against scikit-learn's, the figures, evaluate and
predict, the example datasets, and one-line errors for input that does not fit the task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
)

from ml_math_nn.data.datasets import FRIEDMAN1_NOISE, FRIEDMAN1_SAMPLES, detect_task, load_dataset
from ml_math_nn.results.plots import (
    DPI,
    FIGURE_SIZES,
    TASK_FIGURE_SIZES,
    predicted_vs_true_figure,
    residuals_figure,
)
from ml_math_nn.runs.builders import prepare_data
from ml_math_nn.runs.cli import main
from ml_math_nn.runs.options import TrainConfig
from ml_math_nn.runs.persistence import load_model

FAST = ["--epochs", "4", "--optimizer", "adam", "--lr", "0.003", "--hidden", "16", "--quiet"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("diabetes") / "run"
    assert main(["train", "--dataset", "diabetes", "--val-size", "0.2", *FAST, "--out", str(out)]) == 0
    return out


def test_a_regression_run_records_mse_mae_and_r2_as_scikit_learn_computes_them(diabetes_run: Path) -> None:
    summary = json.loads((diabetes_run / "summary.json").read_text())
    assert summary["dataset"]["task"] == "regression"
    model = load_model(diabetes_run)
    assert model.network.loss.name == "mean_squared_error" and model.target_scaler is not None
    prepared = prepare_data(TrainConfig.from_mapping(model.meta["config"]))
    y_true = prepared.dataset.y_test
    assert len(y_true) == 89 and np.isin(y_true, load_diabetes().target).all()
    y_pred = model.values(prepared.X_test)[:, 0]
    metrics = summary["test_metrics"]
    assert metrics["mse"] == pytest.approx(mean_squared_error(y_true, y_pred), rel=1e-9)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred), rel=1e-9)
    assert metrics["r2"] == pytest.approx(r2_score(y_true, y_pred), rel=1e-9, abs=1e-12)
    assert summary["final"]["test_r2"] == pytest.approx(metrics["r2"], abs=1e-5)  # float32 network, same model
    last = rows(diabetes_run / "metrics.csv")[-1]
    assert "test_acc" not in last and {"val_r2", "val_mse", "val_mae", "test_mse", "test_mae"} <= set(last)
    assert float(last["test_mse"]) == pytest.approx(metrics["mse"], rel=1e-6)
    for name, (width, height) in {"loss.png": FIGURE_SIZES["loss.png"], **TASK_FIGURE_SIZES}.items():
        pixels = imread(diabetes_run / name)
        assert pixels.shape[:2] == (round(height * DPI), round(width * DPI)), name
    assert not (diabetes_run / "confusion_matrix.png").exists()


def test_evaluate_and_predict_a_regression_model(
    diabetes_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    metrics = json.loads((diabetes_run / "summary.json").read_text())["test_metrics"]
    assert main(["evaluate", "--model", str(diabetes_run)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("diabetes test split: 89 samples") and f"R2 {metrics['r2']:.4f}" in said
    assert f"MAE {metrics['mae']:.6g}" in said
    bunch = load_diabetes()
    np.savetxt(tmp_path / "x.csv", bunch.data[:5], delimiter=",")
    assert main(["predict", "--model", str(diabetes_run), "--input", str(tmp_path / "x.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "row,progression"
    model = load_model(diabetes_run)
    expected = model.values(model.transform(bunch.data[:5].astype(np.float32)))[:, 0]
    np.testing.assert_allclose([float(line.split(",")[1]) for line in lines[1:]], expected, rtol=1e-5)


def test_early_stopping_watches_a_regression_metric(tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = ["--early-stopping", "--monitor", "val_mae", "--patience", "2", "--val-size", "0.25"]
    assert main(["train", "--dataset", "diabetes", *FAST, *flags, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    maes = [float(r["val_mae"]) for r in rows(out / "metrics.csv")]
    assert summary["best_epoch"] == int(np.argmin(maes)) + 1  # lower is better for an error


def test_a_classification_run_cannot_watch_a_regression_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--early-stopping", "--monitor", "val_r2", "--val-size", "0.2", "--out", str(tmp_path / "r")]
    assert main(["train", "--dataset", "digits", *FAST, *flags]) == 2
    err = capsys.readouterr().err
    assert err == "ml-math-nn: error: monitor 'val_r2': a classification run records val_loss, val_acc\n"
    assert not (tmp_path / "r").exists()


def test_friedman1_is_generated_from_the_seed() -> None:
    ds = load_dataset("friedman1", seed=3)
    X, y = make_friedman1(n_samples=FRIEDMAN1_SAMPLES, noise=FRIEDMAN1_NOISE, random_state=3)
    assert ds.task == "regression" and len(ds.y_train) == 1600 and len(ds.y_test) == 400
    both = np.sort(np.concatenate([ds.y_train, ds.y_test]))
    np.testing.assert_array_equal(both, np.sort(y))
    assert not np.array_equal(load_dataset("friedman1", seed=4).y_test, ds.y_test)


def test_a_real_valued_csv_trains_a_regressor_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.25
    path = tmp_path / "reg.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,c,price", comments="")
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"csv:{path}", *FAST[:-1], "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "task: regression (the labels are numbers, some not whole, e.g. " in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["network"]["loss"] == {"name": "mean_squared_error"} and meta["target_scaler"] is True
    assert meta["class_names"] == ["price"]
    # A task given is not told from the data, and nothing is said.
    assert main(["train", "--dataset", f"csv:{path}", "--task", "regression", *FAST, "--out", str(tmp_path / "b")]) == 0
    assert "task:" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (np.array(["cat", "dog"] * 30), "classification"),
        (np.arange(60) % 10, "classification"),
        (np.arange(60) + 100, "regression"),  # 60 distinct whole numbers, not class indices
        (np.arange(60) % 2 + 0.5, "regression"),
        (np.c_[np.arange(60) % 2, np.arange(60) % 3 == 0], "multilabel"),
        (np.c_[np.arange(60) % 2, np.arange(60) * 0.1], "regression"),
    ],
)
def test_detect_task(labels: np.ndarray, task: str) -> None:
    assert detect_task(labels)[0] == task


def test_a_multilabel_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    Y = np.c_[X[:, 0] + X[:, 1] > 0, X[:, 2] > 0, X[:, 3] > 0.5].astype(int)
    path = tmp_path / "ml.csv"
    np.savetxt(path, np.c_[X, Y], delimiter=",", header="a,b,c,d,l1,l2,l3", comments="", fmt="%g")
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"csv:{path}", "--label-column", "l1,l2,l3", *FAST[:-1], "--out", str(out)]) == 0
    assert "task: multilabel (3 label columns of 0/1 values" in capsys.readouterr().err
    model = load_model(out)
    assert model.network.loss.name == "sigmoid_cross_entropy" and model.class_names == ["l1", "l2", "l3"]
    prepared = prepare_data(TrainConfig.from_mapping(model.meta["config"]))
    y_true, y_pred = prepared.y_test, model.values(prepared.X_test).astype(int)
    summary = json.loads((out / "summary.json").read_text())["test_metrics"]
    assert summary["subset_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    table = rows(out / "per_label_metrics.csv")
    assert [r["label"] for r in table] == ["l1", "l2", "l3", "macro avg"]
    np.testing.assert_allclose([float(r["f1"]) for r in table[:3]], f1, atol=5e-5)
    np.testing.assert_allclose([summary["per_label"][n]["f1"] for n in model.class_names], f1)
    assert [int(r["support"]) for r in table[:3]] == list(support)
    assert main(["evaluate", "--model", str(out), "--dataset", f"csv:{path}"]) == 0
    assert capsys.readouterr().out.startswith(f"csv:{path}: 300 samples  loss ")
    # A labelled file in the training format: its three label columns are dropped.
    assert main(["predict", "--model", str(out), "--input", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "row,l1,l2,l3,p_l1,p_l2,p_l3" and len(lines) == 301


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        (
            "a,b,kind\n1,2,cat\n3,4,dog\n",
            ["--task", "regression"],
            "--task regression needs numeric labels, got text ('cat')",
        ),
        ("a,b,y\n1,2,0.5\n3,4,2\n", ["--task", "multilabel"], "--task multilabel needs 0/1 labels, got 0.5"),
        (
            "a,b,c\n1,2,1\n3,4,0\n",
            ["--label-column", "b,c", "--task", "classification"],
            "2 label columns, but classification takes one",
        ),
    ],
)
def test_labels_that_do_not_fit_the_task_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, flags: list[str], message: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(text)
    assert main(["train", "--dataset", f"csv:{path}", *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ml-math-nn: error: {path}: ") and message in err
    assert not (tmp_path / "r").exists()


def test_an_example_dataset_keeps_its_task(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--dataset", "diabetes", "--task", "classification", "--out", str(tmp_path / "r")]) == 2
    assert "diabetes: a regression dataset, so --task classification does not apply" in capsys.readouterr().err


def test_the_regression_figures_show_the_values() -> None:
    y_true = np.array([[1.0], [2.0], [3.0], [5.0]])
    y_pred = np.array([[1.5], [1.5], [3.5], [4.0]])
    fig = predicted_vs_true_figure(y_true, y_pred, ["y"])
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_offsets(), np.c_[y_true, y_pred])
    assert f"R² {r2_score(y_true, y_pred):.4f}" in fig.axes[0].get_title()
    left = residuals_figure(y_true, y_pred, ["y"]).axes[0]
    np.testing.assert_array_equal(left.collections[0].get_offsets(), np.c_[y_pred, y_pred - y_true])
