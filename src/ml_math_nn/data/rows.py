"""Training data read a batch at a time, so that memory does not grow with the data.

Images stay in their stored type (uint8: a quarter of float32) and are scaled when a
batch is read (:class:`ScaledRows`); a ``npy:FOLDER`` dataset (:func:`npy_dataset`) is
memory-mapped, read from the file as batches need it, and the pages read are handed
back to the operating system as training goes (:func:`release_pages`), so a training
set ten times larger does not take ten times the memory.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._types import Array
from .datasets import Dataset, Standardizer
from .readers import DataError

NPY_FILES = ("X_train.npy", "y_train.npy", "X_test.npy", "y_test.npy")
"""The four arrays of a ``npy:FOLDER`` dataset: features (uint8 or float, images (m, h, w) or rows (m, n)) and
integer labels, for the training and the test set."""

RELEASE_BYTES = 32 * 2**20
"""A memory-mapped array's resident pages are released after this many bytes were read in slices.
Rows read at random are released after every read: each one maps in a whole block of the file's
cache around it (a large folio, measured at about 640 KiB a row on Linux 6.18), not its own bytes."""


def release_pages(x: NDArray[Any]) -> bool:
    """Hand the pages of memory-mapped ``x`` that this process has read back to the system.

    They stay in the system's file cache (reading them again costs a page fault, not a
    disk read) but no longer count in this process's resident memory.  Returns whether
    anything was done: ``x`` is a :class:`numpy.memmap` and the platform has ``madvise``.
    numpy keeps a memmap's :class:`mmap.mmap` as ``_mmap`` (views share it).
    """
    mapping = getattr(x, "_mmap", None) if isinstance(x, np.memmap) else None
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    mapping.madvise(mmap.MADV_DONTNEED)
    return True


class ScaledRows:
    """Rows of raw features (e.g. uint8 images, maybe memory-mapped) that are scaled as they are read.

    ``rows[key]`` (a slice or an array of row indices) is
    ``scaler.transform(raw[key])``: the same float values, to the bit, as the rows of
    ``scaler.transform(raw)``, since each value goes through the same formula in the same
    dtype.  Only the raw data is held; :class:`~ml_math_nn.train.Trainer` and
    :func:`~ml_math_nn.train.evaluate` read it a batch or a chunk at a time.
    ``np.asarray(rows)`` scales the whole set (for code that needs one array).
    """

    def __init__(self, raw: NDArray[Any], scaler: Standardizer) -> None:
        if raw.ndim != 2 or raw.shape[1] != len(scaler.mean):
            raise ValueError(f"expected rows of {len(scaler.mean)} features, got shape {raw.shape}")
        self.raw, self.scaler = raw, scaler
        self._read = 0  # bytes of pages read from a memory map since its last release
        self._row_bytes = int(raw.strides[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.raw.shape[0]), int(self.raw.shape[1])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.scaler.mean.dtype

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, key: slice | NDArray[np.integer[Any]]) -> Array:
        rows = self.raw[key]
        if rows.ndim != 2:
            raise TypeError(f"ScaledRows reads rows by a slice or an array of indices, not {key!r}")
        if isinstance(self.raw, np.memmap):
            # a slice maps about its own bytes; rows read at random map much more (see RELEASE_BYTES)
            self._read += len(rows) * self._row_bytes if isinstance(key, slice) else RELEASE_BYTES
            if self._read >= RELEASE_BYTES:
                release_pages(self.raw)
                self._read = 0
        return self.scaler.transform(rows)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Array:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"ScaledRows({self.raw.dtype} {self.raw.shape} -> {self.dtype})"


def npy_dataset(folder: str | Path) -> Dataset:
    """The dataset in ``folder``: the four arrays of :data:`NPY_FILES`, features memory-mapped.

    Features are uint8 or float32 (anything else is read and converted to float32);
    ``(m, h, w)`` features are images, flattened to rows of ``h * w``, and keep their
    shape.  Labels are integers; the class names are the distinct training labels in
    sorted order, mapped to ``0..K-1``.  Nothing is read whole but the labels.
    """
    base = Path(folder).expanduser()
    if not base.is_dir():
        raise DataError(
            f"npy:{folder}: {'not a folder' if base.exists() else 'no such folder'} (expected a folder "
            f"holding {', '.join(NPY_FILES)})"
        )
    missing = [name for name in NPY_FILES if not (base / name).is_file()]
    if missing:
        raise DataError(f"npy:{folder}: missing {', '.join(missing)} (a npy: folder holds {', '.join(NPY_FILES)})")
    X_train, shape = _features(base / NPY_FILES[0])
    X_test, test_shape = _features(base / NPY_FILES[2])
    if X_test.shape[1] != X_train.shape[1] or test_shape != shape:
        raise DataError(
            f"{base / NPY_FILES[2]}: samples of shape {test_shape or X_test.shape[1:]}, the training "
            f"samples are {shape or X_train.shape[1:]}"
        )
    raw_train, raw_test = _labels(base / NPY_FILES[1], len(X_train)), _labels(base / NPY_FILES[3], len(X_test))
    classes, y_train = np.unique(raw_train, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{base / NPY_FILES[1]}: a single class ({classes[0]}); classification needs at least 2")
    y_test = np.searchsorted(classes, raw_test)
    known = classes[np.minimum(y_test, len(classes) - 1)] == raw_test
    if not known.all():
        raise DataError(
            f"{base / NPY_FILES[3]}: label {raw_test[np.argmin(known)]} does not occur in the training data"
        )
    files = [str(base / name) for name in NPY_FILES]
    names = [str(c) for c in classes.tolist()]
    return Dataset(
        base.name, X_train, y_train.astype(np.intp), X_test, y_test.astype(np.intp), names, shape, {"files": files}
    )


def _load(path: Path, mmap_mode: Any) -> NDArray[Any]:
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: an NPZ archive, expected a single .npy array")
    return array


def _features(path: Path) -> tuple[NDArray[Any], tuple[int, int] | None]:
    X = _load(path, "r")
    if X.ndim not in (2, 3) or 0 in X.shape:
        raise DataError(f"{path}: expected samples as rows (m, n) or images (m, h, w), got shape {X.shape}")
    if X.dtype.kind not in "uif" or (X.dtype.kind == "f" and X.dtype.itemsize > 8):
        raise DataError(f"{path}: expected numbers, got {X.dtype}")
    shape = (int(X.shape[1]), int(X.shape[2])) if X.ndim == 3 else None
    if X.dtype not in (np.uint8, np.float32):
        X = np.asarray(X, dtype=np.float32)  # read whole: only uint8 and float32 stay mapped
        if not np.isfinite(X).all():
            raise DataError(f"{path}: values that are not finite as float32")
    return X.reshape(len(X), -1), shape


def _labels(path: Path, n: int) -> NDArray[Any]:
    y = _load(path, None)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: expected integer labels of shape (m,), got {y.dtype} {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: {len(y)} labels for {n} samples")
    return y
