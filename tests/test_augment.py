"""Random one-pixel shifts: exact pixel movement, fill value, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn.data.augment import random_shifts


def test_each_image_is_its_original_shifted_by_at_most_one_pixel() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(200, 5, 6))
    X = images.reshape(200, -1).copy()
    random_shifts((5, 6), fill=-7.0)(X, np.random.default_rng(1))
    out = X.reshape(200, 5, 6)
    moved = 0
    for orig, new in zip(images, out, strict=True):
        matches = []
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                expected = np.full((5, 6), -7.0)
                expected[max(dr, 0) : 5 + min(dr, 0), max(dc, 0) : 6 + min(dc, 0)] = orig[
                    max(-dr, 0) : 5 + min(-dr, 0), max(-dc, 0) : 6 + min(-dc, 0)
                ]
                matches.append(np.array_equal(new, expected))
        assert sum(matches) == 1
        moved += not matches[4]
    assert 150 < moved < 200  # 8 of 9 offsets move the image


def test_same_generator_state_gives_same_shifts() -> None:
    X = np.arange(40 * 16, dtype=np.float32).reshape(40, 16)
    a, b = X.copy(), X.copy()
    random_shifts((4, 4), 0.0)(a, np.random.default_rng(3))
    random_shifts((4, 4), 0.0)(b, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.dtype == np.float32


def test_wrong_width_is_rejected() -> None:
    with pytest.raises(ValueError, match="4x4 = 16 pixels"):
        random_shifts((4, 4), 0.0)(np.zeros((3, 15)), np.random.default_rng(0))
