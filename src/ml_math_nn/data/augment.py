"""Data augmentation for image datasets, applied to the training split only.

The trainer calls an augmenter once per epoch on its shuffled copy of the training set,
so the caller's data is never modified and every epoch sees fresh variants.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._types import Array


def random_shifts(
    image_shape: tuple[int, int], fill: float, max_shift: int = 1
) -> Callable[[Array, np.random.Generator], None]:
    """An augmenter that moves each image by a random whole-pixel offset.

    Each row of ``X`` (a flattened ``image_shape`` image) is shifted by
    :math:`(d_r, d_c)` drawn uniformly from :math:`\\{-s..s\\}^2`, :math:`s` =
    ``max_shift``: pixel :math:`(r, c)` of the result is pixel :math:`(r - d_r, c - d_c)`
    of the original, and pixels shifted in from outside the image take the value
    ``fill`` (the scaled value of a blank pixel).  About :math:`1/(2s+1)^2` of the images
    stay where they are.
    """
    if max_shift < 1:
        raise ValueError(f"max_shift must be >= 1, got {max_shift}")
    h, w = image_shape

    def augment(X: Array, rng: np.random.Generator) -> None:
        if X.ndim != 2 or X.shape[1] != h * w:
            raise ValueError(f"random shifts expect rows of {h}x{w} = {h * w} pixels, got shape {X.shape}")
        offsets = rng.integers(-max_shift, max_shift + 1, size=(len(X), 2))
        images = X.reshape(len(X), h, w)
        for dr in range(-max_shift, max_shift + 1):
            for dc in range(-max_shift, max_shift + 1):
                if dr == 0 and dc == 0:
                    continue
                rows = np.flatnonzero((offsets[:, 0] == dr) & (offsets[:, 1] == dc))
                if rows.size == 0:
                    continue
                shifted = np.full((rows.size, h, w), fill, dtype=X.dtype)
                src = images[rows]
                shifted[:, max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = src[
                    :, max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
                ]
                images[rows] = shifted

    return augment
