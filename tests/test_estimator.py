"""MLPClassifier: scikit-learn's own estimator checks, its tools (Pipeline, GridSearchCV,
cross_val_score with several processes, pickle), label types, dtypes, partial and warm
fits, parameter errors, the library's model files, and accuracy against scikit-learn's
MLPClassifier on the digits splits of the benchmark."""

from __future__ import annotations

import importlib.util
import os
import pickle
import statistics
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from conftest import missing
from ml_math_nn import MLPClassifier
from ml_math_nn.network import build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.runs.builders import prepare_data, validation_split
from ml_math_nn.runs.options import TrainConfig
from ml_math_nn.runs.persistence import Model, load_model, save_model
from ml_math_nn.runs.training import run_training
from ml_math_nn.train import Trainer, TrainingDiverged, evaluate

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"hidden_layer_sizes": (16,), "max_iter": 5, "random_state": 0}


def scaled(loader: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified 75/25 split of a scikit-learn dataset, scaled on its training rows."""
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def states(model: MLPClassifier) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.network_.state().items()}


# -- scikit-learn's checks ------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"hidden_layer_sizes": (32, 16), "dropout": 0.2, "optimizer": "adam", "learning_rate_init": 0.01},
        {"hidden_layer_sizes": (32, 16), "dropout": 0.2, "optimizer": "adam", "batch_norm": True, "activation": "tanh"},
    ],
    ids=["defaults", "two-hidden-dropout-adam", "batch-norm-tanh"],
)
def test_check_estimator_passes_every_check(params: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # The array API check runs only when scipy's array API switch is on; numpy is its namespace.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    results = check_estimator(MLPClassifier(**params), on_fail=None, on_skip=None)
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] not in ("passed", "skipped")]
    assert failed == []
    skipped = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "skipped"]
    # None skipped, except by scikit-learn itself when pandas (a test extra) is missing; never in CI.
    pandas_missing = importlib.util.find_spec("pandas") is None
    if pandas_missing and os.environ.get("CI"):
        missing("pandas (a test extra) for check_estimator's DataFrame checks")
    assert all(pandas_missing and reason.startswith("pandas is not installed") for _, reason in skipped), skipped
    assert len(results) >= 50


def test_dataframe_gives_feature_names() -> None:
    try:
        import pandas as pd
    except ImportError:
        missing("pandas (a test extra) for DataFrame input")
    frame = load_iris(as_frame=True).data
    model = MLPClassifier(**SMALL).fit(frame, load_iris().target)
    assert list(model.feature_names_in_) == list(frame.columns)
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(pd.DataFrame(frame.to_numpy(), columns=[c.upper() for c in frame.columns]))


# -- scikit-learn's tools -------------------------------------------------------------
def test_grid_search_over_two_parameters_on_digits() -> None:
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=8, random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(16,), (64,)], "mlpclassifier__alpha": [0.0, 1e-3]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] in grid["mlpclassifier__hidden_layer_sizes"]
    assert search.best_score_ > 0.9
    assert search.score(X, y) > 0.95


def test_cross_val_score_in_two_processes_equals_one() -> None:
    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**{**SMALL, "max_iter": 30}))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    parallel = cross_val_score(pipe, X, y, cv=cv, n_jobs=2)
    np.testing.assert_array_equal(parallel, cross_val_score(pipe, X, y, cv=cv, n_jobs=1))
    assert parallel.min() > 0.9


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_breast_cancer], ids=["iris", "wine", "breast-cancer"])
def test_pipeline_with_scaler_on_tables_of_any_width(loader: Any) -> None:
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(random_state=0)).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9
    assert pipe[-1].n_features_in_ == X.shape[1]


def test_features_are_used_as_given() -> None:
    # No scaling inside: the same rows shifted by a constant train a different network.
    X_train, _, y_train, _ = scaled(load_iris)
    a = MLPClassifier(**SMALL).fit(X_train, y_train)
    b = MLPClassifier(**SMALL).fit(X_train + 10.0, y_train)
    assert not np.allclose(a.predict_proba(X_train), b.predict_proba(X_train + 10.0))


def test_pickle_round_trip_predicts_identically() -> None:
    X_train, X_test, y_train, _ = scaled(load_wine)
    model = MLPClassifier(**SMALL, dropout=0.1).fit(X_train, y_train)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))
    np.testing.assert_array_equal(copy.predict(X_test), model.predict(X_test))
    # The last rows predicted are not pickled with it.
    size = len(pickle.dumps(model))
    model.predict_log_proba(np.tile(X_test, (50, 1)))
    assert len(pickle.dumps(model)) == size
    # The copy trains on exactly as the original would (generators and optimiser state travel too).
    for m in (model, copy):
        m.partial_fit(X_train, y_train)
    np.testing.assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))


# -- labels and dtypes ----------------------------------------------------------------
def test_string_labels() -> None:
    X_train, X_test, y_train, y_test = scaled(load_iris)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    model = MLPClassifier(random_state=0).fit(X_train, names[y_train])
    np.testing.assert_array_equal(model.classes_, names)
    predicted = model.predict(X_test)
    np.testing.assert_array_equal(predicted, names[model.predict_proba(X_test).argmax(axis=1)])
    assert np.mean(predicted == names[y_test]) > 0.9


@pytest.mark.parametrize(
    "labels", [np.array([False, True]), np.array([-1, 1]), np.array(["no", "yes"])], ids=["bool", "int", "str"]
)
def test_binary_labels(labels: np.ndarray) -> None:
    X_train, X_test, y_train, y_test = scaled(load_breast_cancer)
    model = MLPClassifier(random_state=0).fit(X_train, labels[y_train])
    np.testing.assert_array_equal(model.classes_, labels)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.predict(X_test).dtype == labels.dtype
    assert model.score(X_test, labels[y_test]) > 0.93


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least 2 classes to train, got 1 class: 'a'"):
        MLPClassifier().fit(np.zeros((4, 2)), ["a"] * 4)


@pytest.mark.parametrize(
    ("X_dtype", "dtype", "expected"),
    [
        (np.float32, None, np.float32),
        (np.float64, None, np.float64),
        (np.int64, None, np.float64),
        (np.float64, "float32", np.float32),
        (np.float32, "float64", np.float64),
    ],
)
def test_dtype_follows_the_input_unless_set(X_dtype: type, dtype: str | None, expected: type) -> None:
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(**SMALL, dtype=dtype).fit((X * 10).astype(X_dtype), y)
    assert {p.dtype for _, p, _ in model.network_.parameters()} == {np.dtype(expected)}
    assert model.predict_proba(X).dtype == expected
    assert model.predict_log_proba(X).dtype == expected


def test_predict_log_proba_is_exact_where_probabilities_underflow() -> None:
    X_train, X_test, y_train, _ = scaled(load_iris)
    model = MLPClassifier(**SMALL).fit(X_train, y_train)
    far = X_test * 1e4  # logits thousands apart: exp underflows, the log-softmax does not
    log_proba = model.predict_log_proba(far)
    assert np.isfinite(log_proba).all()
    logits = model.network_.forward(far)
    expected = logits - logits.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(log_proba, expected)


# -- training: one implementation with the CLI ----------------------------------------
def test_same_weights_as_the_cli_run(tmp_path: Path) -> None:
    config = TrainConfig(hidden=(16,), optimizer="adam", lr=0.01, dropout=0.1, l2=1e-4, epochs=2, seed=3)
    run = run_training(config, tmp_path, report=lambda _: None)
    prepared = prepare_data(config)  # the CLI's split and scaling, so both see the same rows
    model = MLPClassifier(
        (16,), optimizer="adam", learning_rate_init=0.01, dropout=0.1, alpha=1e-4, max_iter=2, random_state=3
    ).fit(prepared.X_train, prepared.y_train)
    cli = run.model.network.state()
    assert set(cli) == set(model.network_.state())
    for name, value in model.network_.state().items():
        np.testing.assert_array_equal(value, cli[name], err_msg=name)


def test_partial_fits_and_warm_starts_add_up_to_one_fit() -> None:
    X_train, _, y_train, _ = scaled(load_wine)
    params = {"hidden_layer_sizes": (16,), "optimizer": "adam", "dropout": 0.1, "schedule": "step", "step_size": 1}
    whole = MLPClassifier(**params, max_iter=3, random_state=7).fit(X_train, y_train)

    partial = MLPClassifier(**params, random_state=7)
    for _ in range(3):
        partial.partial_fit(X_train, y_train, classes=[0, 1, 2])
    warm = MLPClassifier(**params, max_iter=1, random_state=7, warm_start=True)
    for _ in range(3):
        warm.fit(X_train, y_train)

    for other in (partial, warm):
        assert other.n_iter_ == 3
        assert other.loss_curve_ == whole.loss_curve_
        for name, value in whole.network_.state().items():
            np.testing.assert_array_equal(other.network_.state()[name], value, err_msg=name)


def test_a_warm_fit_keeps_its_optimiser_and_rate() -> None:
    """As documented: a changed learning_rate_init waits for a new fit."""
    X_train, _, y_train, _ = scaled(load_wine)
    model = MLPClassifier(**{**SMALL, "max_iter": 1}, learning_rate_init=0.01, warm_start=True).fit(X_train, y_train)
    optimizer = model.optimizer_
    model.set_params(learning_rate_init=0.5).fit(X_train, y_train)
    assert model.optimizer_ is optimizer and optimizer.lr == 0.01 and model.n_iter_ == 2
    model.set_params(warm_start=False).fit(X_train, y_train)
    assert model.optimizer_ is not optimizer and model.optimizer_.lr == 0.5


def test_a_fit_without_warm_start_starts_anew() -> None:
    X_train, _, y_train, _ = scaled(load_wine)
    model = MLPClassifier(**SMALL)
    first = states(model.fit(X_train, y_train))
    second = states(model.fit(X_train, y_train))
    assert model.n_iter_ == 5
    for name, value in first.items():
        np.testing.assert_array_equal(second[name], value)


@pytest.mark.parametrize("how", ["fit", "warm_start", "partial_fit"])
def test_a_diverged_fit_leaves_the_estimator_unfitted(how: str) -> None:
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    model = MLPClassifier(learning_rate_init=1e100, max_iter=3, random_state=0)
    if how != "fit":  # fitted first (zero epochs: nothing to diverge yet), then going on from it
        model.set_params(max_iter=0).fit(X, y)
        assert hasattr(model, "network_")
        model.set_params(max_iter=3, warm_start=how == "warm_start")
    with pytest.raises(TrainingDiverged):
        if how == "partial_fit":
            for _ in range(3):  # one epoch each
                model.partial_fit(X, y)
        else:
            model.fit(X, y)
    assert not [k for k in vars(model) if k.endswith("_")], "no fitted attribute is left"
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.set_params(learning_rate_init=0.05)
    assert model.partial_fit(X, y, classes=[0, 1]).n_iter_ == 1, "trains anew, from nothing"


def test_partial_fit_label_errors() -> None:
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(**SMALL)
    with pytest.raises(ValueError, match=r"partial_fit needs classes= \(every label\) on its first call"):
        model.partial_fit(X, y)
    model.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a first batch may lack a class
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"classes \[0, 1\] differ from classes_ \[0, 1, 2\]"):
        model.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"y has labels \[7\] that are not in classes_ \[0, 1, 2\]"):
        model.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4 features"):
        model.partial_fit(X[:, :3], y)


def test_loss_curve_is_the_mean_batch_loss_with_penalty() -> None:
    # One full batch: the epoch's loss is that of the initial weights, which a fit of
    # zero epochs with the same seed holds.
    X_train, _, y_train, _ = scaled(load_iris)
    params = {"hidden_layer_sizes": (8,), "alpha": 0.01, "batch_size": len(X_train), "random_state": 1}
    start = MLPClassifier(**params, max_iter=0).fit(X_train, y_train)
    model = MLPClassifier(**params, max_iter=1).fit(X_train, y_train)
    W1, b1, W2, b2 = (start.network_.state()[k] for k in ("0.W", "0.b", "2.W", "2.b"))
    z = np.maximum(X_train @ W1 + b1, 0) @ W2 + b2
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(len(y_train)), y_train].mean() + 0.005 * ((W1**2).sum() + (W2**2).sum())
    assert model.loss_curve_ == [pytest.approx(expected, rel=1e-12)]
    assert model.best_loss_ == model.loss_curve_[0]
    assert model.validation_scores_ is None and model.best_validation_score_ is None


def test_trainer_without_train_evaluation_records_the_epoch_loss(rng: np.random.Generator) -> None:
    trainer = Trainer(build_mlp(4, (8,), 3, rng, dtype=np.float64), SGD(0.01), 16, rng)
    X, y = load_iris(return_X_y=True)
    batches: list[tuple[int, float]] = []
    trainer.on_batch = lambda t, info: batches.append((int(info["batch"]), info["loss"]))
    history = trainer.fit(X, y, 2, eval_train=False)
    assert [sorted(r) for r in history] == [["epoch", "lr", "train_loss"]] * 2
    # The epoch's loss is the mean of its batch losses weighted by the batches' sizes (150 = 9 x 16 + 6).
    sizes = [16] * 9 + [6]
    for epoch, record in enumerate(history):
        losses = [loss for _, loss in batches[10 * epoch : 10 * epoch + 10]]
        assert [b for b, _ in batches[10 * epoch : 10 * epoch + 10]] == list(range(1, 11))
        assert record["train_loss"] == pytest.approx(np.dot(sizes, losses) / 150, rel=1e-12)


def test_early_stopping_keeps_the_best_epoch() -> None:
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(
        (32,), learning_rate_init=0.2, early_stopping=True, n_iter_no_change=2, max_iter=100, random_state=0
    ).fit(X, y)
    assert model.n_iter_ < 100
    assert model.best_loss_ is None
    assert model.validation_scores_ is not None and len(model.validation_scores_) == model.n_iter_
    losses = [r["val_loss"] for r in model.history_]
    best = int(np.argmin(losses))
    assert model.n_iter_ == best + 1 + 2
    assert model.best_validation_score_ == model.validation_scores_[best]
    # The weights kept are the best epoch's: on the estimator's validation split they give
    # that epoch's loss and accuracy, not the last epoch's.
    X_val, y_val = validation_split(X, y, model.validation_fraction, model.seed_)[1::2]
    kept = evaluate(model.network_, X_val, y_val)
    assert kept == pytest.approx((losses[best], model.validation_scores_[best]), rel=1e-6)
    assert losses[-1] != pytest.approx(losses[best], rel=1e-6)


# -- parameters -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"learning_rate_init": -1.0},
            "parameter learning_rate_init=-1.0: lr: SGD: learning rate must be a finite number > 0, got -1.0",
        ),
        ({"hidden_layer_sizes": (16, 0)}, r"parameter hidden_layer_sizes=\(16, 0\): hidden widths must be >= 1"),
        ({"optimizer": "lbfgs"}, "parameter optimizer='lbfgs': unknown optimizer 'lbfgs'; choose from sgd"),
        ({"activation": "softplus"}, "parameter activation='softplus': unknown activation 'softplus'"),
        ({"dropout": 1.0}, r"parameter dropout=1.0: dropout must be in \[0, 1\), got 1.0"),
        ({"alpha": float("nan")}, "parameter alpha=nan: l2 must be a finite number, got nan"),
        ({"batch_size": "32"}, "parameter batch_size='32': option 'batch_size' must be an integer, got '32'"),
        ({"max_iter": 2.5}, "parameter max_iter=2.5: option 'epochs' must be an integer, got 2.5"),
        ({"dtype": "float16"}, "parameter dtype='float16': dtype must be float32 or float64, got 'float16'"),
        ({"nesterov": True}, "parameter nesterov=True: nesterov: SGD with nesterov=True needs momentum > 0"),
        (
            {"early_stopping": True, "validation_fraction": 0.0},
            "parameter early_stopping=True, validation_fraction=0.0: early stopping needs a validation split",
        ),
        ({"random_state": -1}, "parameter random_state=-1: expected None, an int >= 0, a numpy RandomState"),
        ({"warm_start": "no"}, "parameter warm_start='no': must be True or False"),
    ],
)
def test_bad_parameters_are_named_at_fit(params: dict[str, Any], message: str) -> None:
    model = MLPClassifier(**params)  # accepted here: scikit-learn validates at fit time
    with pytest.raises(ValueError, match=f"^MLPClassifier {message}") as e:
        model.fit(np.eye(4), [0, 1, 0, 1])
    assert "\n" not in str(e.value)


def test_numpy_scalars_and_int_width_are_accepted() -> None:
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(np.int64(8), max_iter=np.int64(2), learning_rate_init=np.float32(0.05), random_state=0)
    model.fit(X, y)
    assert model.network_.n_in == 4 and model.network_.layers[0].n_out == 8 and model.n_iter_ == 2


def test_random_state_kinds() -> None:
    X_train, _, y_train, _ = scaled(load_iris)

    def weights(random_state: Any) -> np.ndarray:
        return MLPClassifier(**{**SMALL, "random_state": random_state}).fit(X_train, y_train).network_.state()["0.W"]

    np.testing.assert_array_equal(weights(np.random.RandomState(5)), weights(np.random.RandomState(5)))
    np.testing.assert_array_equal(weights(np.random.default_rng(5)), weights(np.random.default_rng(5)))
    assert not np.array_equal(weights(None), weights(None))


# -- the library's model files --------------------------------------------------------
def test_save_and_load_the_npz_format(tmp_path: Path) -> None:
    X_train, X_test, y_train, _ = scaled(load_wine)
    names = np.array(["barolo", "grignolino", "barbera"], dtype=object)
    model = MLPClassifier(**SMALL, batch_norm=True).fit(X_train, names[y_train])
    model.save(tmp_path)
    with zipfile.ZipFile(tmp_path / "model.npz") as z:
        assert all(n.endswith(".npy") for n in z.namelist())
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert "0.W" in npz.files
    loaded = MLPClassifier.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert loaded.get_params() == model.get_params()
    assert (loaded.n_features_in_, loaded.n_iter_, loaded.loss_curve_) == (13, 5, model.loss_curve_)
    # The CLI reads the same file (labels as strings).
    cli = load_model(tmp_path)
    np.testing.assert_array_equal(cli.network.predict_proba(X_test), model.predict_proba(X_test))
    assert cli.class_names == ["barbera", "barolo", "grignolino"]


def test_evaluate_of_an_estimator_model_needs_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model file from MLPClassifier.save has no training run behind it, so no test split:
    ``ml-math-nn evaluate`` says so in one line (it was ``failed: KeyError: 'config'``) and
    evaluates it on labelled data given with --dataset."""
    from ml_math_nn.runs.cli import main

    X, y = load_digits(return_X_y=True)
    MLPClassifier(**SMALL).fit(X, y).save(tmp_path)
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "saved by MLPClassifier, not by a training run" in err and "--dataset" in err
    assert main(["evaluate", "--model", str(tmp_path), "--dataset", "digits"]) == 0
    assert capsys.readouterr().out.startswith("digits: 1797 samples")


def test_load_refuses_a_model_the_estimator_did_not_save(tmp_path: Path) -> None:
    save_model(tmp_path, Model(build_mlp(4, (8,), 3, np.random.default_rng(0)), ["a", "b", "c"]))
    with pytest.raises(ValueError, match="not a saved MLPClassifier"):
        MLPClassifier.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": "x"}, "'str' object has no attribute 'items'"),
        ({"params": {"bogus": 1}}, "unexpected keyword argument 'bogus'"),
        (
            {"params": {"hidden_layer_sizes": [99]}},
            r"hidden_layer_sizes \(99,\) but the network's hidden widths are \[16\]",
        ),
        (
            {"params": {"learning_rate_init": -1}},
            "parameter learning_rate_init=-1: lr: SGD: learning rate must be a finite number > 0",
        ),
        ({"classes": ["a"]}, r"classes \['a'\] are not 3 distinct labels in sorted order"),
        ({"classes": [2, 1, 0]}, r"classes \[2, 1, 0\] are not 3 distinct labels in sorted order"),
        ({"feature_names_in": ["x"]}, "feature_names_in is not 13 column names"),
        ({"seed": "s"}, "seed 's' is not an int >= 0"),
        ({"history": [1]}, "'int' object has no attribute 'items'"),
    ],
    ids=["params", "unknown-param", "hidden", "bad-param", "classes", "unsorted", "names", "seed", "history"],
)
def test_load_refuses_crafted_estimator_metadata(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    from ml_math_nn.runs.persistence import FORMAT, VERSION, ModelFileError, read_archive, write_archive

    X_train, _, y_train, _ = scaled(load_wine)
    MLPClassifier(**SMALL).fit(X_train, y_train).save(tmp_path)
    arrays, meta = read_archive(tmp_path / "model.npz", FORMAT, VERSION)
    for key, value in change.items():
        old = meta["meta"][key]
        meta["meta"][key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    write_archive(tmp_path / "model.npz", arrays, meta)
    with pytest.raises(ModelFileError, match=f"model.npz: invalid MLPClassifier metadata \\(.*{message}"):
        MLPClassifier.load(tmp_path)


def test_clone_of_a_fitted_model_is_unfitted() -> None:
    model = MLPClassifier(**SMALL).fit(*load_iris(return_X_y=True))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "network_")


# -- accuracy against scikit-learn ----------------------------------------------------
def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("estimator_vs_sklearn", ROOT / "benchmarks/estimator_vs_sklearn.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_least_as_accurate_as_sklearn_on_digits_splits() -> None:
    bench = benchmark()
    with threadpool_limits(1):  # two processes' BLAS threads on two shared cores only slow both down
        results = bench.compare({"ours": bench.TUNED})
    mean = {name: statistics.fmean(r["acc"] for r in rows) for name, rows in results.items()}
    assert [r["seed"] for r in results["ours"]] == [0, 1, 2, 3, 4]
    assert mean["ours"] >= mean["sklearn"], mean
