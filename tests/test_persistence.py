"""Model files: exact round trip, no pickles, checksums, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.data import Standardizer
from ml_math_nn.network import build_mlp
from ml_math_nn.persistence import Model, ModelFileError, atomic_write, load_model, save_model


@pytest.fixture
def model(rng: np.random.Generator) -> Model:
    net = build_mlp(5, (4, 3), 3, rng)
    scaler = Standardizer.fit(rng.normal(size=(20, 5)))
    return Model(net, ["a", "b", "c"], scaler, {"dataset": "test"})


def test_round_trip_gives_identical_predictions(model: Model, tmp_path: Path, rng: np.random.Generator) -> None:
    save_model(tmp_path, model)
    loaded = load_model(tmp_path)
    X = rng.normal(size=(11, 5))
    assert np.array_equal(
        loaded.network.predict_proba(loaded.transform(X)), model.network.predict_proba(model.transform(X))
    )
    assert loaded.class_names == ["a", "b", "c"] and loaded.meta == {"dataset": "test"}
    assert loaded.network.config() == model.network.config()


def test_pickled_object_is_refused(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    arrays = dict(np.load(tmp_path / "model.npz"))
    arrays["0.W"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(ModelFileError, match="model.npz"):
        load_model(tmp_path)


def test_tampered_array_fails_checksum(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    arrays = dict(np.load(tmp_path / "model.npz"))
    arrays["0.W"][0, 0] += 1
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tmp_path)


def test_wrong_shape_and_missing_array_are_named(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    arrays = dict(np.load(tmp_path / "model.npz"))
    np.savez(tmp_path / "model.npz", **{**arrays, "0.W": np.zeros((2, 2), np.float32)})
    with pytest.raises(ModelFileError, match="'0.W' has shape"):
        load_model(tmp_path)
    del arrays["0.b"]
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(tmp_path)


def test_bad_config_files(model: Model, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path)
    save_model(tmp_path, model)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelFileError, match="not an ml-math-nn model"):
        load_model(tmp_path)
    save_model(tmp_path, model)
    (tmp_path / "model.npz").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="unreadable weights file"):
        load_model(tmp_path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def fail(f) -> None:  # type: ignore[no-untyped-def]
        f.write(b"half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
