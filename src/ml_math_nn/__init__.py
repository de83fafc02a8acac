"""ml-math-nn: neural networks from first principles in NumPy.

The core library is the top-level modules: :mod:`~ml_math_nn.layers`,
:mod:`~ml_math_nn.losses`, :mod:`~ml_math_nn.init`, :mod:`~ml_math_nn.network`,
:mod:`~ml_math_nn.optim`, :mod:`~ml_math_nn.schedules`, :mod:`~ml_math_nn.train` and
:mod:`~ml_math_nn.gradcheck`; they import numpy and nothing of the application.  The
application is built on them in subpackages named by what a person does with it:
:mod:`~ml_math_nn.runs` (options, the command line, run directories, checkpoints, model
files), :mod:`~ml_math_nn.results` (figures and reports), :mod:`~ml_math_nn.integrations`
(the scikit-learn estimator) and :mod:`~ml_math_nn.data` (datasets and readers).

Every name below is importable from the package itself (``from ml_math_nn import
Network``), but a module is loaded only when one of its names is first used: ``import
ml_math_nn`` costs little more than ``import numpy``, and scikit-learn or matplotlib load
only for what needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # the core
    "Layer": "layers",
    "Dense": "layers",
    "ReLU": "layers",
    "LeakyReLU": "layers",
    "ELU": "layers",
    "GELU": "layers",
    "Tanh": "layers",
    "Sigmoid": "layers",
    "Dropout": "layers",
    "Flatten": "layers",
    "BatchNorm": "layers",
    "Loss": "losses",
    "SoftmaxCrossEntropy": "losses",
    "SigmoidCrossEntropy": "losses",
    "MeanSquaredError": "losses",
    "log_softmax": "losses",
    "softmax": "losses",
    "Network": "network",
    "build_mlp": "network",
    "Optimizer": "optim",
    "SGD": "optim",
    "Adam": "optim",
    "AdamW": "optim",
    "RMSprop": "optim",
    "AdaGrad": "optim",
    "Lion": "optim",
    "clip_grad_norm": "optim",
    "make_optimizer": "optim",
    "Schedule": "schedules",
    "make_schedule": "schedules",
    "Trainer": "train",
    "EarlyStopping": "train",
    "evaluate": "train",
    # the application
    "TrainConfig": "runs.options",
    "load_config": "runs.options",
    "Model": "runs.persistence",
    "load_model": "runs.persistence",
    "save_model": "runs.persistence",
    "MLPClassifier": "integrations.estimator",
    "MLPRegressor": "integrations.estimator",
}
"""Each public name and the module (relative to the package) that defines it."""

__all__ = [
    "AdaGrad",
    "Adam",
    "AdamW",
    "BatchNorm",
    "Dense",
    "Dropout",
    "ELU",
    "EarlyStopping",
    "Flatten",
    "GELU",
    "Layer",
    "LeakyReLU",
    "Lion",
    "Loss",
    "MLPClassifier",
    "MLPRegressor",
    "MeanSquaredError",
    "Model",
    "Network",
    "Optimizer",
    "RMSprop",
    "ReLU",
    "SGD",
    "Schedule",
    "Sigmoid",
    "SigmoidCrossEntropy",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TrainConfig",
    "Trainer",
    "build_mlp",
    "clip_grad_norm",
    "evaluate",
    "load_config",
    "load_model",
    "log_softmax",
    "make_optimizer",
    "make_schedule",
    "save_model",
    "softmax",
]


def __getattr__(name: str) -> Any:
    """Load the module that defines ``name`` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml_math_nn' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    except AttributeError:
        raise AttributeError(f"module 'ml_math_nn' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what the type checker and IDEs see
    from .integrations.estimator import MLPClassifier, MLPRegressor
    from .layers import ELU, GELU, BatchNorm, Dense, Dropout, Flatten, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
    from .losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy, log_softmax, softmax
    from .network import Network, build_mlp
    from .optim import SGD, AdaGrad, Adam, AdamW, Lion, Optimizer, RMSprop, clip_grad_norm, make_optimizer
    from .runs.options import TrainConfig, load_config
    from .runs.persistence import Model, load_model, save_model
    from .schedules import Schedule, make_schedule
    from .train import EarlyStopping, Trainer, evaluate
