"""ml-math-nn: a fully connected neural network from first principles in NumPy."""

__version__ = "0.1.0"

from .config import TrainConfig, load_config  # noqa: E402
from .estimator import MLPClassifier  # noqa: E402
from .layers import ELU, GELU, BatchNorm, Dense, Dropout, Layer, LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: E402
from .losses import SoftmaxCrossEntropy, log_softmax, softmax  # noqa: E402
from .network import Network, build_mlp  # noqa: E402
from .optim import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm, make_optimizer  # noqa: E402
from .persistence import Model, load_model, save_model  # noqa: E402
from .schedules import Schedule, make_schedule  # noqa: E402
from .train import EarlyStopping, Trainer, evaluate  # noqa: E402

__all__ = [
    "ELU",
    "GELU",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "BatchNorm",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Layer",
    "LeakyReLU",
    "Model",
    "Network",
    "Optimizer",
    "RMSprop",
    "ReLU",
    "Schedule",
    "Sigmoid",
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
    "MLPClassifier",
]
