"""Shared fixtures.

PyTorch is the independent reference for gradients.  It is a test-only dependency
(installed by ``make test``); where it is missing the comparisons skip with a reason,
except in CI (``CI`` set), where a missing torch is an error so the checks always run.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn

import numpy as np
import pytest
from hypothesis import settings

# Property tests (hypothesis) draw new examples on every run, which finds bugs but lets a
# run fail by chance.  In CI they are derandomised: the examples follow from each test's
# name, no example database is read or written, so a green CI run is reproducible.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    try:
        import torch as torch_module
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("PyTorch is required in CI for the reference checks (pip install torch==2.13.0)")
        pytest.skip("PyTorch not installed: the PyTorch reference checks need `pip install torch==2.13.0`")
    torch_module.set_default_dtype(torch_module.float64)
    return torch_module


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def missing(what: str) -> NoReturn:
    """Skip a test whose requirement ``what`` is missing here; in CI, which installs it, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must have {what}")
    pytest.skip(f"{what} missing")


def fashion_mnist_missing(error: Exception) -> NoReturn:
    """Skip a test that reads the installed Fashion-MNIST, or fail it in CI, which installs it."""
    if os.environ.get("CI"):
        pytest.fail(f"CI installs Fashion-MNIST (apt-get install dataset-fashion-mnist): {error}")
    pytest.skip(f"Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): {error}")


def load_harness() -> ModuleType:
    """The benchmark harness, benchmarks/harness.py: outside the library, loaded by path."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "ml_math_nn_benchmark_harness"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "harness.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
