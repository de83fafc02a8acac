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
