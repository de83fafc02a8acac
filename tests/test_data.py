"""Datasets: load_dataset on files written here (and on the installed Fashion-MNIST),
label encoding, splits and subsets, and scaling that never copies images to float64."""

from __future__ import annotations

import gzip
import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from conftest import fashion_mnist_missing
from ml_math_nn.data.datasets import (
    FASHION_MNIST_CLASSES,
    IDX_FILES,
    IDX_SOURCES,
    DataError,
    Dataset,
    Standardizer,
    load_dataset,
    stratified_subset,
)
from ml_math_nn.runs.options import load_config
from ml_math_nn.runs.training import run_training

CONFIGS = Path(__file__).parents[1] / "configs"


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def write_idx_set(
    folder: Path, rng: np.random.Generator, n_train: int = 30, n_test: int = 20, shape: tuple[int, int] = (4, 3)
) -> list[np.ndarray]:
    """The four MNIST files (train gzipped, test raw) of random images and labels 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [
        rng.integers(0, 256, size=(n_train, *shape)),
        np.arange(n_train) % 10,
        rng.integers(0, 256, size=(n_test, *shape)),
        rng.permutation(n_test) % 10,
    ]
    for i, (stem, a) in enumerate(zip(IDX_FILES, arrays, strict=True)):
        raw = idx_bytes(a)
        (folder / (f"{stem}.gz" if i < 2 else stem)).write_bytes(gzip.compress(raw) if i < 2 else raw)
    return arrays


# -- IDX datasets -------------------------------------------------------------------------
def test_mnist_round_trip_from_data_dir(tmp_path: Path, rng: np.random.Generator) -> None:
    images, labels, test_images, test_labels = write_idx_set(tmp_path, rng)
    d = load_dataset("mnist", data_dir=tmp_path, test_size=0.5)  # official test set: test_size ignored
    assert d.X_train.dtype == np.uint8 and d.X_train.shape == (30, 12)
    assert np.array_equal(d.X_train, images.reshape(30, 12)) and np.array_equal(d.X_test, test_images.reshape(20, 12))
    assert d.y_train.dtype == np.intp and np.array_equal(d.y_train, labels) and np.array_equal(d.y_test, test_labels)
    assert d.image_shape == (4, 3) and d.class_names == [str(i) for i in range(10)] and d.name == "mnist"


def test_fashion_mnist_found_in_named_subfolder_with_real_class_names(tmp_path: Path, rng: np.random.Generator) -> None:
    write_idx_set(tmp_path / "fashion-mnist", rng)
    d = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot" and d.n_classes == 10
    assert all(Path(f).parent == tmp_path / "fashion-mnist" for f in d.extra["files"])


def test_missing_idx_files_say_which_where_and_how(tmp_path: Path, rng: np.random.Generator) -> None:
    write_idx_set(tmp_path, rng)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path / 'fashion-mnist'} (no such folder)" in message
    assert f"{tmp_path} (lacks t10k-labels-idx1-ubyte[.gz])" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "/usr/share" not in message  # an explicit data_dir is the only place looked in


def test_missing_idx_folders_still_name_the_four_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    message = str(err.value)
    assert f"needs {', '.join(IDX_FILES)}, each raw or .gz" in message
    assert f"{tmp_path / 'nowhere'} (no such folder)" in message and "into data/mnist/ or --data-dir" in message


def test_default_lookup_includes_the_debian_folder() -> None:
    assert IDX_SOURCES["fashion-mnist"].system_dirs == (Path("/usr/share/datasets/fashion-mnist"),)


@pytest.mark.parametrize(
    ("index", "array", "message"),
    [
        (1, np.arange(29) % 10, r"train-labels-idx1-ubyte.gz: 29 labels for the 30 images of train-images"),
        (3, np.full(20, 10), r"t10k-labels-idx1-ubyte: label 10 out of range 0..9"),
        (0, np.zeros((30, 12)), r"train-images-idx3-ubyte.gz: expected uint8 images \(count, rows, cols\)"),
        (1, np.zeros((30, 1)), r"train-labels-idx1-ubyte.gz: expected uint8 labels \(count,\)"),
        (2, np.zeros((20, 3, 4)), r"t10k-images-idx3-ubyte: \(3, 4\) images but the training images are \(4, 3\)"),
    ],
    ids=["count-mismatch", "label-range", "images-2d", "labels-2d", "test-shape"],
)
def test_inconsistent_idx_files(
    tmp_path: Path, rng: np.random.Generator, index: int, array: np.ndarray, message: str
) -> None:
    write_idx_set(tmp_path, rng)
    path = tmp_path / (f"{IDX_FILES[index]}.gz" if index < 2 else IDX_FILES[index])
    path.write_bytes(gzip.compress(idx_bytes(array)) if index < 2 else idx_bytes(array))
    with pytest.raises(DataError, match=message):
        load_dataset("mnist", data_dir=tmp_path)


def test_truncated_idx_file_in_a_dataset(tmp_path: Path, rng: np.random.Generator) -> None:
    write_idx_set(tmp_path, rng)
    path = tmp_path / IDX_FILES[2]
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=f"^{path}: truncated"):
        load_dataset("mnist", data_dir=tmp_path)


# -- CSV and NPZ tables -----------------------------------------------------------------
def test_csv_labels_of_any_type_become_sorted_indices(tmp_path: Path) -> None:
    rows = [f"{i},{i % 3 * 10 - 5}" for i in range(30)]  # labels -5, 5, 15: numeric order, not text order
    (tmp_path / "t.csv").write_text("x,label\n" + "\n".join(rows))
    d = load_dataset(f"csv:{tmp_path / 't.csv'}", test_size=0.2, seed=1)
    assert d.class_names == ["-5", "5", "15"] and d.name == "t" and d.image_shape is None
    assert d.X_train.dtype == np.float32 and len(d.X_train) == 24 and len(d.X_test) == 6
    X = np.concatenate([d.X_train, d.X_test])[:, 0]
    y = np.concatenate([d.y_train, d.y_test])
    assert np.array_equal(y, X.astype(int) % 3)  # every row kept its own label
    assert np.bincount(d.y_test).tolist() == [2, 2, 2]  # stratified


def test_csv_with_separate_test_file_and_text_labels(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("1,2,cat\n3,4,dog\n5,6,ant\n")
    (tmp_path / "test.csv").write_text("7,8,dog\n9,0,ant\n")
    d = load_dataset("csv:train.csv", data_dir=tmp_path, test_file="test.csv")  # found under data_dir
    assert d.class_names == ["ant", "cat", "dog"]
    assert d.y_train.tolist() == [1, 2, 0] and d.y_test.tolist() == [2, 0]
    assert np.array_equal(d.X_test, [[7, 8], [9, 0]])


@pytest.mark.parametrize(
    ("test_text", "message"),
    [
        ("7,8,bee\n", "test.csv: label bee does not occur in the training data"),
        ("7,8,9,cat\n", "test.csv: 3 features per sample, the training file has 2"),
        ("7,8,1\n", "test.csv: labels are numbers, unlike those of the training data"),
    ],
)
def test_test_file_must_match_training_file(tmp_path: Path, test_text: str, message: str) -> None:
    (tmp_path / "train.csv").write_text("1,2,cat\n3,4,dog\n")
    (tmp_path / "test.csv").write_text(test_text)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{tmp_path / 'train.csv'}", test_file=tmp_path / "test.csv")


def test_npz_images_keep_uint8_and_shape(tmp_path: Path, rng: np.random.Generator) -> None:
    X = rng.integers(0, 256, size=(40, 5, 2), dtype=np.uint8)
    y = np.repeat([0.5, 2.0], 20)
    np.savez(tmp_path / "im.npz", X=X, y=y)
    # Labels that are not whole numbers would be told to be a regression target: say classes.
    d = load_dataset(f"npz:{tmp_path / 'im.npz'}", test_size=0.25, task="classification")
    assert d.X_train.dtype == np.uint8 and d.image_shape == (5, 2) and d.n_features == 10
    assert d.class_names == ["0.5", "2"] and len(d.X_test) == 10


def test_npz_other_dtypes_become_float32(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", X=np.arange(8, dtype=np.int64).reshape(4, 2), y=np.array([1, 0, 1, 0]))
    d = load_dataset(f"npz:{tmp_path / 'f.npz'}", test_size=0.5)
    assert d.X_train.dtype == np.float32


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        (
            "imagenet",
            {},
            "unknown dataset 'imagenet'; choose digits, diabetes, friedman1, fashion-mnist, mnist, "
            "csv:PATH or npz:PATH",
        ),
        ("csv:", {}, "unknown dataset 'csv:'"),
        ("digits", {"test_file": "t.csv"}, "digits: test file, label column and header options apply to csv:/npz:"),
        ("csv:nowhere.csv", {}, r"nowhere.csv: file not found \(looked for nowhere.csv and data/nowhere.csv\)"),
    ],
)
def test_bad_specs(spec: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(spec, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,a\n2,a\n3,a\n", r"t.csv: a single class \(a\); classification needs at least 2"),
        ("1,a\n2,b\n3,b\n4,b\n", r"t.csv: cannot split off a stratified test set of 0.25: .*least populated class"),
    ],
)
def test_tables_that_cannot_make_a_classification_task(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{tmp_path / 't.csv'}", test_size=0.25)


def test_npz_label_column_option_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", X=np.zeros((4, 2)), y=np.array([1, 0, 1, 0]))
    with pytest.raises(DataError, match="f.npz: label column and header options apply to CSV files only"):
        load_dataset(f"npz:{tmp_path / 'f.npz'}", label_column=0)


# -- subsets and digits ---------------------------------------------------------------------
def test_stratified_subset_is_proportional_seeded_and_sorted() -> None:
    y = np.repeat(np.arange(3), [60, 30, 10])
    keep = stratified_subset(y, 20, seed=3)
    assert np.bincount(y[keep]).tolist() == [12, 6, 2]
    assert np.array_equal(keep, np.unique(keep)) and np.array_equal(keep, stratified_subset(y, 20, seed=3))
    assert not np.array_equal(keep, stratified_subset(y, 20, seed=4))
    with pytest.raises(ValueError, match="subset must be >= 1, got 0"):
        stratified_subset(y, 0, seed=0)


def test_subset_applies_to_training_set_only() -> None:
    full = load_dataset("digits", seed=2)
    d = load_dataset("digits", seed=2, subset=100)
    assert len(d.X_train) == 100 and len(d.X_test) == len(full.X_test)
    assert set(map(tuple, d.X_train)) <= set(map(tuple, full.X_train))
    assert len(load_dataset("digits", subset=10**6).X_train) == len(full.X_train)


# -- scaling --------------------------------------------------------------------------------
@pytest.mark.parametrize("per_feature", [True, False])
def test_standardizer_chunked_fit_matches_float64_statistics(rng: np.random.Generator, per_feature: bool) -> None:
    x = rng.integers(0, 256, size=(103, 6)).astype(np.uint8)
    x[:, 2] = 7  # a constant column: sigma 1, not 0
    s = Standardizer.fit(x, np.float64, per_feature, rows=10)
    axis = 0 if per_feature else None
    mean, std = x.astype(np.float64).mean(axis=axis), x.astype(np.float64).std(axis=axis)
    expected_scale = np.where(std == 0, 1.0, std) if per_feature else np.full(6, std)
    np.testing.assert_allclose(s.mean, np.broadcast_to(mean, (6,)), rtol=1e-13)
    np.testing.assert_allclose(s.scale, expected_scale, rtol=1e-13)
    np.testing.assert_allclose(s.transform(x), (x - s.mean) / s.scale, rtol=1e-13)


def test_standardizer_never_copies_uint8_images_to_float64(rng: np.random.Generator) -> None:
    x = rng.integers(0, 256, size=(20_000, 784), dtype=np.uint8)  # 15.7 MB; a float64 copy is 125 MB
    tracemalloc.start()
    try:
        s = Standardizer.fit(x, np.float32, per_feature=False)
        _, fit_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        out = s.transform(x)
        _, transform_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.dtype == np.float32
    assert fit_peak < 2 * x.nbytes  # one float64 chunk of 4096 rows, not the array
    assert transform_peak < 4 * x.nbytes * 1.05  # the float32 result, no temporary


def test_standardizer_rejects_empty_and_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"cannot fit scaling on an array of shape \(0, 3\)"):
        Standardizer.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"expected 3 features per row, got shape \(2, 4\)"):
        Standardizer.fit(np.ones((2, 3))).transform(np.ones((2, 4)))


# -- the installed Fashion-MNIST -------------------------------------------------------------
@pytest.fixture(scope="module")
def fashion_subset() -> Dataset:
    try:
        return load_dataset("fashion-mnist", subset=3000)
    except DataError as e:
        fashion_mnist_missing(e)


def test_fashion_mnist_is_the_real_one(fashion_subset: Dataset) -> None:
    d = fashion_subset
    assert d.X_train.shape == (3000, 784) and d.X_train.dtype == np.uint8 and d.image_shape == (28, 28)
    assert d.X_test.shape == (10_000, 784) and np.bincount(d.y_test).tolist() == [1000] * 10
    assert np.bincount(d.y_train).tolist() == [300] * 10 and d.class_names == FASHION_MNIST_CLASSES


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    if path.name.startswith("sweep-"):  # a sweep file (ml-math-nn sweep), not a training config
        from ml_math_nn.runs.sweep import load_sweep

        assert all(t.config.dataset == "digits" for t in load_sweep(path).trial_list())
        return
    assert load_config(path).dataset in ("digits", "fashion-mnist", "mnist")


def test_fashion_mnist_smoke_training_with_the_shipped_config(fashion_subset: Dataset, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "fashion-mnist.toml").merged({"subset": 3000, "epochs": 2})
    result = run_training(config, tmp_path, report=lambda _: None, dataset=fashion_subset)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dataset"]["n_train"] == 3000 and summary["dataset"]["n_test"] == 10_000
    assert result.history[-1]["test_acc"] > 0.75  # chance is 0.1; this reaches about 0.8


# -- memory of a whole run ------------------------------------------------------------------
def test_a_run_holds_its_images_once_without_float64_copies_or_per_epoch_growth(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    # 20,000 MNIST-sized uint8 images (15.7 MB): scaled to float32 (62.7 MB) plus the trainer's
    # one shuffled buffer (62.7 MB) is all a run may hold; a float64 copy alone is 125 MB.
    images, *_ = write_idx_set(tmp_path / "mnist", rng, n_train=20_000, n_test=100, shape=(28, 28))
    float32_bytes = images.size * 4
    config = load_config(CONFIGS / "fashion-mnist.toml").merged(
        {"dataset": "mnist", "data_dir": str(tmp_path), "hidden": [8], "dropout": 0.0, "epochs": 3, "batch_size": 500}
    )
    after_epoch: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        run_training(
            config, tmp_path / "run", lambda _: None, [lambda *_: after_epoch.append(tracemalloc.get_traced_memory())]
        )
    finally:
        tracemalloc.stop()
    peak_while_training = after_epoch[-1][1]  # includes loading: raw and scaled images side by side
    assert peak_while_training < 2 * float32_bytes + images.size + 10_000_000, peak_while_training
    held = [current for current, _ in after_epoch]
    assert max(held) < 2 * float32_bytes + images.size // 4, f"the raw uint8 images are still held: {held}"
    assert max(held) - min(held) < 1_000_000, f"memory grows from epoch to epoch: {held}"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert isinstance(summary["peak_memory_mb"], float) and summary["peak_memory_mb"] > 2 * float32_bytes / 2**20
