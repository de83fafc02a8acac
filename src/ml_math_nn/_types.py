"""Array aliases shared by every module."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating[Any]]
"""A floating-point array (float32 or float64)."""

Labels = NDArray[np.integer[Any]]
"""Integer class indices ``0..K-1``."""
