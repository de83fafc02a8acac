"""Layers: each one a forward/backward pair.

Conventions (used everywhere in the library and in ``docs/math.md``): a batch is an
array whose **first axis runs over the samples**; the rest, a sample's shape, is what a
layer calls its input shape: ``(n,)`` for a matrix ``X`` of shape ``(m, n)`` with one
sample per row, ``(C, H, W)`` for a batch of images ``(m, C, H, W)``.  A dense layer
computes ``Z = X W + b`` with ``W`` of shape ``(n_in, n_out)`` on the last axis.  This is
the transpose of the column convention ``Z = W X + b`` used in many textbooks:
``W_ours = W_col^T``.

Every layer follows one protocol:

* ``forward(x, training)`` returns the output and caches what ``backward`` needs;
* ``backward(grad)`` takes ``dL/d(output)``, returns ``dL/d(input)`` and stores
  ``dL/d(param)`` in ``self.grads``.  It never writes into ``grad``;
* ``param_grads(grad)`` stores the parameter gradients only (what the first layer of a
  network needs: nobody asks for the gradient of the data);
* ``output_shape(input_shape)`` says what one sample becomes, and refuses an input it
  cannot take; ``input_shape`` is the sample shape a layer fixes, if it fixes one;
* ``weight_names``, ``unit_weights()`` and ``multiply_adds(input_shape)`` answer what
  the network (the L2 penalty), the figures and the benchmark ask of a layer, so that
  none of them needs to know which layer type it holds.

Applying an update to ``self.params`` is the optimiser's job (:mod:`ml_math_nn.optim`),
never the layer's.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import init as initializers
from ._registry import Registry
from ._types import Array

Shape = tuple[int, ...]
"""The shape of one sample: an array's shape without its first (batch) axis."""


class Layer:
    """Base class of every layer.

    Attributes
    ----------
    params : dict of str to ndarray
        Trainable parameters, updated in place by an optimiser.
    grads : dict of str to ndarray
        Gradients of the loss with respect to ``params``, same keys and shapes,
        written by :meth:`backward` into the arrays already there (``out=``).  A
        :class:`~ml_math_nn.network.Network` replaces both dicts' arrays with views of
        one buffer each; an array rebound after that is still trained correctly, but
        the optimiser then updates every parameter on its own.
    buffers : dict of str to ndarray
        Non-trainable state that is saved with the model (e.g. running statistics).
    registry : Registry
        Every layer class by its class name, the ``"type"`` of :meth:`config` in model
        files (a subclass registers itself when it is defined, unless it is declared
        ``class Base(Layer, abstract=True)``: a base that cannot run is no layer type).
    weight_names : tuple of str
        The keys of ``params`` that multiply the input (weights, not biases nor
        normalisation scales): the L2 penalty of a network applies to these.
    """

    registry: ClassVar[Registry[type[Layer]]] = Registry("layer type", key=lambda cls: cls.__name__)
    weight_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            Layer.registry.add(cls)

    def forward(self, x: Array, training: bool = False) -> Array:
        """Compute the layer's output for the batch ``x`` (samples along the first axis)."""
        raise NotImplementedError

    def backward(self, grad: Array) -> Array:
        """Given ``dL/d(output)``, store parameter gradients and return ``dL/d(input)``."""
        raise NotImplementedError

    def param_grads(self, grad: Array) -> None:
        """Store the parameter gradients of :meth:`backward` without returning ``dL/d(input)``.

        A network calls this on its first layer in training, where nobody needs the
        gradient of the data.  By default it runs :meth:`backward` and drops the input
        gradient; a layer that can skip that work (:class:`Dense`) overrides it.
        """
        self.backward(grad)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description from which :func:`layer_from_config` rebuilds it."""
        return {"type": type(self).__name__}

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give the layer the generator it draws from in training (:class:`Dropout`'s masks).

        Most layers draw nothing and ignore it; :meth:`ml_math_nn.network.Network.set_rng`
        calls it on every layer, whatever its type.
        """

    def fix_randomness(self, batch_shape: Sequence[int], rng: np.random.Generator) -> None:
        """Draw once from ``rng`` what a training forward on a batch of ``batch_shape`` would
        draw, and use that on every later training forward.

        A finite-difference check needs the training-mode loss to be a function of the
        parameters alone (:func:`ml_math_nn.gradcheck.fix_dropout_masks`).  Layers that draw
        nothing ignore it.
        """

    @property
    def input_shape(self) -> Shape | None:
        """The sample shape this layer fixes for its input (``(n_in,)`` for :class:`Dense`);
        None when it takes inputs of more than one shape (elementwise layers, :class:`Flatten`)."""
        return None

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """The shape of one output sample for one input sample of shape ``input_shape``.

        Raises ``ValueError`` naming the layer and both shapes when the layer cannot take
        that input.  By default the shape is kept (elementwise layers).
        """
        return tuple(input_shape)

    def unit_weights(self) -> Array | None:
        """The weights of each output unit over its input, shape ``(units, *fan_in_shape)``.

        For :class:`Dense`, row :math:`j` is :math:`W_{:,j}`: the pattern of inputs that
        drives unit :math:`j` most (what the first-layer figure draws).  None for a layer
        without weights.
        """
        return None

    def multiply_adds(self, input_shape: Sequence[int]) -> int:
        r"""Multiply-adds of the matrix products of :meth:`forward` for one sample of ``input_shape``.

        A layer built on one product :math:`Z = X W` (dense, and convolutions as products
        of patches) needs as many again for :math:`X^\top G` and for :math:`G W^\top` in
        :meth:`backward`.  Elementwise work is not counted: 0 by default.
        """
        return 0

    def __repr__(self) -> str:
        config = self.config()
        kind = config.pop("type")
        return f"{kind}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def layer_from_config(config: dict[str, Any], dtype: np.dtype[Any] | type = np.float32) -> Layer:
    """Rebuild a layer (with freshly allocated, zero parameters) from :meth:`Layer.config`.

    ``dtype`` goes to every layer whose constructor takes one (those that allocate arrays).
    """
    kwargs = dict(config)
    name = kwargs.pop("type", None)
    cls = Layer.registry.get(str(name))  # not lookup: its message would list the types unsorted
    if cls is None:
        raise ValueError(f"unknown layer type {name!r}; known: {', '.join(sorted(Layer.registry))}")
    if "dtype" in inspect.signature(cls).parameters:
        kwargs["dtype"] = dtype
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"invalid {name} layer config {config}: {e}") from None


class Dense(Layer):
    r"""Fully connected affine layer, acting on the last axis of its input.

    Forward:

    .. math:: Z = X W + \mathbf{1} b

    Backward, given :math:`G = \partial L / \partial Z`:

    .. math::
        \frac{\partial L}{\partial W} = X^\top G,\quad
        \frac{\partial L}{\partial b} = \mathbf{1}^\top G,\quad
        \frac{\partial L}{\partial X} = G W^\top

    The :math:`1/m` of the batch mean is already inside ``G`` (see
    :class:`ml_math_nn.losses.SoftmaxCrossEntropy`).

    A batch of shape :math:`(m, \dots, n_{in})` is read as the matrix
    :math:`X` of its :math:`M = m \cdot \prod \dots` rows of length :math:`n_{in}` (a
    reshape, no copy for a contiguous batch): every row meets the same :math:`W`, so the
    sums over rows in :math:`X^\top G` and :math:`\mathbf 1^\top G` run over every
    leading axis, and the output has shape :math:`(m, \dots, n_{out})`.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    init : str
        Name of the weight initialiser in :mod:`ml_math_nn.init`.
    rng : numpy.random.Generator, optional
        Source of the initial weights; without one, weights start at zero
        (as when a model is about to be loaded from a file).
    dtype : numpy dtype
        Floating type of the parameters.
    bias : bool
        Whether to add :math:`b`.  A layer followed by :class:`BatchNorm` has none:
        the normalisation subtracts the batch mean, so :math:`b` would get a zero
        gradient and do nothing (BatchNorm's :math:`\beta` takes its place).
    """

    weight_names = ("W",)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        init: str = "he_normal",
        rng: np.random.Generator | None = None,
        dtype: np.dtype[Any] | type = np.float32,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"Dense layer widths must be >= 1, got n_in={n_in}, n_out={n_out}")
        self.n_in, self.n_out, self.init, self.bias = int(n_in), int(n_out), init, bool(bias)
        draw = initializers.get(init)  # validates the name even when no weights are drawn
        if rng is None:
            weights = np.zeros((self.n_in, self.n_out), dtype=dtype)
        else:
            weights = draw(self.n_in, self.n_out, rng).astype(dtype)
        self.params = {"W": weights}
        if self.bias:
            self.params["b"] = np.zeros(self.n_out, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: Array | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._x = x
        if x.ndim == 2:
            z = x @ self.params["W"]
        else:  # the rows of every leading axis as one matrix
            z = (x.reshape(-1, self.n_in) @ self.params["W"]).reshape(*x.shape[:-1], self.n_out)
        if self.bias:
            z += self.params["b"]
        return z

    def backward(self, grad: Array) -> Array:
        self.param_grads(grad)
        if grad.ndim == 2:
            return grad @ self.params["W"].T
        return (grad.reshape(-1, self.n_out) @ self.params["W"].T).reshape(*grad.shape[:-1], self.n_in)

    def param_grads(self, grad: Array) -> None:
        r"""The parameter half of :meth:`backward`: store :math:`X^\top G` and :math:`\mathbf{1}^\top G`.

        The first layer of a network calls only this in training: nothing needs the
        gradient of the data, and :math:`G W^\top` would be a third of its work.
        """
        x = self._x
        if x is None:
            raise RuntimeError("Dense.backward called before forward")
        if x.ndim != 2:  # sums over every leading axis: the same products on the rows as one matrix
            x, grad = x.reshape(-1, self.n_in), grad.reshape(-1, self.n_out)
        np.matmul(x.T, grad, out=self.grads["W"])
        if self.bias:
            grad.sum(axis=0, out=self.grads["b"])  # the method: np.sum's wrapper costs ~1 us a call

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "init": self.init}
        if not self.bias:  # only when off, so configs written before the option still match
            out["bias"] = False
        return out

    @property
    def input_shape(self) -> Shape:
        return (self.n_in,)

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = tuple(input_shape)
        if not shape or shape[-1] != self.n_in:
            raise ValueError(f"{self!r} takes samples of shape (..., {self.n_in}), got {shape}")
        return (*shape[:-1], self.n_out)

    def unit_weights(self) -> Array:
        return self.params["W"].T

    def multiply_adds(self, input_shape: Sequence[int]) -> int:
        r""":math:`n_{in} n_{out}` per row of the sample (one row for a sample of shape :math:`(n_{in},)`)."""
        shape = self.output_shape(input_shape)
        return math.prod(shape[:-1]) * self.n_in * self.n_out


class Activation(Layer, abstract=True):
    r"""An elementwise activation :math:`A = f(Z)`, whose backward is
    :math:`\partial L/\partial Z = \partial L/\partial A \odot f'(Z)`.

    Subclasses implement :meth:`function` and :meth:`derivative`; forward keeps a
    reference to :math:`Z` and :math:`A` (no copies) so the derivative can reuse
    :math:`A` where that is cheaper (tanh, sigmoid, ELU).

    A subclass that sets ``name`` is registered under it in :attr:`options`, the
    activations that options (``--activation``, ``build_mlp``) choose by name; it is
    built there with its defaults, so adding an activation is one class here.

    Attributes
    ----------
    options : Registry
        The activation classes by option name (``"relu"``, ``"gelu_tanh"``, ...).
    default_init : str
        The initialiser that suits a dense layer followed by this activation (see
        :func:`ml_math_nn.init.default_for`): He normal for the ReLU-like ones, which
        keep about half of the variance, Glorot uniform for the symmetric ones.
    """

    name: ClassVar[str] = ""
    options: ClassVar[Registry[type[Activation]]] = Registry("activation")
    default_init: ClassVar[str] = "glorot_uniform"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.options.add(cls)

    def __init__(self) -> None:
        super().__init__()
        self._io: tuple[Array, Array] | None = None

    def function(self, z: Array) -> Array:
        """:math:`f(Z)`, elementwise."""
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """:math:`f'(Z)`, elementwise, given :math:`Z` and :math:`A = f(Z)`."""
        raise NotImplementedError

    def forward(self, x: Array, training: bool = False) -> Array:
        out = self.function(x)
        self._io = (x, out)
        return out

    def backward(self, grad: Array) -> Array:
        if self._io is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return grad * self.derivative(*self._io)


class ReLU(Activation):
    r"""Rectified linear unit, :math:`A = \max(0, Z)`.

    Backward: :math:`\partial L/\partial Z = \partial L/\partial A \odot \mathbf{1}[Z > 0]`
    (the subgradient at 0 is taken as 0, as in PyTorch).

    Both passes multiply by the indicator :math:`\mathbf{1}[Z > 0]`, computed once in
    forward and kept in the float type of :math:`Z`: :math:`A = Z \odot \mathbf{1}[Z > 0]`
    equals :math:`\max(0, Z)` for every finite :math:`Z` (and NaN stays NaN).
    """

    name = "relu"
    default_init = "he_normal"

    def __init__(self) -> None:
        super().__init__()
        self._slope: Array | None = None

    def function(self, z: Array) -> Array:
        return z * (z > 0).astype(z.dtype)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def forward(self, x: Array, training: bool = False) -> Array:
        # A float 0/1 indicator, not a bool mask: numpy multiplies floats by floats in
        # SIMD loops but casts a bool operand element by element (several times slower),
        # and np.maximum is itself slower than a product.
        self._slope = (x > 0).astype(x.dtype)
        return x * self._slope

    def backward(self, grad: Array) -> Array:
        if self._slope is None:
            raise RuntimeError("ReLU.backward called before forward")
        return grad * self._slope


class LeakyReLU(Activation):
    r"""Leaky ReLU, :math:`f(z) = z` for :math:`z > 0`, else :math:`\alpha z`.

    :math:`f'(z) = 1` for :math:`z > 0`, else :math:`\alpha` (also at 0, as in PyTorch).

    Parameters
    ----------
    negative_slope : float
        :math:`\alpha`, the slope for negative inputs (PyTorch's name and default).
    """

    name = "leaky_relu"
    default_init = "he_normal"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def function(self, z: Array) -> Array:
        return np.where(z > 0, z, self.negative_slope * z)

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.negative_slope).astype(z.dtype, copy=False)

    def config(self) -> dict[str, Any]:
        return {"type": "LeakyReLU", "negative_slope": self.negative_slope}


class ELU(Activation):
    r"""Exponential linear unit, :math:`f(z) = z` for :math:`z > 0`, else :math:`\alpha(e^z - 1)`.

    :math:`f'(z) = 1` for :math:`z > 0`, else :math:`\alpha e^z = f(z) + \alpha`.
    ``expm1`` keeps :math:`e^z - 1` accurate near 0, and only :math:`\min(z, 0)` is
    exponentiated, so large inputs cannot overflow.

    Parameters
    ----------
    alpha : float
        :math:`\alpha`, the value approached as :math:`z \to -\infty` is :math:`-\alpha`.
    """

    name = "elu"
    default_init = "he_normal"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def function(self, z: Array) -> Array:
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype, copy=False)

    def config(self) -> dict[str, Any]:
        return {"type": "ELU", "alpha": self.alpha}


def erf(x: Array) -> Array:
    """The error function, elementwise: scipy's, loaded on the first call.

    NumPy has no erf; scipy (a runtime dependency, and scikit-learn's) has one.  Importing
    it when the exact GELU first runs keeps ``import ml_math_nn.layers`` down to numpy.
    """
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


class GELU(Activation):
    r"""Gaussian error linear unit, exact by default (PyTorch's default too).

    ``approximate="none"`` (exact), with :math:`\Phi` the standard normal CDF and
    :math:`\varphi` its density:

    .. math::
        f(z) = z\,\Phi(z) = \tfrac12 z\,\big(1 + \operatorname{erf}(z/\sqrt2)\big),\qquad
        f'(z) = \Phi(z) + z\,\varphi(z)

    ``approximate="tanh"``, with :math:`u = \sqrt{2/\pi}\,(z + 0.044715 z^3)` and
    :math:`t = \tanh u`:

    .. math::
        f(z) = \tfrac12 z (1 + t),\qquad
        f'(z) = \tfrac12 (1 + t) + \tfrac12 z (1 - t^2) \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715 z^2)

    Parameters
    ----------
    approximate : {"none", "tanh"}
        PyTorch's names: ``"none"`` is exact, ``"tanh"`` the tanh approximation.
    """

    name = "gelu"
    default_init = "he_normal"

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def function(self, z: Array) -> Array:
        if self.approximate == "tanh":
            return 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3)))
        return 0.5 * z * (1.0 + erf(z / _SQRT_2))

    def derivative(self, z: Array, a: Array) -> Array:
        if self.approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3))
            return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * _GELU_CUBIC * z * z)
        return 0.5 * (1.0 + erf(z / _SQRT_2)) + z * _INV_SQRT_2PI * np.exp(-0.5 * z * z)

    def config(self) -> dict[str, Any]:
        return {"type": "GELU", "approximate": self.approximate}


class GELUTanh(GELU):
    """The option ``gelu_tanh``: ``GELU(approximate="tanh")``, and saved as that.

    Its :meth:`config` is GELU's, so model files name ``GELU`` and load as one.
    """

    name = "gelu_tanh"

    def __init__(self) -> None:
        super().__init__("tanh")


class Tanh(Activation):
    r"""Hyperbolic tangent, :math:`f(z) = \tanh z`, :math:`f'(z) = 1 - f(z)^2`."""

    name = "tanh"

    def function(self, z: Array) -> Array:
        return np.tanh(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1.0 - a * a


class Sigmoid(Activation):
    r"""Logistic sigmoid, :math:`f(z) = 1/(1 + e^{-z})`, :math:`f'(z) = f(z)(1 - f(z))`.

    Computed as :math:`1/(1+e^{-|z|})` for :math:`z \ge 0` and :math:`e^{-|z|}/(1+e^{-|z|})`
    otherwise: the exponent is never positive, so nothing overflows, and small outputs
    keep full relative precision.
    """

    name = "sigmoid"

    def function(self, z: Array) -> Array:
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0, e) / (1.0 + e)

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1.0 - a)


class Dropout(Layer):
    r"""Inverted dropout.

    In training, each entry (of a batch of any shape) is kept with probability
    :math:`1-p` and the kept ones are scaled up so that the expected output equals the input:

    .. math:: A = Z \odot M / (1 - p),\qquad M_{ij} \sim \operatorname{Bernoulli}(1 - p),\qquad
              \frac{\partial L}{\partial Z} = \frac{\partial L}{\partial A} \odot M / (1 - p)

    In evaluation it is the identity, with no rescaling needed.

    Parameters
    ----------
    rate : float
        :math:`p`, the probability of dropping an entry, in :math:`[0, 1)`.
    rng : numpy.random.Generator, optional
        Source of the masks.  It may be set later (attribute ``rng``, or
        :meth:`ml_math_nn.network.Network.set_rng`), since a network is built, or loaded
        from a file, before the trainer that owns the generator.

    Attributes
    ----------
    fixed_mask : ndarray of bool, optional
        When set, training uses this keep-mask (True = kept, the shape of the batch)
        instead of drawing one: this makes the layer deterministic for gradient checks.
    """

    def __init__(self, rate: float, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate, self.rng = float(rate), rng
        self.fixed_mask: NDArray[np.bool_] | None = None
        self._scale: Array | float | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self._scale = 1.0
            return x
        if self.fixed_mask is not None:
            if self.fixed_mask.shape != x.shape:
                raise ValueError(f"Dropout fixed_mask has shape {self.fixed_mask.shape}, input has {x.shape}")
            keep = self.fixed_mask
        elif self.rng is None:
            raise RuntimeError("Dropout needs a generator in training: set layer.rng or call network.set_rng(rng)")
        else:
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.rate
        self._scale = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._scale

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def fix_randomness(self, batch_shape: Sequence[int], rng: np.random.Generator) -> None:
        """Set :attr:`fixed_mask`: each entry kept with probability :math:`1-p`, drawn once."""
        self.fixed_mask = rng.random(tuple(batch_shape)) >= self.rate

    def backward(self, grad: Array) -> Array:
        if self._scale is None:
            raise RuntimeError("Dropout.backward called before forward")
        return grad * self._scale

    def config(self) -> dict[str, Any]:
        return {"type": "Dropout", "rate": self.rate}


class BatchNorm(Layer):
    r"""Batch normalisation of each feature over the batch, or of each channel over the
    batch and every position.

    A batch of shape :math:`(m, F)` is normalised per feature (column), as PyTorch's
    ``BatchNorm1d``; a batch of shape :math:`(m, C, \dots)` (images :math:`(m, C, H, W)`)
    per channel, the statistics taken over every axis but the channel one, as
    ``BatchNorm2d``.  Below, a channel's :math:`k` values (:math:`k = m` rows of a matrix,
    :math:`k = m H W` entries of an image batch) play the part of the rows.

    Training, with the batch mean :math:`\mu` and biased batch variance :math:`\sigma^2`
    of each channel:

    .. math::
        \hat X = (X - \mu) / \sqrt{\sigma^2 + \epsilon},\qquad A = \gamma \odot \hat X + \beta

    and the running statistics move towards the batch's (the variance unbiased, as in
    PyTorch):

    .. math::
        \mu_{run} \leftarrow (1-\rho)\,\mu_{run} + \rho\,\mu,\qquad
        \sigma^2_{run} \leftarrow (1-\rho)\,\sigma^2_{run} + \rho\,\tfrac{k}{k-1}\sigma^2

    Backward in training, with :math:`G = \partial L/\partial A`, :math:`D = G \odot \gamma`
    and :math:`\overline{\,\cdot\,}` the mean over a channel's values (the batch statistics
    depend on every one of them, hence the two correction terms):

    .. math::
        \frac{\partial L}{\partial \gamma} = \mathbf 1^\top (G \odot \hat X),\quad
        \frac{\partial L}{\partial \beta} = \mathbf 1^\top G,\quad
        \frac{\partial L}{\partial X} = \frac{D - \overline{D} - \hat X \odot \overline{D \odot \hat X}}
                                             {\sqrt{\sigma^2 + \epsilon}}

    Evaluation uses :math:`\mu_{run}, \sigma^2_{run}` in place of the batch statistics,
    which are then constants: :math:`\partial L/\partial X = D / \sqrt{\sigma^2_{run} + \epsilon}`.

    Parameters
    ----------
    n_features : int
        :math:`F` or :math:`C`: the width of the input, or its number of channels (axis 1).
    momentum : float
        :math:`\rho`, weight of the new batch in the running statistics (PyTorch's meaning).
    eps : float
        :math:`\epsilon`, added to the variance for stability.
    dtype : numpy dtype
        Floating type of parameters and buffers.
    """

    def __init__(
        self,
        n_features: int,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: np.dtype[Any] | type = np.float32,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"BatchNorm n_features must be >= 1, got {n_features}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must be in [0, 1], got {momentum}")
        if not eps > 0.0:
            raise ValueError(f"BatchNorm eps must be > 0, got {eps}")
        self.n_features, self.momentum, self.eps = int(n_features), float(momentum), float(eps)
        self.params = {"gamma": np.ones(self.n_features, dtype=dtype), "beta": np.zeros(self.n_features, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(self.n_features, dtype=dtype),
            "running_var": np.ones(self.n_features, dtype=dtype),
        }
        # x_hat, 1/sqrt(var + eps) (shaped to broadcast), training, the reduced axes
        self._cache: tuple[Array, Array, bool, int | tuple[int, ...]] | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        if x.ndim < 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"BatchNorm expects input of shape (m, {self.n_features}) or (m, {self.n_features}, ...), got {x.shape}"
            )
        # (m, F): per column, as BatchNorm1d; (m, C, ...): per channel, over every other axis.
        # The matrix case keeps its own plain path: no reshapes, the statistics broadcast as they are.
        axes: int | tuple[int, ...] = 0 if x.ndim == 2 else (0, *range(2, x.ndim))
        if training:
            k = x.size // self.n_features  # values per channel
            if k < 2:
                what = "rows per batch" if x.ndim == 2 else "values per channel"
                raise ValueError(f"BatchNorm needs at least 2 {what} in training, got {k}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            rho = self.momentum
            # In place: the buffers are the arrays that Network.state() saves and loads.
            self.buffers["running_mean"] *= 1.0 - rho
            self.buffers["running_mean"] += rho * mean
            self.buffers["running_var"] *= 1.0 - rho
            self.buffers["running_var"] += (rho * k / (k - 1)) * var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if x.ndim > 2:  # (C,) -> (C, 1, ..., 1): against axis 1
            channel = (self.n_features,) + (1,) * (x.ndim - 2)
            mean, inv_std = mean.reshape(channel), inv_std.reshape(channel)
            gamma, beta = gamma.reshape(channel), beta.reshape(channel)
        x_hat = (x - mean) * inv_std
        self._cache = (x_hat, inv_std, training, axes)
        return gamma * x_hat + beta

    def backward(self, grad: Array) -> Array:
        if self._cache is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        x_hat, inv_std, training, axes = self._cache
        np.sum(grad * x_hat, axis=axes, out=self.grads["gamma"])
        np.sum(grad, axis=axes, out=self.grads["beta"])
        gamma = self.params["gamma"]
        if grad.ndim > 2:
            gamma = gamma.reshape(inv_std.shape)
        d = grad * gamma
        if training:
            keep = grad.ndim > 2  # the channel means broadcast against axis 1
            d = d - d.mean(axis=axes, keepdims=keep) - x_hat * (d * x_hat).mean(axis=axes, keepdims=keep)
        return d * inv_std

    def config(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "n_features": self.n_features, "momentum": self.momentum, "eps": self.eps}

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = tuple(input_shape)
        if not shape or shape[0] != self.n_features:
            raise ValueError(
                f"{self!r} takes samples of shape ({self.n_features},) or ({self.n_features}, ...), got {shape}"
            )
        return shape


class Flatten(Layer):
    r"""Each sample flattened to a vector: :math:`(m, d_1, d_2, \dots) \to (m, d_1 d_2 \cdots)`.

    The entries keep their C order (the last axis varies fastest), as PyTorch's
    ``nn.Flatten``; backward reshapes :math:`\partial L/\partial A` back to the input's
    shape, since flattening only renames the entries.  Both are views of a contiguous array.
    """

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, grad: Array) -> Array:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return grad.reshape(self._shape)

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        return (math.prod(input_shape),)


class Reshape(Layer):
    r"""Each flat sample read as an array of ``shape``: :math:`(m, \prod s) \to (m, s_1, s_2, \dots)`.

    The data of every run is a matrix, one sample per row (pixels in C order, as the
    image datasets store them); a network whose first layer is a convolution starts with
    ``Reshape((C, H, W))``, which turns the rows back into images.  It is the layer that
    fixes the network's input shape (:attr:`input_shape` is :math:`(\prod s,)`), so a
    model file records the image shape in this layer's config.  Backward reshapes the
    gradient back: both are views of a contiguous array.

    Parameters
    ----------
    shape : sequence of int
        The shape of one output sample, e.g. ``(1, 28, 28)``.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape: Shape = tuple(int(s) for s in shape)
        if not self.shape or any(s < 1 for s in self.shape):
            raise ValueError(f"Reshape shape must be positive sizes, got {tuple(shape)}")
        self._in_shape: tuple[int, ...] | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._in_shape = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, grad: Array) -> Array:
        if self._in_shape is None:
            raise RuntimeError("Reshape.backward called before forward")
        return grad.reshape(self._in_shape)

    def config(self) -> dict[str, Any]:
        return {"type": "Reshape", "shape": list(self.shape)}

    @property
    def input_shape(self) -> Shape:
        return (math.prod(self.shape),)

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        if math.prod(input_shape) != math.prod(self.shape):
            size = math.prod(self.shape)
            raise ValueError(f"{self!r} takes samples of {size} values, got shape {tuple(input_shape)}")
        return self.shape


def _pair(value: int | Sequence[int], what: str, low: int) -> tuple[int, int]:
    """``k`` or ``(kh, kw)`` as ``(kh, kw)``, each at least ``low``."""
    pair = (int(value), int(value)) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < low:
        raise ValueError(f"{what} must be an integer >= {low} or a pair of them, got {value!r}")
    return pair[0], pair[1]


def windows(x: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    r"""Every :math:`k_h \times k_w` window of a batch of images, a view without copies.

    For ``x`` of shape :math:`(m, C, H, W)` the result has shape
    :math:`(m, C, H_o, W_o, k_h, k_w)`, with :math:`H_o = \lfloor (H - k_h)/s_h \rfloor + 1`
    (likewise :math:`W_o`), and entry :math:`[n, c, i, j, p, q] = x[n, c, s_h i + p, s_w j + q]`.
    Rows and columns that no window reaches (when the stride does not divide
    :math:`H - k_h`) are left out, as PyTorch does.
    """
    view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def window_sums(grad_windows: Array, shape: Sequence[int], stride: tuple[int, int]) -> Array:
    r"""The adjoint of :func:`windows` (col2im): each window's entries added back where they came from.

    Given :math:`D` of shape :math:`(m, C, H_o, W_o, k_h, k_w)`, returns :math:`\partial L/\partial x`
    of ``shape`` :math:`(m, C, H, W)`:

    .. math:: \frac{\partial L}{\partial x_{n,c,y,x}} = \sum_{i,j,p,q:\ s_h i + p = y,\ s_w j + q = x} D_{n,c,i,j,p,q}

    Overlapping windows (stride smaller than the kernel) add up; positions that no window
    reaches get 0.  One vectorised add per kernel offset :math:`(p, q)`, i.e.
    :math:`k_h k_w` adds of a strided slice (faster here than ``np.add.at`` on the
    scattered indices; see ``docs/math.md``).
    """
    m, c, h_out, w_out, kh, kw = grad_windows.shape
    sh, sw = stride
    out = np.zeros(tuple(shape), dtype=grad_windows.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, :, p : p + sh * (h_out - 1) + 1 : sh, q : q + sw * (w_out - 1) + 1 : sw] += grad_windows[..., p, q]
    return out


def _padded(x: Array, padding: tuple[int, int], value: float = 0.0) -> Array:
    if padding == (0, 0):
        return x
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _unpadded(grad: Array, padding: tuple[int, int]) -> Array:
    ph, pw = padding
    return grad[:, :, ph : grad.shape[2] - ph, pw : grad.shape[3] - pw]


class _Windowed(Layer, abstract=True):
    """What a convolution and a pooling layer share: kernel, stride, padding and the output size."""

    def __init__(
        self, kernel_size: int | Sequence[int], stride: int | Sequence[int], padding: int | Sequence[int]
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, f"{type(self).__name__} kernel_size", 1)
        self.stride = _pair(stride, f"{type(self).__name__} stride", 1)
        self.padding = _pair(padding, f"{type(self).__name__} padding", 0)

    def spatial_output(self, height: int, width: int) -> tuple[int, int]:
        r""":math:`H_o = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1`, likewise :math:`W_o`; ``ValueError`` if < 1."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if height + 2 * ph < kh or width + 2 * pw < kw:
            raise ValueError(f"{self!r} needs images of at least {kh - 2 * ph}x{kw - 2 * pw}, got {height}x{width}")
        return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1

    def _check_input(self, input_shape: Sequence[int], channels: int | None) -> tuple[int, int, int]:
        shape = tuple(input_shape)
        if len(shape) != 3 or (channels is not None and shape[0] != channels):
            want = f"({channels}, H, W)" if channels is not None else "(C, H, W)"
            raise ValueError(f"{self!r} takes samples of shape {want}, got {shape}")
        return shape[0], *self.spatial_output(shape[1], shape[2])

    def _window_config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}


class Conv2D(_Windowed):
    r"""Two-dimensional convolution (cross-correlation, as in PyTorch) with zero padding.

    Input :math:`X` of shape :math:`(m, C, H, W)`, weights :math:`W` of shape
    :math:`(O, C, k_h, k_w)` (PyTorch's layout), output :math:`Z` of shape :math:`(m, O, H_o, W_o)`:

    .. math:: Z_{n,o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}\, X^{pad}_{n,c,\,s_h i + p,\,s_w j + q}

    computed as one matrix product (im2col): the windows of :math:`X^{pad}` (:func:`windows`)
    copied into the matrix :math:`P` of shape :math:`(m H_o W_o, C k_h k_w)`, one row per
    output position, so that :math:`Z = P\, W_{mat}^\top + \mathbf 1 b` with
    :math:`W_{mat}` the :math:`(O, C k_h k_w)` reshape of :math:`W`.  Backward, given
    :math:`G = \partial L/\partial Z` as the matrix :math:`G_{mat}` of shape :math:`(m H_o W_o, O)`:

    .. math::
        \frac{\partial L}{\partial W_{mat}} = G_{mat}^\top P,\quad
        \frac{\partial L}{\partial b} = \mathbf 1^\top G_{mat},\quad
        \frac{\partial L}{\partial P} = G_{mat} W_{mat}

    and :math:`\partial L/\partial X` is :math:`\partial L/\partial P` added back to the
    positions each row came from (col2im, :func:`window_sums`), the padding cropped.
    ``P`` is the largest temporary of a training step: :math:`m H_o W_o C k_h k_w`
    numbers, kept from forward to backward.

    Parameters
    ----------
    in_channels, out_channels : int
        :math:`C` and :math:`O`.
    kernel_size, stride, padding : int or pair of int
        :math:`(k_h, k_w)`, :math:`(s_h, s_w)` (default 1) and the zeros added on each
        side, :math:`(p_h, p_w)` (default 0).
    init : str
        Initialiser of :mod:`ml_math_nn.init`, drawn with fan-in :math:`C k_h k_w` and
        fan-out :math:`O`.
    rng : numpy.random.Generator, optional
        Source of the initial weights; without one they start at zero.
    dtype : numpy dtype
        Floating type of the parameters.
    bias : bool
        Whether to add :math:`b` (not before :class:`BatchNorm`, which cancels it).
    """

    weight_names = ("W",)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        init: str = "he_normal",
        rng: np.random.Generator | None = None,
        dtype: np.dtype[Any] | type = np.float32,
        bias: bool = True,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2D channels must be >= 1, got in={in_channels}, out={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.init, self.bias = init, bool(bias)
        draw = initializers.get(init)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        if rng is None:
            weights = np.zeros(shape, dtype=dtype)
        else:  # drawn as the (fan_in, O) matrix W_mat^T
            weights = np.ascontiguousarray(draw(fan_in, self.out_channels, rng).T.reshape(shape), dtype=dtype)
        self.params = {"W": weights}
        if self.bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._cache: tuple[Array, tuple[int, ...]] | None = None  # P, the padded input's shape

    def forward(self, x: Array, training: bool = False) -> Array:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} takes batches of shape (m, {self.in_channels}, H, W), got {x.shape}")
        m = x.shape[0]
        h_out, w_out = self.spatial_output(x.shape[2], x.shape[3])
        xp = _padded(x, self.padding)
        win = windows(xp, self.kernel_size, self.stride)  # (m, C, Ho, Wo, kh, kw), a view
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(m * h_out * w_out, -1)  # P: the one copy
        self._cache = (cols, xp.shape)
        z = cols @ self.params["W"].reshape(self.out_channels, -1).T
        if self.bias:
            z += self.params["b"]
        # rows (n, i, j) x columns o -> (m, O, Ho, Wo), a transposed view of the product
        return z.reshape(m, h_out, w_out, self.out_channels).transpose(0, 3, 1, 2)

    def _grad_matrix(self, grad: Array) -> Array:
        return grad.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)

    def param_grads(self, grad: Array) -> None:
        r"""Store :math:`G_{mat}^\top P` and :math:`\mathbf 1^\top G_{mat}` only (a network's first layer)."""
        if self._cache is None:
            raise RuntimeError("Conv2D.backward called before forward")
        cols = self._cache[0]
        g = self._grad_matrix(grad)
        np.matmul(g.T, cols, out=self.grads["W"].reshape(self.out_channels, -1))
        if self.bias:
            g.sum(axis=0, out=self.grads["b"])

    def backward(self, grad: Array) -> Array:
        self.param_grads(grad)
        assert self._cache is not None
        padded_shape = self._cache[1]
        m, h_out, w_out = grad.shape[0], grad.shape[2], grad.shape[3]
        d_cols = self._grad_matrix(grad) @ self.params["W"].reshape(self.out_channels, -1)
        d_win = d_cols.reshape(m, h_out, w_out, self.in_channels, *self.kernel_size).transpose(0, 3, 1, 2, 4, 5)
        return _unpadded(window_sums(d_win, padded_shape, self.stride), self.padding)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "Conv2D",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            **self._window_config(),
            "init": self.init,
        }
        if not self.bias:
            out["bias"] = False
        return out

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        _, h_out, w_out = self._check_input(input_shape, self.in_channels)
        return (self.out_channels, h_out, w_out)

    def unit_weights(self) -> Array:
        """The filters, shape :math:`(O, C, k_h, k_w)`: one per output channel."""
        return self.params["W"]

    def multiply_adds(self, input_shape: Sequence[int]) -> int:
        r""":math:`H_o W_o \cdot O \cdot C k_h k_w` per sample (the product :math:`P W_{mat}^\top`)."""
        _, h_out, w_out = self.output_shape(input_shape)
        return h_out * w_out * self.out_channels * self.in_channels * self.kernel_size[0] * self.kernel_size[1]


class _Pool(_Windowed, abstract=True):
    """A pooling layer: each channel's windows reduced to one value, channels kept."""

    pad_value: ClassVar[float] = 0.0

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ) -> None:
        super().__init__(kernel_size, kernel_size if stride is None else stride, padding)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(f"{type(self).__name__} padding must be at most half the kernel size, got {padding!r}")
        self._shape: tuple[int, ...] | None = None  # of the padded input

    def _windows(self, x: Array) -> Array:
        if x.ndim != 4:
            raise ValueError(f"{self!r} takes batches of shape (m, C, H, W), got {x.shape}")
        self.spatial_output(x.shape[2], x.shape[3])
        xp = _padded(x, self.padding, self.pad_value)
        self._shape = xp.shape
        return windows(xp, self.kernel_size, self.stride)

    def _scatter(self, d_win: Array) -> Array:
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return _unpadded(window_sums(d_win, self._shape, self.stride), self.padding)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **self._window_config()}

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        return self._check_input(input_shape, None)


class MaxPool2D(_Pool):
    r"""Max pooling: each window of each channel gives its largest entry.

    .. math:: A_{n,c,i,j} = \max_{p,q} X^{pad}_{n,c,\,s_h i + p,\,s_w j + q}

    Backward routes each :math:`G_{n,c,i,j}` to the one entry that gave the maximum
    (the index form of ``docs/math.md``); overlapping windows that share a maximum add
    their gradients there.  **Ties** go to the first maximal entry of the window in row-major
    order (smallest :math:`p`, then smallest :math:`q`), as PyTorch's CPU kernel does, so
    the gradient is a valid subgradient.  Padding (at most half the kernel) is
    :math:`-\infty`, which is never the maximum.

    Parameters
    ----------
    kernel_size : int or pair of int
        :math:`(k_h, k_w)`.
    stride : int or pair of int, optional
        :math:`(s_h, s_w)`; default the kernel size (windows side by side).
    padding : int or pair of int
        :math:`(p_h, p_w)`, at most half the kernel size.
    """

    pad_value = -np.inf

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        self._argmax: NDArray[np.intp] | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        win = self._windows(x)
        flat = win.reshape(*win.shape[:4], -1)  # a copy: (m, C, Ho, Wo, kh kw)
        self._argmax = flat.argmax(axis=-1)[..., None]  # the first maximum of each window
        return np.take_along_axis(flat, self._argmax, axis=-1)[..., 0]

    def backward(self, grad: Array) -> Array:
        if self._argmax is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        kh, kw = self.kernel_size
        d_flat = np.zeros((*grad.shape, kh * kw), dtype=grad.dtype)
        np.put_along_axis(d_flat, self._argmax, grad[..., None], axis=-1)
        return self._scatter(d_flat.reshape(*grad.shape, kh, kw))


class AvgPool2D(_Pool):
    r"""Average pooling: each window of each channel gives its mean.

    .. math:: A_{n,c,i,j} = \frac{1}{k_h k_w} \sum_{p,q} X^{pad}_{n,c,\,s_h i + p,\,s_w j + q},\qquad
              \frac{\partial L}{\partial X^{pad}_{n,c,y,x}} = \frac{1}{k_h k_w}
              \sum_{(i,j) \ni (y,x)} G_{n,c,i,j}

    Zero padding counts in the mean (PyTorch's ``count_include_pad=True``, its default).

    Parameters
    ----------
    kernel_size : int or pair of int
        :math:`(k_h, k_w)`.
    stride : int or pair of int, optional
        :math:`(s_h, s_w)`; default the kernel size.
    padding : int or pair of int
        :math:`(p_h, p_w)` zeros on each side, at most half the kernel size.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        out: Array = self._windows(x).mean(axis=(-2, -1))
        return out

    def backward(self, grad: Array) -> Array:
        kh, kw = self.kernel_size
        share = grad * grad.dtype.type(1.0 / (kh * kw))
        return self._scatter(np.broadcast_to(share[..., None, None], (*grad.shape, kh, kw)))
