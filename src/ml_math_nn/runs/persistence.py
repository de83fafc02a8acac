"""Saving and loading models, and atomic file writes.

A model is saved in a directory as

* ``model.npz``: the arrays by name (``"0.W"``, ``"0.b"``, ``"scaler.mean"``, ...) plus the
  model's configuration as UTF-8 JSON bytes under the reserved name ``__meta__``: format
  name and version, the architecture (``Network.config``), the class names, whether
  inputs are scaled, and a SHA-256 checksum of the arrays;
* ``model.json``: the same configuration as a readable JSON file (for people and tools;
  loading uses the copy inside the npz).

Keeping the configuration inside the npz makes saving a single atomic rename: a process
killed at any moment leaves either the old model or the new one, never a mix.

Loading never unpickles (``allow_pickle=False``), checks every array's name, shape and
dtype against the configuration, and the checksum against the arrays.

Every file is written to a temporary file in the destination folder, flushed to disk and
then renamed over the destination, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .._types import Array
from ..data.datasets import Standardizer
from ..data.readers import NPZ_ERRORS, is_numpy_file
from ..network import Network

FORMAT = "ml-math-nn-model"
VERSION = 1
WEIGHTS, CONFIG = "model.npz", "model.json"
META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, malformed, tampered with or inconsistent."""


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync, then rename onto ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, cannot write a file there")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # a missing or read-only folder; the message names the file, not the temporary one
        raise type(e)(f"{path}: cannot write ({e.strerror})") from None
    try:
        # mkstemp makes the file private (0600); give it the mode an ordinary new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # e.g. a full disk: name the file, not the temporary one
            raise type(e)(f"{path}: cannot write ({e.strerror or e})") from e
        raise


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def checksum(arrays: Mapping[str, Array]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Model:
    """A trained network with what it needs to predict on raw features."""

    network: Network
    class_names: list[str]
    scaler: Standardizer | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    target_scaler: Standardizer | None = None
    """Regression: the targets' mean and standard deviation per output, by which the network's
    outputs are standardised (:meth:`values` maps them back); saved as ``target.mean``/``target.scale``."""

    def arrays(self) -> dict[str, Array]:
        out = dict(self.network.state())
        if self.scaler is not None:
            out["scaler.mean"], out["scaler.scale"] = self.scaler.mean, self.scaler.scale
        if self.target_scaler is not None:
            out["target.mean"], out["target.scale"] = self.target_scaler.mean, self.target_scaler.scale
        return out

    def values(self, X: Array) -> NDArray[np.float64]:
        r"""The network's decisions on scaled features ``X`` as float64 (m, K): for a regression
        model the predicted values in the targets' units, :math:`z \sigma + \mu`."""
        out: NDArray[np.float64] = np.asarray(self.network.predict(X), dtype=np.float64).reshape(len(X), -1)
        if self.target_scaler is not None:
            out = out * self.target_scaler.scale.astype(np.float64) + self.target_scaler.mean.astype(np.float64)
        return out

    def transform(self, X: Array, source: str = "input") -> Array:
        """Features as the network expects them (scaled, in the network's dtype); errors name ``source``."""
        X = np.asarray(X, dtype=self.network.dtype)
        if X.ndim != 2 or X.shape[1] != self.network.n_in:
            n_in = self.network.n_in
            raise ValueError(f"{source}: the model expects {n_in} features per row, got data of shape {X.shape}")
        return self.scaler.transform(X) if self.scaler is not None else X


def write_archive(path: str | Path, arrays: Mapping[str, Array], meta: Mapping[str, Any]) -> None:
    """Atomically write ``arrays`` plus ``meta`` (JSON, stored as bytes under ``__meta__``)."""
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is a reserved array name")
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{**arrays, META_KEY: blob})  # type: ignore[arg-type]
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def read_archive(path: str | Path, fmt: str, version: int) -> tuple[dict[str, Array], dict[str, Any]]:
    """Read a file from :func:`write_archive`: no pickles, its format checked, its checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if not is_numpy_file(path):
        raise ModelFileError(f"{path}: unreadable (not an NPZ archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except NPZ_ERRORS as e:
        reason = "it holds pickled objects, which are never loaded" if "allow_pickle" in str(e) else str(e)
        raise ModelFileError(f"{path}: unreadable ({reason})") from None
    blob = arrays.pop(META_KEY, None)
    try:
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError("no metadata")
        meta = json.loads(blob.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: not an {fmt} file (missing or malformed metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ModelFileError(f"{path}: not an {fmt} file")
    if meta.get("version") != version:
        raise ModelFileError(f"{path}: unsupported {fmt} format version {meta.get('version')!r}")
    if checksum(arrays) != meta.get("checksum"):
        raise ModelFileError(f"{path}: checksum mismatch (file corrupted or tampered with)")
    return arrays, meta


def check_arrays(path: str | Path, loaded: Mapping[str, Array], expected: Mapping[str, Array]) -> None:
    """Every expected array is present with its shape and dtype, and nothing else."""
    if set(loaded) != set(expected):
        raise ModelFileError(f"{path}: arrays {sorted(loaded)} do not match the expected {sorted(expected)}")
    for name, target in expected.items():
        a = loaded[name]
        if a.shape != target.shape or a.dtype != target.dtype:
            raise ModelFileError(
                f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                f"expected {target.shape} and {target.dtype}"
            )


def model_meta(model: Model, arrays: Mapping[str, Array]) -> dict[str, Any]:
    """The configuration stored with ``arrays``: format, architecture, classes, checksum."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "network": model.network.config(),
        "class_names": model.class_names,
        "scaler": model.scaler is not None,
        **({"target_scaler": True} if model.target_scaler is not None else {}),
        "checksum": checksum(arrays),
        "meta": model.meta,
    }


def save_model(directory: str | Path, model: Model) -> None:
    """Write ``model.npz`` (the commit point) and then ``model.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = model.arrays()
    meta = model_meta(model, arrays)
    write_archive(directory / WEIGHTS, arrays, meta)
    write_text(directory / CONFIG, json.dumps(meta, indent=2) + "\n")


def load_model(directory: str | Path) -> Model:
    """Load a model saved by :func:`save_model`, verifying everything it reads.  A run
    directory with a checkpoint but no model is an interrupted run: the error says how to
    resume it."""
    path = Path(directory) / WEIGHTS
    if not path.exists() and (Path(directory) / "checkpoint.npz").is_file():
        raise ModelFileError(
            f"{path}: no such file: the run in {directory} was interrupted before it finished "
            f"(it has a checkpoint); resume it with: ml-math-nn train --resume {directory}"
        )
    loaded, config = read_archive(path, FORMAT, VERSION)
    try:
        network = Network.from_config(config["network"])
        class_names = [str(c) for c in config["class_names"]]
        has_scaler = bool(config["scaler"])
        has_target_scaler = bool(config.get("target_scaler", False))
        meta = dict(config.get("meta", {}))
        network.shapes()  # ValueError when no layer fixes the input's shape or a layer cannot take its input
    except (AttributeError, KeyError, TypeError, ValueError, MemoryError) as e:  # the metadata is not checksummed
        raise ModelFileError(f"{path}: invalid model configuration ({e})") from None
    if not any(layer.weight_names for layer in network.layers):
        raise ModelFileError(f"{path}: invalid model configuration (no layer with weights)")
    if len(class_names) != network.n_out:
        raise ModelFileError(f"{path}: {len(class_names)} class names for {network.n_out} outputs")
    state = network.state()
    expected = dict(state)
    if has_scaler:
        empty = np.zeros(network.n_in, dtype=network.dtype)
        expected |= {"scaler.mean": empty, "scaler.scale": empty}
    if has_target_scaler:
        outputs = np.zeros(network.n_out, dtype=network.dtype)
        expected |= {"target.mean": outputs, "target.scale": outputs}
    check_arrays(path, loaded, expected)
    for name, value in state.items():
        value[...] = loaded[name]
    scaler = Standardizer(loaded["scaler.mean"], loaded["scaler.scale"]) if has_scaler else None
    target = Standardizer(loaded["target.mean"], loaded["target.scale"]) if has_target_scaler else None
    return Model(network, class_names, scaler, meta, target)
