"""Our layers rebuilt from torch operations on copies of the same arrays: the reference.

Test-only; torch arrives as the ``torch`` fixture's module (float64 default), so this
file never imports it and the checks skip cleanly where it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ml_math_nn.layers import (
    ELU,
    GELU,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Reshape,
    Sigmoid,
    Tanh,
)

TOL = 1e-10


def rel(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest deviation relative to the reference's largest entry (0 when both are 0)."""
    scale = float(np.max(np.abs(ref), initial=0.0)) or float(np.max(np.abs(ours), initial=0.0)) or 1.0
    return float(np.max(np.abs(np.asarray(ours) - ref), initial=0.0)) / scale


class Twin:
    """Torch copies of the parameters and buffers of ``layers``, and the same forward.

    ``params[i][key]`` are leaf tensors whose ``.grad`` the caller compares with
    ``layers[i].grads[key]``; ``buffers[i][key]`` are updated by torch's batch norm.
    Dropout layers must have a ``fixed_mask`` to be run in training.
    """

    def __init__(self, torch: ModuleType, layers: Sequence[Layer]) -> None:
        self.torch, self.layers = torch, list(layers)
        self.params = [{k: torch.tensor(v, requires_grad=True) for k, v in lay.params.items()} for lay in layers]
        self.buffers = [{k: torch.tensor(v) for k, v in lay.buffers.items()} for lay in layers]

    def forward(self, x: Any, training: bool) -> Any:
        for layer, p, b in zip(self.layers, self.params, self.buffers, strict=True):
            x = self.apply(layer, x, p, b, training)
        return x

    def apply(self, layer: Layer, x: Any, p: dict[str, Any], b: dict[str, Any], training: bool) -> Any:
        torch, F = self.torch, self.torch.nn.functional
        if isinstance(layer, Dense):
            return x @ p["W"] + p["b"] if layer.bias else x @ p["W"]
        if isinstance(layer, ReLU):
            return F.relu(x)
        if isinstance(layer, LeakyReLU):
            return F.leaky_relu(x, layer.negative_slope)
        if isinstance(layer, ELU):
            return F.elu(x, layer.alpha)
        if isinstance(layer, GELU):
            return F.gelu(x, approximate=layer.approximate)
        if isinstance(layer, Tanh):
            return torch.tanh(x)
        if isinstance(layer, Sigmoid):
            return torch.sigmoid(x)
        if isinstance(layer, Dropout):
            if not training:
                return x
            assert layer.fixed_mask is not None, "a Dropout twin needs a fixed mask"
            return x * torch.tensor(layer.fixed_mask) / (1 - layer.rate)
        if isinstance(layer, BatchNorm):
            return F.batch_norm(
                x,
                b["running_mean"],
                b["running_var"],
                p["gamma"],
                p["beta"],
                training=training,
                momentum=layer.momentum,
                eps=layer.eps,
            )
        if isinstance(layer, Conv2D):
            return F.conv2d(x, p["W"], p.get("b"), stride=layer.stride, padding=layer.padding)
        if isinstance(layer, MaxPool2D):
            return F.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, AvgPool2D):
            return F.avg_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, Flatten):
            return x.flatten(1)
        if isinstance(layer, Reshape):
            return x.reshape(x.shape[0], *layer.shape)
        raise TypeError(f"no torch twin for {type(layer).__name__}")

    def errors(self) -> dict[str, float]:
        """Relative error of every parameter gradient and buffer of ours against torch's."""
        out: dict[str, float] = {}
        for i, (layer, p, b) in enumerate(zip(self.layers, self.params, self.buffers, strict=True)):
            for k, t in p.items():
                out[f"{i}.grad.{k}"] = rel(layer.grads[k], t.grad.numpy())
            for k, t in b.items():
                out[f"{i}.{k}"] = rel(layer.buffers[k], t.numpy())
        return out


def assert_batch_norm_matches(torch: ModuleType, ours: BatchNorm, ref: Any, shape: tuple[int, ...], rng: Any) -> None:
    """Three training steps (outputs, gradients, running statistics), then evaluation, of
    our batch norm ``ours`` against torch's module ``ref`` (BatchNorm1d/2d), started from
    the same parameters and statistics, on random batches of ``shape``."""
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.params["gamma"]))
        ref.bias.copy_(torch.tensor(ours.params["beta"]))
        ref.running_mean.copy_(torch.tensor(ours.buffers["running_mean"]))
        ref.running_var.copy_(torch.tensor(ours.buffers["running_var"]))
    for training in (True, True, True, False):
        ref.train(training)
        ref.zero_grad()
        x, G = 3 * rng.normal(size=shape) - 1, rng.normal(size=shape)
        out, grad_x = ours.forward(x, training), ours.backward(G)
        x_t = torch.tensor(x, requires_grad=True)
        out_t = ref(x_t)
        out_t.backward(torch.tensor(G))
        assert rel(out, out_t.detach().numpy()) <= TOL
        assert rel(grad_x, x_t.grad.numpy()) <= TOL
        assert rel(ours.grads["gamma"], ref.weight.grad.numpy()) <= TOL
        assert rel(ours.grads["beta"], ref.bias.grad.numpy()) <= TOL
        assert rel(ours.buffers["running_mean"], ref.running_mean.numpy()) <= TOL
        assert rel(ours.buffers["running_var"], ref.running_var.numpy()) <= TOL
