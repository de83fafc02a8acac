"""Model files: exact round trip, no pickles, checksums, atomic writes."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.data.datasets import Standardizer
from ml_math_nn.network import build_mlp
from ml_math_nn.runs.persistence import (
    FORMAT,
    VERSION,
    Model,
    ModelFileError,
    atomic_write,
    load_model,
    model_meta,
    save_model,
    write_archive,
    write_text,
)


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


def rewrite(path: Path, **changes: np.ndarray) -> None:
    """Re-save the npz with some arrays changed, keeping its metadata (and so its checksum)."""
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    np.savez(path, **{**arrays, **changes})


def test_pickled_object_is_refused(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    rewrite(tmp_path / "model.npz", **{"0.W": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(ModelFileError, match="pickled objects, which are never loaded"):
        load_model(tmp_path)


def test_tampered_array_fails_checksum(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    with np.load(tmp_path / "model.npz") as npz:
        W = npz["0.W"].copy()
    W[0, 0] += 1
    rewrite(tmp_path / "model.npz", **{"0.W": W})
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tmp_path)


def test_arrays_are_checked_against_the_config(model: Model, tmp_path: Path) -> None:
    """A file whose checksum is consistent but whose arrays do not fit the architecture."""
    arrays = model.arrays()
    bad = {**arrays, "0.W": np.zeros((2, 2), np.float32)}
    write_archive(tmp_path / "model.npz", bad, model_meta(model, bad))
    with pytest.raises(ModelFileError, match="'0.W' has shape"):
        load_model(tmp_path)
    missing = {k: v for k, v in arrays.items() if k != "0.b"}
    write_archive(tmp_path / "model.npz", missing, model_meta(model, missing))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(tmp_path)
    W = arrays["0.W"]
    other = np.float32 if W.dtype == np.float64 else np.float64
    retyped = {**arrays, "0.W": W.astype(other)}  # the right shape in the wrong dtype
    write_archive(tmp_path / "model.npz", retyped, model_meta(model, retyped))
    with pytest.raises(ModelFileError, match=f"'0.W' has shape {re.escape(str(W.shape))} and dtype {np.dtype(other)}"):
        load_model(tmp_path)
    extra = {**arrays, "hidden.payload": np.zeros(3)}
    write_archive(tmp_path / "model.npz", extra, model_meta(model, extra))
    with pytest.raises(ModelFileError, match="do not match the expected"):
        load_model(tmp_path)


def test_other_format_version_is_refused(model: Model, tmp_path: Path) -> None:
    arrays = model.arrays()
    write_archive(tmp_path / "model.npz", arrays, {**model_meta(model, arrays), "version": VERSION + 1})
    with pytest.raises(ModelFileError, match=f"unsupported {FORMAT} format version {VERSION + 1}"):
        load_model(tmp_path)


def test_bad_files(model: Model, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path)
    (tmp_path / "model.npz").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="unreadable"):
        load_model(tmp_path)
    np.savez(tmp_path / "model.npz", x=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an ml-math-nn-model file"):
        load_model(tmp_path)
    save_model(tmp_path, model)
    full = (tmp_path / "model.npz").read_bytes()
    (tmp_path / "model.npz").write_bytes(full[: len(full) // 2])
    with pytest.raises(ModelFileError, match="unreadable"):
        load_model(tmp_path)


def test_model_json_is_a_readable_copy(model: Model, tmp_path: Path) -> None:
    save_model(tmp_path, model)
    config = json.loads((tmp_path / "model.json").read_text())
    assert config["class_names"] == ["a", "b", "c"] and config["format"] == FORMAT
    assert config["network"]["layers"][0]["type"] == "Dense"


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


def test_atomic_write_names_the_file_when_the_disk_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("ml_math_nn.runs.persistence.os.fsync", full)
    with pytest.raises(OSError, match=f"^{re.escape(str(target))}: cannot write \\(No space left on device\\)$"):
        write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.txt", lambda f: f.write(b"x"))
    finally:
        os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
