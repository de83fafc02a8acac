"""Property-based tests (hypothesis) of everything that reads user input: any input either
gives a valid result or fails with our error type and a one-line message, never another
exception.

* option mappings (TOML tables, CLI values) -> ``TrainConfig`` or ``ValueError``; a valid
  config survives its ``config.toml`` round trip exactly;
* command lines -> ``TrainConfig``, ``UsageError`` or argparse's exit 2;
* files given as ``csv:``/``npz:`` datasets or as rows to predict on -> a usable
  ``Dataset`` or feature array, or ``DataError`` (the readers alone are fuzzed in test_readers.py);
* saved models cut short, with a byte changed or with crafted metadata -> the saved
  weights or ``ModelFileError``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ml_math_nn.data.datasets import DataError, Dataset, load_dataset, load_features
from ml_math_nn.init import INITIALIZERS
from ml_math_nn.integrations.estimator import MLPClassifier
from ml_math_nn.network import build_mlp
from ml_math_nn.runs.cli import UsageError, build_parser, config_from_args, train_options
from ml_math_nn.runs.options import (
    MONITOR_NAMES,
    TrainConfig,
    activation_names,
    load_config,
    optimizer_names,
    schedule_names,
)
from ml_math_nn.runs.persistence import (
    FORMAT,
    VERSION,
    Model,
    ModelFileError,
    load_model,
    read_archive,
    save_model,
    write_archive,
)

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_line(e: BaseException) -> None:
    assert str(e) and "\n" not in str(e), repr(e)


# -- options ----------------------------------------------------------------------------
KNOWN = {f.name: f.default for f in fields(TrainConfig)}
NAMES: dict[str, tuple[str, ...]] = {
    "activation": (*activation_names(), "relu,tanh", "swish"),
    "optimizer": optimizer_names(),
    "schedule": schedule_names(),
    "monitor": MONITOR_NAMES,
    "dtype": ("float32", "float64", "float16"),
    "init": tuple(INITIALIZERS),
}
ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=4,
)


def plausible(name: str) -> st.SearchStrategy[Any]:
    """Values of the option's own type, valid or near the edges of what is valid."""
    default = KNOWN[name]
    if name == "hidden":
        return st.lists(st.integers(-1, 64), max_size=3) | st.sampled_from(["8,4", "16", "", "12,,3"])
    if name in NAMES:
        return st.sampled_from(NAMES[name])
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int) or name == "subset":
        return st.integers(-1, 40)
    if isinstance(default, float) or name == "clip_norm":
        return st.floats(-0.5, 1.5) | st.sampled_from([0.0, 1.0, float("nan"), float("inf")])
    return st.text(st.characters(max_codepoint=127) | st.characters(), max_size=8)  # ASCII: control characters


@st.composite
def option_values(draw: st.DrawFn) -> dict[str, Any]:
    """Some options with plausible values, now and then any value or an unknown name."""
    names = draw(st.lists(st.sampled_from(sorted(KNOWN)), max_size=6, unique=True))
    values = {name: draw(plausible(name) | plausible(name) | ANYTHING) for name in names}
    if draw(st.integers(0, 9)) == 0:
        values[draw(st.sampled_from(["learning_rate", "Hidden", ""]))] = draw(ANYTHING)
    return values


@FUZZ
@given(mapping=option_values())
def test_any_mapping_gives_a_config_or_value_error(tmp_path: Path, mapping: dict[str, Any]) -> None:
    try:
        config = TrainConfig.from_mapping(mapping, "fuzz")
    except ValueError as e:
        one_line(e)
        return
    assert TrainConfig.from_mapping(config.to_dict()) == config
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(path) == config


@FUZZ
@given(name=st.sampled_from([f.name for f in fields(TrainConfig) if f.type in ("str", "str | None")]), text=st.text())
def test_any_text_option_survives_config_toml(tmp_path: Path, name: str, text: str) -> None:
    try:
        config = TrainConfig(**{name: text})
    except ValueError as e:  # an option with a set of names
        one_line(e)
        return
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(path) == config


FLAG_NAMES = {flag: name for flag, name, _ in train_options()}
SWITCHES = {flag for flag, _, kwargs in train_options() if kwargs.get("action") is argparse.BooleanOptionalAction}


def as_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """``train`` with some flags: switches bare (or not), values plausible or any text."""
    argv = ["train"]
    for flag in draw(st.lists(st.sampled_from([*FLAG_NAMES, "--bogus", "--no-augment"]), max_size=5)):
        name = FLAG_NAMES.get(flag)
        if flag in SWITCHES or name is None or draw(st.integers(0, 9)) == 0:
            argv.append(flag)
        else:
            value = draw(plausible(name).map(as_text) | st.text(max_size=8) | st.floats().map(repr))
            argv.append(f"{flag}={value}")  # "=" so a value may start with "-"
    return argv


@FUZZ
@given(argv=command_lines())
def test_any_command_line_gives_a_config_or_a_usage_error(argv: list[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as e:
        assert e.code == 2
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()
        return
    try:
        config = config_from_args(args)
    except UsageError as e:
        one_line(e)
    else:
        assert isinstance(config, TrainConfig)


# -- data files ---------------------------------------------------------------------------
ODD_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["", " ", "1e39", "-0", "x", "label", '"1,2"', "0x10", "1_0", "nan", "-inf", "\u00e9"]),
)


@st.composite
def csv_like(draw: st.DrawFn) -> str:
    """A table of numbers with a label column, then a few damages: an odd cell, a short
    or long row, a blank line, a header."""
    width = draw(st.integers(2, 4))
    labels = draw(st.sampled_from([["0", "1"], ["cat", "dog", "cow"], ["1.5", "2"], ["7"]]))
    rows = [
        [*draw(st.lists(st.integers(-9, 9).map(str), min_size=width - 1, max_size=width - 1)), labels[i % len(labels)]]
        for i in range(draw(st.integers(1, 14)))
    ]
    damages = draw(st.lists(st.sampled_from(["cell", "cut", "extra", "blank", "header"]), max_size=2))
    for damage in sorted(damages, key=["cell", "cut", "extra", "blank", "header"].index):  # rows first, then lines
        row = rows[draw(st.integers(0, len(rows) - 1))]
        if damage == "cell":
            row[draw(st.integers(0, width - 1))] = draw(ODD_CELLS)
        elif damage == "cut":
            row.pop()
        elif damage == "extra":
            row.append("0")
        elif damage == "blank":
            rows.insert(draw(st.integers(0, len(rows))), [])
        else:
            rows.insert(0, [f"c{j}" for j in range(width - 1)] + ["label"])
    return "\n".join(",".join(row) for row in rows) + "\n"


def assert_usable(ds: Dataset) -> None:
    """What training needs: finite 2-D features of one width, and targets of the detected task:
    labels 0..K-1 with K >= 2 names (classification), 0/1 columns (multi-label) or finite values
    (regression)."""
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        assert X.ndim == 2 and X.shape[1] == ds.n_features and len(X) == len(y) and np.isfinite(X).all()
        if ds.task == "classification":
            assert ds.n_classes >= 2 and len(set(ds.class_names)) == ds.n_classes
            assert ((0 <= y) & (y < ds.n_classes)).all()
        elif ds.task == "multilabel":
            assert y.ndim == 2 and y.shape[1] == ds.n_classes and np.isin(y, (0, 1)).all()
        else:
            assert ds.task == "regression" and np.isfinite(y).all()


def load_or_fail(path: Path, spec: str, test_size: float | None) -> None:
    """The file as a labelled dataset (train, evaluate) and as feature rows (predict)."""
    try:
        ds = load_dataset(f"{spec}:{path}", test_size=test_size)
    except DataError as e:
        one_line(e)
    else:
        assert_usable(ds)
    try:
        X = load_features(path)
    except DataError as e:
        one_line(e)
    else:
        assert X.dtype == np.float32 and X.ndim == 2 and len(X) and np.isfinite(X).all()


@FUZZ
@given(
    content=st.binary(max_size=200) | st.text(max_size=200) | csv_like(),
    test_size=st.sampled_from([0.25, 0.5, None]),
)
def test_any_csv_file_loads_or_fails_with_data_error(
    tmp_path: Path, content: bytes | str, test_size: float | None
) -> None:
    path = tmp_path / "fuzz.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    load_or_fail(path, "csv", test_size)


@st.composite
def table_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """``X`` of features or images in a dtype of its own and ``y`` of a few classes,
    now and then with a label too many, a non-finite value or a second label column."""
    n = draw(st.integers(1, 12))
    shape = draw(st.sampled_from([(n, 3), (n, 2, 2), (n, 1)]))
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_]))
    X = draw(hnp.arrays(dtype, shape, elements={"min_value": 0, "max_value": 1} if dtype is np.bool_ else None))
    classes = draw(st.sampled_from([np.array([0, 1]), np.array(["a", "b", "c"]), np.array([2.5, -1.0]), np.array([3])]))
    y = classes[np.arange(n) % len(classes)]
    damage = draw(st.sampled_from(["none", "none", "length", "nan", "column"]))
    if damage == "length":
        y = np.append(y, y[:1])
    elif damage == "nan" and X.dtype.kind == "f":
        X.flat[draw(st.integers(0, X.size - 1))] = np.nan
    elif damage == "column":
        y = np.stack([y, y], axis=1)
    return {"X": X, "y": y}


ANY_ARRAYS = st.fixed_dictionaries(
    {
        "X": hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)),
        "y": hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4)),
    }
)


@FUZZ
@given(arrays=table_arrays() | ANY_ARRAYS, test_size=st.sampled_from([0.25, 0.5, None]))
def test_any_npz_arrays_load_or_fail_with_data_error(
    tmp_path: Path, arrays: dict[str, np.ndarray], test_size: float | None
) -> None:
    path = tmp_path / "fuzz.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    load_or_fail(path, "npz", test_size)


# -- model files --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, list[bytes]]:
    """A model and its file as saved, and the same arrays in a deflate-compressed archive."""
    rng = np.random.default_rng(7)
    model = Model(build_mlp(3, (4,), 2, rng, dropout=0.2, batch_norm=True), ["a", "b"])
    folder = tmp_path_factory.mktemp("model")
    save_model(folder, model)
    with np.load(folder / "model.npz") as npz:
        np.savez_compressed(folder / "compressed.npz", **{name: npz[name] for name in npz.files})
    return model, [(folder / name).read_bytes() for name in ("model.npz", "compressed.npz")]


@FUZZ
@given(data=st.data())
def test_a_damaged_model_file_is_refused(tmp_path: Path, saved: tuple[Model, list[bytes]], data: st.DataObject) -> None:
    model, files = saved
    good = data.draw(st.sampled_from(files))
    at = data.draw(st.integers(0, len(good) - 1))
    flipped = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1 :]
    (tmp_path / "model.npz").write_bytes(data.draw(st.sampled_from([good[:at], flipped])))
    try:
        loaded = load_model(tmp_path)
    except ModelFileError as e:
        one_line(e)
    else:  # a change the checks cannot see (e.g. in a zip comment) must not change the model
        arrays = loaded.arrays()
        assert loaded.class_names == model.class_names
        assert all(np.array_equal(a, arrays[k]) for k, a in model.arrays().items())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def json_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value nested in ``value`` (dict keys and list indices)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [path] + [p for k, v in items for p in json_paths(v, (*path, k))]


@FUZZ
@given(data=st.data())
def test_crafted_metadata_is_refused_or_keeps_the_weights(
    tmp_path: Path, saved: tuple[Model, list[bytes]], data: st.DataObject
) -> None:
    """The metadata (architecture, class names) is not checksummed: any value anywhere in it
    gives ModelFileError, or a model that still holds exactly the saved weights."""
    model, files = saved
    (tmp_path / "model.npz").write_bytes(files[0])
    arrays, meta = read_archive(tmp_path / "model.npz", FORMAT, VERSION)
    *parents, key = data.draw(st.sampled_from(json_paths(meta)[1:]))
    parent = meta
    for k in parents:
        parent = parent[k]
    parent[key] = data.draw(JSON)
    write_archive(tmp_path / "model.npz", arrays, meta)
    try:
        loaded = load_model(tmp_path)
    except ModelFileError as e:
        one_line(e)
    else:
        saved_arrays = model.arrays()
        assert all(np.array_equal(a, saved_arrays[k]) for k, a in loaded.arrays().items())


# -- estimator parameters -----------------------------------------------------------------
SMALL_ANYTHING = st.recursive(  # ANYTHING with integers small enough to train on (epochs, widths)
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=4,
)
RANDOM_STATES = st.none() | st.integers(-2, 2**40) | st.integers(0, 9).map(np.random.RandomState) | SMALL_ANYTHING


def small(name: str) -> st.SearchStrategy[Any]:
    """:func:`plausible` values of the config field, with epochs and widths kept small."""
    if name == "hidden":
        return st.lists(st.integers(-1, 8), max_size=3) | st.integers(-1, 8) | st.sampled_from(["8,4", "", "12,,3"])
    if name in ("epochs", "warmup_epochs", "patience", "plateau_patience", "step_size"):
        return st.integers(-1, 4)
    return plausible(name)


ESTIMATOR_VALUES = st.sampled_from(
    [None, 0, 1, 2, -1, 0.5, 1e-3, 1.5, np.inf, True, False, "auto", "relu", "identity", "sgd", "lbfgs", "adaptive"]
)
"""Values each valid for some of the estimator's parameters."""


@st.composite
def estimator_params(draw: st.DrawFn) -> dict[str, Any]:
    """Some of MLPClassifier's parameters, each of its option's type or anything at all."""
    names = draw(st.lists(st.sampled_from(sorted(MLPClassifier().get_params())), max_size=6, unique=True))
    params = {name: draw(ESTIMATOR_VALUES | SMALL_ANYTHING) for name in names}
    params["max_iter"] = params.get("max_iter", 2)
    if draw(st.booleans()):
        params["random_state"] = draw(RANDOM_STATES)
    if draw(st.integers(0, 4)) == 0:
        params["warm_start"] = draw(SMALL_ANYTHING)
    return params


@FUZZ
@given(params=estimator_params())
def test_any_estimator_parameters_fit_or_fail_with_value_error(params: dict[str, Any]) -> None:
    """Invalid parameters give one ``ValueError`` line (scikit-learn's, naming the parameter),
    at fit time; valid ones train a model whose probabilities are rows of a distribution (or
    stop on a diverging fit with scikit-learn's ``ValueError``)."""
    X = np.random.default_rng(0).normal(size=(24, 3))
    y = np.arange(24) % 3
    model = MLPClassifier(**params)
    try:
        model.fit(X, y)
    except ValueError as e:
        assert str(e).startswith(("The '", "Solver produced non-finite", "hidden_layer_sizes must be")), e
        return
    assert isinstance(model.warm_start, (bool, np.bool_))
    proba = model.predict_proba(X)
    assert proba.shape == (24, 3) and model.n_iter_ <= model.max_iter
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)


@pytest.fixture(scope="module")
def estimator_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[MLPClassifier, bytes]:
    """An estimator fitted on string labels and its saved model.npz."""
    X = np.random.default_rng(0).normal(size=(30, 3))
    model = MLPClassifier(4, dropout=0.1, max_iter=2, random_state=0).fit(
        X, np.array(["a", "b", "c"])[np.arange(30) % 3]
    )
    folder = tmp_path_factory.mktemp("estimator")
    model.save(folder)
    return model, (folder / "model.npz").read_bytes()


@FUZZ
@given(data=st.data())
def test_crafted_estimator_metadata_is_refused_or_predicts_as_saved(
    tmp_path: Path, estimator_file: tuple[MLPClassifier, bytes], data: st.DataObject
) -> None:
    """``MLPClassifier.load`` of a file with any value anywhere in its estimator metadata
    (parameters, classes, feature names, seed, epoch records) gives ModelFileError, or an
    estimator that predicts as the saved one did."""
    model, saved = estimator_file
    (tmp_path / "model.npz").write_bytes(saved)
    arrays, meta = read_archive(tmp_path / "model.npz", FORMAT, VERSION)
    *parents, key = data.draw(st.sampled_from(json_paths(meta["meta"])[1:]))
    parent = meta["meta"]
    for k in parents:
        parent = parent[k]
    parent[key] = data.draw(JSON | st.sampled_from([[], [99], ["a", "b"], -1, 0.5, True]))
    write_archive(tmp_path / "model.npz", arrays, meta)
    try:
        loaded = MLPClassifier.load(tmp_path)
    except ModelFileError as e:
        one_line(e)
        return
    X = np.random.default_rng(1).normal(size=(5, 3))
    assert len(loaded.classes_) == 3
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
