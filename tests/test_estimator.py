"""MLPClassifier and MLPRegressor as drop-ins for scikit-learn's: the same fit, step for step, as
scikit-learn's own estimators with the same random_state; scikit-learn's estimator checks and
tools; the behaviours of scikit-learn's test_mlp.py; sparse input, sample and class weights;
the L-BFGS objective's gradient against finite differences and PyTorch; the library's model files."""

from __future__ import annotations

import io
import pickle
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import check_estimator

from ml_math_nn import MLPClassifier, MLPRegressor
from ml_math_nn.runs.persistence import ModelFileError

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = X_DIGITS[:200] / 16
Y_DIGITS = Y_DIGITS[:200]
Y_BINARY = (Y_DIGITS > 4).astype(int)
X_MULTI, Y_MULTI = make_multilabel_classification(n_samples=80, n_features=6, n_classes=3, random_state=0)
X_REG, Y_REG = make_regression(n_samples=120, n_features=5, n_targets=2, noise=0.1, random_state=0)
Y_REG = Y_REG / 100
X_MULTI = X_MULTI / X_MULTI.max()


def quiet_fit(model: Any, X: Any, y: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kw)


def assert_same_fit(ours: Any, theirs: Any, atol: float = 1e-12) -> None:
    """Every fitted attribute scikit-learn has, equal (weights to ``atol``, losses and scores to ``10 atol``)."""
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    for name in ("n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_", "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in ("loss_", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        if hasattr(theirs, name) and getattr(theirs, name) is None:
            assert getattr(ours, name) is None, name
        elif hasattr(theirs, name):
            # (scikit-learn clips probabilities at machine epsilon in its log-loss; we do not)
            np.testing.assert_allclose(np.asarray(getattr(ours, name), float), getattr(theirs, name), rtol=atol * 10)


# -- the same fit as scikit-learn's, step for step -----------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"solver": "adam"},
        {"solver": "sgd"},  # Nesterov momentum 0.9
        {"solver": "sgd", "momentum": 0.5, "nesterovs_momentum": False},
        {"solver": "sgd", "momentum": 0.0, "learning_rate": "invscaling", "learning_rate_init": 0.2},
        {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.5, "n_iter_no_change": 1, "max_iter": 12},
        {"solver": "lbfgs", "max_iter": 10},
        {"solver": "adam", "early_stopping": True, "max_iter": 15, "n_iter_no_change": 2},
        {"solver": "adam", "batch_size": 32, "alpha": 0.1, "shuffle": False, "activation": "tanh"},
        {"solver": "adam", "activation": "logistic", "hidden_layer_sizes": (6, 5)},
        {"solver": "adam", "activation": "identity", "tol": 1.0, "n_iter_no_change": 2, "max_iter": 50},
        {"solver": "adam", "n_iter_no_change": np.inf},
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel", "regression"])
def test_the_same_fit_as_scikit_learn(params: dict[str, Any], task: str) -> None:
    """Same random_state: the same initial weights, shuffles, split, steps, stopping rule and attributes."""
    params = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, **params}
    if task == "regression":
        # scikit-learn's L-BFGS gradient of several outputs is not that of its loss (docs/estimator.md): one output
        y = Y_REG[:, 0] if params["solver"] == "lbfgs" else Y_REG
        ours, theirs, X = MLPRegressor(**params), SkRegressor(**params), X_REG
    else:
        X, y = {
            "multiclass": (X_DIGITS, Y_DIGITS),
            "binary": (X_DIGITS, Y_BINARY),
            "multilabel": (X_MULTI, Y_MULTI),
        }[task]
        ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    quiet_fit(ours, X, y)
    quiet_fit(theirs, X, y)
    # L-BFGS's line searches amplify the last bits' differences of the products over 30 iterations
    assert_same_fit(ours, theirs, 1e-5 if params["solver"] == "lbfgs" else 1e-12)
    if task == "regression":
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-6)
    else:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_partial_fit_and_warm_start_follow_scikit_learn() -> None:
    params = {"hidden_layer_sizes": (8,), "random_state": 0, "max_iter": 3}
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    for _ in range(3):
        ours.partial_fit(X_DIGITS, Y_DIGITS, classes=np.arange(10))
        theirs.partial_fit(X_DIGITS, Y_DIGITS, classes=np.arange(10))
    assert_same_fit(ours, theirs)  # n_iter_ is the last call's (1), t_ adds up
    assert ours.n_iter_ == 1 and ours.t_ == 600
    ours.set_params(warm_start=True)
    theirs.set_params(warm_start=True)
    quiet_fit(ours, X_DIGITS, Y_DIGITS)
    quiet_fit(theirs, X_DIGITS, Y_DIGITS)
    assert_same_fit(ours, theirs)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        ours.fit(X_DIGITS[Y_DIGITS < 5], Y_DIGITS[Y_DIGITS < 5])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        MLPClassifier().partial_fit(X_DIGITS, Y_DIGITS, classes=np.arange(5))
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPClassifier(solver="lbfgs").partial_fit  # noqa: B018
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPRegressor(early_stopping=True).partial_fit(X_REG, Y_REG)


# -- scikit-learn's checks and tools ---------------------------------------------------------
@pytest.mark.parametrize("model", [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)], ids=["clf", "reg"])
def test_check_estimator_passes_every_check(model: Any) -> None:
    """Every check passes; the only skips are scikit-learn's own (array API without SCIPY_ARRAY_API,
    and the decision_function format, which neither scikit-learn's MLP nor ours has)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(model, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input", "check_classifiers_multilabel_output_format_decision_function"}


def test_pipeline_grid_search_cross_val_and_pickle() -> None:
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), solver="lbfgs", max_iter=50, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2)
    quiet_fit(grid, X_DIGITS, Y_DIGITS)
    assert grid.best_score_ > 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0), X_REG, Y_REG)
    assert scores.mean() > 0.9
    back = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(back.predict_proba(X_DIGITS), grid.best_estimator_.predict_proba(X_DIGITS))


def test_multioutput_and_transformed_target_regressors() -> None:
    base = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        multi = MultiOutputRegressor(base).fit(X_REG, Y_REG)
        transformed = TransformedTargetRegressor(base, transformer=StandardScaler()).fit(X_REG, Y_REG * 1000)
    assert multi.predict(X_REG).shape == Y_REG.shape and multi.score(X_REG, Y_REG) > 0.9
    assert transformed.score(X_REG, Y_REG * 1000) > 0.9


# -- scikit-learn's test_mlp.py behaviours ---------------------------------------------------
def test_convergence_warning_and_verbose_output() -> None:
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        MLPClassifier(max_iter=2, random_state=0).fit(X_DIGITS, Y_DIGITS)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier(solver="lbfgs", max_iter=2, random_state=0).fit(X_DIGITS, Y_DIGITS)
    out = io.StringIO()
    with redirect_stdout(out):
        MLPClassifier(tol=10.0, n_iter_no_change=1, early_stopping=True, verbose=True, random_state=0).fit(
            X_DIGITS, Y_DIGITS
        )
    text = out.getvalue()
    assert "Iteration 1, loss = " in text and "Validation score: " in text
    assert "Validation score did not improve more than tol=10.000000 for 1 consecutive epochs. Stopping." in text


def test_n_iter_no_change_inf_trains_max_iter_epochs() -> None:
    model = quiet_fit(MLPClassifier(tol=1e6, n_iter_no_change=np.inf, max_iter=7, random_state=0), X_DIGITS, Y_DIGITS)
    assert model.n_iter_ == 7
    # the first epoch improves on an infinite best loss; then 3 > n_iter_no_change epochs that do not
    assert MLPClassifier(tol=1e6, n_iter_no_change=2, random_state=0).fit(X_DIGITS, Y_DIGITS).n_iter_ == 4


def test_batch_size_larger_than_the_data_is_clipped_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="Got `batch_size` less than 1 or larger than sample size"):
        quiet_fit(MLPClassifier(batch_size=1000, max_iter=1), X_DIGITS, Y_DIGITS)


def test_one_class_multilabel_and_string_labels() -> None:
    one = MLPClassifier(max_iter=2).fit(X_DIGITS, np.full(200, "a"))
    assert (one.predict(X_DIGITS) == "a").all()
    multi = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0), X_MULTI, Y_MULTI)
    assert multi.predict(X_MULTI).shape == Y_MULTI.shape and set(np.unique(multi.predict(X_MULTI))) <= {0, 1}
    assert multi.predict_proba(X_MULTI).shape == Y_MULTI.shape and multi.out_activation_ == "logistic"
    labels = np.array(["no", "yes"])[Y_BINARY]
    binary = quiet_fit(MLPClassifier(max_iter=20, random_state=0), X_DIGITS, labels)
    assert binary.coefs_[-1].shape == (100, 1) and set(binary.predict(X_DIGITS)) <= {"no", "yes"}


def test_predict_log_proba_is_exact_where_probabilities_are_tiny() -> None:
    for y in (Y_DIGITS, Y_BINARY):
        model = quiet_fit(MLPClassifier(max_iter=3, random_state=0), X_DIGITS, y)
        np.testing.assert_allclose(np.exp(model.predict_log_proba(X_DIGITS)), model.predict_proba(X_DIGITS), atol=1e-12)
        model.coefs_ = [w * 50 for w in model.coefs_]  # logits some hundreds apart
        logs, proba = model.predict_log_proba(X_DIGITS), model.predict_proba(X_DIGITS)
        tiny = (proba > 0) & (proba < 1e-200)
        assert tiny.any() and (logs[tiny] < np.log(1e-200)).all() and np.isfinite(logs[proba > 0]).all()
        np.testing.assert_allclose(logs[proba > 1e-300], np.log(proba[proba > 1e-300]), rtol=1e-9, atol=1e-12)
        assert (logs[proba == 0] == -np.inf).all()  # scikit-learn's log of 0


def test_bad_targets_and_weights_get_scikit_learns_errors() -> None:
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier(max_iter=1).fit(X_REG, Y_REG[:, 0])
    with pytest.raises(ValueError, match="could not convert string to float"):
        MLPRegressor(max_iter=1).fit(X_REG, np.array(["a", "b"])[np.arange(120) % 2])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MLPRegressor(max_iter=1).fit(X_REG, Y_REG, sample_weight=-np.ones(120))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(119,\), expected \(120,\)"):
        MLPRegressor(max_iter=1).fit(X_REG, Y_REG, sample_weight=np.ones(119))
    with pytest.raises(ValueError, match="Found input variables with inconsistent numbers of samples"):
        MLPRegressor(max_iter=1).fit(X_REG, Y_REG[:-1])
    nan = sp.csr_matrix(X_REG)
    nan.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPRegressor(max_iter=1).fit(nan, Y_REG)


# -- sparse input, sample and class weights ---------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_input_gives_the_dense_fit(fmt: Any, solver: str) -> None:
    params = {"hidden_layer_sizes": (8,), "max_iter": 5, "random_state": 0, "solver": solver}
    dense = quiet_fit(MLPClassifier(**params), X_DIGITS, Y_DIGITS)
    sparse = quiet_fit(MLPClassifier(**params), fmt(X_DIGITS), Y_DIGITS)
    for a, b in zip(dense.coefs_, sparse.coefs_, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)
    np.testing.assert_allclose(sparse.predict_proba(fmt(X_DIGITS)), dense.predict_proba(X_DIGITS), atol=1e-10)


def test_integer_sample_weights_equal_repeated_rows() -> None:
    """Full-batch L-BFGS: weight k is the row repeated k times (weight 0: the row left out)."""
    weights = np.random.default_rng(0).integers(0, 4, size=120)
    params = {"hidden_layer_sizes": (5,), "solver": "lbfgs", "max_iter": 40, "random_state": 0}
    weighted = quiet_fit(MLPRegressor(**params), X_REG, Y_REG, sample_weight=weights)
    repeated = quiet_fit(MLPRegressor(**params), np.repeat(X_REG, weights, axis=0), np.repeat(Y_REG, weights, axis=0))
    for a, b in zip(weighted.coefs_, repeated.coefs_, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_class_weight_is_the_sample_weight_of_each_class() -> None:
    params = {"hidden_layer_sizes": (8,), "max_iter": 4, "random_state": 0}
    for class_weight in ("balanced", {0: 1.0, 1: 3.0}):
        weighted = quiet_fit(MLPClassifier(class_weight=class_weight, **params), X_DIGITS, Y_BINARY)
        by_hand = quiet_fit(
            MLPClassifier(**params), X_DIGITS, Y_BINARY, sample_weight=compute_sample_weight(class_weight, Y_BINARY)
        )
        for a, b in zip(weighted.coefs_, by_hand.coefs_, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="class_weight is not supported for multi-label y"):
        MLPClassifier(class_weight="balanced").fit(X_MULTI, Y_MULTI)


# -- the objective's gradient, two ways -----------------------------------------------------
def objective_case(task: str) -> tuple[Any, Any, Any, Any]:
    """A fitted-for-one-step estimator and (X, target, weights) of its L-BFGS objective, float64."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    if task == "regression":
        model, y = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3), rng.normal(size=(30, 2))
    elif task == "multilabel":
        model, y = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3), rng.integers(0, 2, (30, 3))
    else:
        model = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3, class_weight="balanced")
        y = rng.integers(0, 3, 30)
    quiet_fit(model.set_params(max_iter=1, random_state=0), X, y)
    X, target, Y = model._encode(X, y, incremental=False, reset=False)
    weights = rng.uniform(0.5, 2.0, 30) * (model._extra_weights(Y) if task == "multiclass" else 1.0)
    return model, X, target, weights


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_objective_gradient_matches_finite_differences(task: str) -> None:
    model, X, target, w = objective_case(task)
    theta = model.network_.flat_parameters().param.copy()
    _, grad = model._lbfgs_objective(theta, X, target, w)
    h, numeric = 1e-6, np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        numeric[i] = (
            model._lbfgs_objective(theta + e, X, target, w)[0] - model._lbfgs_objective(theta - e, X, target, w)[0]
        ) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_objective_and_gradient_match_pytorch(task: str, torch: ModuleType) -> None:
    """The weighted objective of scikit-learn (docs/estimator.md) written in torch, float64, to 1e-10."""
    model, X, target, w = objective_case(task)
    theta = model.network_.flat_parameters().param.copy()
    loss, grad = model._lbfgs_objective(theta, X, target, w)
    W1, W2 = (torch.tensor(a, requires_grad=True) for a in model.coefs_)
    b1, b2 = (torch.tensor(a, requires_grad=True) for a in model.intercepts_)
    z = torch.tanh(torch.tensor(X) @ W1 + b1) @ W2 + b2
    tw = torch.tensor(w)
    f = torch.nn.functional
    if task == "multiclass":
        per_sample = f.cross_entropy(z, torch.tensor(target), reduction="none")
    elif task == "multilabel":
        per_sample = f.binary_cross_entropy_with_logits(z, torch.tensor(target), reduction="none").sum(dim=1)
    else:
        per_sample = 0.5 * ((z - torch.tensor(target)) ** 2).sum(dim=1)
    ref = (tw * per_sample).sum() / tw.sum() + 0.3 / (2 * tw.sum()) * ((W1**2).sum() + (W2**2).sum())
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-10 * abs(ref.item())
    ours = dict(
        zip(
            ("W1", "W2", "b1", "b2"),
            [grad[model._offset(layer, "W")] for layer in model._dense()]
            + [grad[model._offset(layer, "b")] for layer in model._dense()],
            strict=True,
        )
    )
    for name, t in (("W1", W1), ("W2", W2), ("b1", b1), ("b2", b2)):
        np.testing.assert_allclose(ours[name], t.grad.numpy().ravel(), rtol=1e-10, atol=1e-12)


def test_lbfgs_reaches_scipys_optimum_of_the_same_objective() -> None:
    """scipy's L-BFGS-B run directly on the objective (from the same start) ends where the fit ends."""
    import scipy.optimize

    _, X, target, w = objective_case("regression")
    model = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3, solver="lbfgs", max_iter=500)
    start = clone(model)  # the start of a fit with random_state=0: scikit-learn's draws from RandomState(0)
    start._random_state, start.n_outputs_, start.out_activation_ = np.random.RandomState(0), 2, "identity"
    start.network_ = start._build(X.shape[1], np.dtype(np.float64))
    theta0 = start.network_.flat_parameters().param.copy()
    direct = scipy.optimize.minimize(
        start._lbfgs_objective,
        theta0,
        args=(X, target, w),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500, "gtol": 1e-4, "maxfun": 15000},
    )
    fitted = quiet_fit(model.set_params(random_state=0), X, target, sample_weight=w)
    np.testing.assert_allclose(fitted.network_.flat_parameters().param, direct.x, atol=1e-10)
    assert fitted.loss_ == pytest.approx(direct.fun, rel=1e-12)


# -- our extras and the library's model files ------------------------------------------------
def test_extras_train() -> None:
    params = {"hidden_layer_sizes": (16,), "max_iter": 60, "random_state": 0, "learning_rate_init": 0.01}
    for extra in (
        {"dropout": 0.2},
        {"batch_norm": True},
        {"init": "he_normal"},
        {"clip_norm": 1.0},
        {"activation": "gelu"},
        {"solver": "adamw"},
    ):
        model = quiet_fit(MLPClassifier(**params, **extra), X_DIGITS, Y_DIGITS)
        assert model.score(X_DIGITS, Y_DIGITS) > 0.9, extra
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.1).fit(X_DIGITS, Y_DIGITS)


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel", "regression"])
def test_save_and_load_the_npz_format(task: str, tmp_path: Path) -> None:
    if task == "regression":
        model, X, y = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0), X_REG, Y_REG
    else:
        X, y = {"multiclass": (X_DIGITS, Y_DIGITS), "binary": (X_DIGITS, Y_BINARY), "multilabel": (X_MULTI, Y_MULTI)}[
            task
        ]
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, n_iter_no_change=np.inf)
    quiet_fit(model, X, y)
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params() and loaded.loss_curve_ == model.loss_curve_
    other = MLPClassifier if task == "regression" else MLPRegressor
    with pytest.raises(ModelFileError, match=f"not a saved {other.__name__}"):
        other.load(tmp_path)


def test_the_cli_predicts_what_a_saved_classifier_predicts(tmp_path: Path) -> None:
    from ml_math_nn.runs.cli import main

    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X_DIGITS, Y_DIGITS)
    model.save(tmp_path / "model")
    np.savez(tmp_path / "rows.npz", X=X_DIGITS)
    argv = ["predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "rows.npz")]
    assert main([*argv, "--output", str(tmp_path / "pred.csv")]) == 0
    rows = (tmp_path / "pred.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == [str(c) for c in model.predict(X_DIGITS)]
    probabilities = np.array([[float(v) for v in row.split(",")[2:]] for row in rows])
    np.testing.assert_allclose(probabilities, model.predict_proba(X_DIGITS), atol=1e-6)


def test_evaluate_of_an_estimator_model_needs_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model file from MLPClassifier.save has no training run behind it, so no test split:
    ``ml-math-nn evaluate`` says so in one line and evaluates it on labelled data given with --dataset."""
    from ml_math_nn.runs.cli import main

    X, y = load_digits(return_X_y=True)
    quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0), X, y).save(tmp_path)
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "saved by MLPClassifier, not by a training run" in err and "--dataset" in err
    assert main(["evaluate", "--model", str(tmp_path), "--dataset", "digits"]) == 0
    assert capsys.readouterr().out.startswith("digits: 1797 samples")


def test_warm_start_counts_the_last_fit_float32_stays_and_alpha_shrinks_the_weights() -> None:
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    for _ in range(2):
        with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
            model.fit(X_DIGITS, Y_DIGITS)
        assert model.n_iter_ == 3
    assert model.t_ == 6 * 200 and len(model.loss_curve_) == 6
    small = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=2), X_REG.astype(np.float32), Y_REG)
    assert small.coefs_[0].dtype == np.float32 and small.predict(X_REG).dtype == np.float32
    norms = []
    for alpha in (1e-4, 1.0, 10.0):
        fitted = quiet_fit(MLPClassifier((8,), alpha=alpha, max_iter=50, random_state=0), X_DIGITS, Y_DIGITS)
        norms.append(sum(float((w**2).sum()) for w in fitted.coefs_))
    assert norms[0] > norms[1] > norms[2]
