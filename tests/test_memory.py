"""Memory that does not grow with the data: index shuffles, uint8 rows scaled per batch,
memory-mapped ``npy:`` datasets, and the epoch time the run records (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.data import rows as data_rows
from ml_math_nn.data.datasets import Standardizer
from ml_math_nn.data.readers import DataError
from ml_math_nn.data.rows import ScaledRows, npy_dataset, release_pages
from ml_math_nn.network import build_mlp
from ml_math_nn.optim import SGD, Adam
from ml_math_nn.runs.options import TrainConfig
from ml_math_nn.runs.training import run_training
from ml_math_nn.train import Trainer, evaluate


def images(rng: np.random.Generator, n: int = 300, side: int = 6) -> tuple[np.ndarray, np.ndarray]:
    X = rng.integers(0, 256, (n, side * side), dtype=np.uint8)
    y = (X[:, : side * side // 2].mean(axis=1) > X[:, side * side // 2 :].mean(axis=1)).astype(np.intp)
    return X, y


def test_scaled_rows_give_the_bits_of_scaling_the_whole_set(rng: np.random.Generator) -> None:
    X, _ = images(rng)
    scaler = Standardizer.fit(X, np.float32, per_feature=False)
    whole = scaler.transform(X)
    lazy = ScaledRows(X, scaler)
    picks = rng.permutation(len(X))[:50]
    assert lazy.shape == X.shape and len(lazy) == len(X) and lazy.dtype == np.float32
    assert np.array_equal(lazy[picks], whole[picks]) and lazy[picks].dtype == np.float32
    assert np.array_equal(lazy[10:20], whole[10:20]) and np.array_equal(np.asarray(lazy), whole)
    with pytest.raises(TypeError, match="by a slice or an array of indices"):
        lazy[3]  # type: ignore[index]


def test_training_on_uint8_rows_equals_training_on_their_float_copy(rng: np.random.Generator) -> None:
    X, y = images(rng)
    scaler = Standardizer.fit(X, np.float32, per_feature=False)
    weights = []
    for data in (scaler.transform(X), ScaledRows(X, scaler)):
        net = build_mlp(X.shape[1], (16,), 2, np.random.default_rng(1), dtype=np.float32)
        Trainer(net, Adam(1e-2), 32, np.random.default_rng(2)).fit(data, y, 3, {"test": (scaler.transform(X), y)})
        weights.append(np.concatenate([p.ravel() for _, p, _ in net.parameters()]))
        assert evaluate(net, data, y) == evaluate(net, scaler.transform(X), y)
    assert np.array_equal(weights[0], weights[1])


def test_an_epoch_gathers_batches_by_index_and_copies_no_epoch(rng: np.random.Generator) -> None:
    """Batches are the rows of one permutation of the indices, read from the caller's array."""
    X = np.arange(23, dtype=np.float32)[:, None]
    y = np.arange(23) % 2
    net = build_mlp(1, (), 2, rng, dtype=np.float32)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    original = net.forward_backward

    def record(xb: np.ndarray, yb: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        seen.append((xb[:, 0].astype(np.intp), yb.copy()))
        return original(xb, yb, sample_weight)

    net.forward_backward = record  # type: ignore[method-assign]
    trainer = Trainer(net, SGD(1e-3), batch_size=5, rng=np.random.default_rng(0))
    trainer.train_epoch(X, y)
    order = np.random.default_rng(0).permutation(23)  # the trainer's first draw
    assert np.array_equal(np.concatenate([rows for rows, _ in seen]), order)
    assert all(np.array_equal(labels, rows % 2) for rows, labels in seen)
    # What the trainer keeps between batches: one batch (and one more row) of X and of y, not an epoch.
    assert sorted(b.shape for b in trainer._buffers.values()) == [(6,), (6, 1)]


def test_fit_records_each_epoch_time_without_the_evaluation(rng: np.random.Generator) -> None:
    X, y = images(rng)
    Xf = Standardizer.fit(X, np.float32).transform(X)
    trainer = Trainer(build_mlp(X.shape[1], (8,), 2, rng), SGD(0.1), 64, rng)
    assert trainer.epoch_time() is None
    trainer.fit(Xf, y, 3, {"test": (Xf, y)})
    assert len(trainer.epoch_times) == 3 and all(t > 0 for t in trainer.epoch_times)
    assert trainer.epoch_time() == sorted(trainer.epoch_times)[1]


def test_summary_records_the_median_epoch_time(tmp_path: Path) -> None:
    result = run_training(TrainConfig(epochs=2, hidden=(16,)), tmp_path / "run", report=lambda s: None)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 < summary["epoch_time_s"] <= summary["train_time_s"] / 2
    assert summary["epoch_time_s"] == result.summary["epoch_time_s"]


def write_npy_dataset(folder: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir()
    X, y = images(rng, 240)
    np.save(folder / "X_train.npy", X[:200].reshape(200, 6, 6))
    np.save(folder / "y_train.npy", (y[:200] + 3).astype(np.int16))  # labels 3, 4 -> classes 0, 1
    np.save(folder / "X_test.npy", X[200:].reshape(40, 6, 6))
    np.save(folder / "y_test.npy", y[200:] + 3)
    return X, y


def test_npy_dataset_is_memory_mapped_and_trains(tmp_path: Path, rng: np.random.Generator) -> None:
    X, y = write_npy_dataset(tmp_path / "shapes", rng)
    ds = npy_dataset(tmp_path / "shapes")
    assert isinstance(ds.X_train, np.memmap) and ds.X_train.dtype == np.uint8 and ds.image_shape == (6, 6)
    assert np.array_equal(ds.X_train, X[:200]) and np.array_equal(ds.y_train, y[:200])
    assert ds.class_names == ["3", "4"] and np.array_equal(ds.y_test, y[200:])
    assert release_pages(ds.X_train) and not release_pages(X)
    config = TrainConfig(dataset=f"npy:{tmp_path / 'shapes'}", epochs=2, hidden=(8,), batch_size=16)
    result = run_training(config, tmp_path / "run", report=lambda s: None)
    assert result.summary["dataset"]["n_train"] == 200 and result.summary["dataset"]["name"] == "shapes"


def test_memory_mapped_rows_release_their_pages_as_they_are_read(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_npy_dataset(tmp_path / "shapes", rng)
    ds = npy_dataset(tmp_path / "shapes")
    lazy = ScaledRows(ds.X_train, Standardizer.fit(ds.X_train, per_feature=False))
    released: list[object] = []
    monkeypatch.setattr(data_rows, "release_pages", released.append)
    monkeypatch.setattr(data_rows, "RELEASE_BYTES", 10 * 5 * 36)  # ten slices of five rows of 36 bytes
    for start in range(0, 200, 5):
        lazy[start : start + 5]
    assert len(released) == 200 // 50 and all(r is ds.X_train for r in released)
    lazy[np.array([3, 150, 7])]  # rows at random map far more than their bytes: released at once
    assert len(released) == 200 // 50 + 1


@pytest.mark.parametrize(
    "files,message",
    [
        ({}, "missing X_train.npy, y_train.npy, X_test.npy, y_test.npy"),
        ({"y_test.npy": None}, "missing y_test.npy"),
        ({"y_train.npy": np.zeros(3)}, "y_train.npy: expected integer labels of shape (m,), got float64 (3,)"),
        ({"y_train.npy": np.zeros(5, np.intp)}, "y_train.npy: 5 labels for 4 samples"),
        ({"X_test.npy": np.zeros((2, 3), np.uint8)}, "X_test.npy: samples of shape (3,), the training samples are"),
        ({"X_train.npy": b"not numpy"}, "X_train.npy: not a readable .npy array"),
        ({"y_test.npy": np.array([0, 7])}, "y_test.npy: label 7 does not occur in the training data"),
    ],
)
def test_npy_dataset_errors_name_the_file(tmp_path: Path, files: dict[str, object], message: str) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    arrays: dict[str, object] = {
        "X_train.npy": np.zeros((4, 2, 2), np.uint8),
        "y_train.npy": np.array([0, 1, 0, 1]),
        "X_test.npy": np.zeros((2, 2, 2), np.uint8),
        "y_test.npy": np.array([0, 1]),
    }
    arrays = arrays | files if files else {}
    for name, value in arrays.items():
        if isinstance(value, bytes):
            (folder / name).write_bytes(value)
        elif value is not None:
            np.save(folder / name, value)
    with pytest.raises(DataError, match=f"^.*{message.replace('(', '[(]').replace(')', '[)]')}"):
        npy_dataset(folder)
    with pytest.raises(DataError, match="no such folder"):
        npy_dataset(tmp_path / "absent")
