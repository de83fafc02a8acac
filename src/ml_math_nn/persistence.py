"""Saving and loading models, and atomic file writes.

A model is two files in a directory:

* ``model.json``: format name and version, the architecture (``Network.config``), the
  class names, the input scaling, and a SHA-256 checksum of the arrays;
* ``model.npz``: the arrays, by name (``"0.W"``, ``"0.b"``, ``"scaler.mean"``, ...).

Loading never unpickles (``allow_pickle=False``) and checks every array's name, shape
and dtype against the architecture, and the checksum against the file.

Every file is written to a temporary file in the destination folder, flushed to disk and
then renamed over the destination, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._types import Array
from .data import Standardizer
from .network import Network

FORMAT = "ml-math-nn-model"
VERSION = 1
WEIGHTS, CONFIG = "model.npz", "model.json"


class ModelFileError(ValueError):
    """A model file is missing, malformed, tampered with or inconsistent with its config."""


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync, then rename onto ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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

    def arrays(self) -> dict[str, Array]:
        out = dict(self.network.state())
        if self.scaler is not None:
            out["scaler.mean"], out["scaler.scale"] = self.scaler.mean, self.scaler.scale
        return out

    def transform(self, X: Array) -> Array:
        """Features as the network expects them (scaled, in the network's dtype)."""
        X = np.asarray(X, dtype=self.network.dtype)
        if X.ndim != 2 or X.shape[1] != self.network.n_in:
            raise ValueError(f"the model expects {self.network.n_in} features per row, got data of shape {X.shape}")
        return self.scaler.transform(X) if self.scaler is not None else X


def save_model(directory: str | Path, model: Model) -> None:
    """Write ``model.npz`` and ``model.json`` into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = model.arrays()
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    config = {
        "format": FORMAT,
        "version": VERSION,
        "network": model.network.config(),
        "class_names": model.class_names,
        "scaler": model.scaler is not None,
        "checksum": checksum(arrays),
        "meta": model.meta,
    }
    # The weights go first: a crash between the two renames leaves the new weights with
    # the old config, which the checksum then rejects instead of loading a mix.
    atomic_write(directory / WEIGHTS, lambda f: f.write(buf.getvalue()))
    write_text(directory / CONFIG, json.dumps(config, indent=2) + "\n")


def load_model(directory: str | Path) -> Model:
    """Load a model saved by :func:`save_model`, verifying everything it reads."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG, directory / WEIGHTS
    for p in (config_path, weights_path):
        if not p.is_file():
            raise ModelFileError(f"{p}: no such model file (expected {CONFIG} and {WEIGHTS})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{config_path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{config_path}: not an ml-math-nn model config")
    if config.get("version") != VERSION:
        raise ModelFileError(f"{config_path}: unsupported format version {config.get('version')!r}")
    try:
        network = Network.from_config(config["network"])
        class_names = [str(c) for c in config["class_names"]]
        has_scaler = bool(config["scaler"])
        expected_sum = str(config["checksum"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{config_path}: invalid model config ({e})") from None
    expected = network.state()
    if has_scaler:
        empty = np.zeros(network.n_in, dtype=network.dtype)
        expected |= {"scaler.mean": empty, "scaler.scale": empty}
    try:
        with np.load(weights_path, allow_pickle=False) as npz:
            loaded = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{weights_path}: unreadable weights file ({e})") from None
    if set(loaded) != set(expected):
        raise ModelFileError(f"{weights_path}: arrays {sorted(loaded)} do not match the config's {sorted(expected)}")
    for name, target in expected.items():
        a = loaded[name]
        if a.shape != target.shape or a.dtype != target.dtype:
            raise ModelFileError(
                f"{weights_path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                f"expected {target.shape} and {target.dtype}"
            )
    if checksum(loaded) != expected_sum:
        raise ModelFileError(f"{weights_path}: checksum mismatch (file corrupted or tampered with)")
    state = network.state()
    for name, value in state.items():
        value[...] = loaded[name]
    scaler = Standardizer(loaded["scaler.mean"], loaded["scaler.scale"]) if has_scaler else None
    if len(class_names) != network.n_out:
        raise ModelFileError(f"{config_path}: {len(class_names)} class names for {network.n_out} outputs")
    return Model(network, class_names, scaler, dict(config.get("meta", {})))
