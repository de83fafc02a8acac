"""ml-math-nn: a fully connected neural network from first principles in NumPy."""

__version__ = "0.1.0"

from .layers import Dense, Layer, ReLU  # noqa: E402
from .losses import SoftmaxCrossEntropy, log_softmax, softmax  # noqa: E402
from .network import Network, build_mlp  # noqa: E402
from .optim import SGD, Optimizer  # noqa: E402
from .train import Trainer, evaluate  # noqa: E402

__all__ = [
    "Dense",
    "Layer",
    "Network",
    "Optimizer",
    "ReLU",
    "SGD",
    "SoftmaxCrossEntropy",
    "Trainer",
    "build_mlp",
    "evaluate",
    "log_softmax",
    "softmax",
]
