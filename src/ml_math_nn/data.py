"""Datasets, train/test splits and feature scaling.

Nothing here downloads: digits ships with scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ._types import Array, Labels


@dataclass
class Dataset:
    """A train/test pair with integer labels ``0..K-1`` and the names of the classes.

    ``image_shape`` is set for image data (e.g. ``(8, 8)``) so plots can show samples.
    """

    name: str
    X_train: Array
    y_train: Labels
    X_test: Array
    y_test: Labels
    class_names: list[str]
    image_shape: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Standardizer:
    r"""Scaling :math:`x' = (x - \mu) / \sigma` with :math:`\mu, \sigma` fitted on the
    training split only.

    ``per_feature=True`` fits one :math:`(\mu_j, \sigma_j)` per column (tabular data);
    ``per_feature=False`` fits one pair over all values, which suits images: every pixel
    keeps its scale, and a pixel that is almost always blank is not blown up to
    dozens of standard deviations.  A zero :math:`\sigma` becomes 1.
    """

    mean: Array
    scale: Array

    @classmethod
    def fit(cls, x: Array, dtype: np.dtype[Any] | type = np.float32, per_feature: bool = True) -> Standardizer:
        axis = 0 if per_feature else None
        mean = np.broadcast_to(x.mean(axis=axis, dtype=np.float64), x.shape[1:]).copy()
        std = np.broadcast_to(x.std(axis=axis, dtype=np.float64), x.shape[1:]).copy()
        std[std == 0] = 1.0
        return cls(mean.astype(dtype), std.astype(dtype))

    def transform(self, x: Array) -> Array:
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} features per row, got shape {x.shape}")
        out = np.asarray(x, dtype=self.mean.dtype) - self.mean
        out /= self.scale
        return out


def split(X: Array, y: Labels, test_size: float, seed: int) -> tuple[Array, Array, Labels, Labels]:
    """Stratified train/test split, reproducible from ``seed``."""
    if not 0 < test_size < 1:
        raise ValueError(f"test size must be strictly between 0 and 1, got {test_size}")
    parts = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    return parts[0], parts[1], parts[2], parts[3]


def digits(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, pixel values 0..16)."""
    bunch = load_digits()
    X_train, X_test, y_train, y_test = split(bunch.data, bunch.target.astype(np.intp), test_size, seed)
    return Dataset("digits", X_train, y_train, X_test, y_test, [str(c) for c in range(10)], (8, 8))
