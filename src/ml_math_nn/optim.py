r"""Optimisers: turn stored gradients into parameter updates.

Every optimiser has one interface, :meth:`Optimizer.step`, which takes either
``(name, param, grad)`` triples (see :meth:`ml_math_nn.network.Network.parameters`) or a
:class:`ParameterBuffer` (see :meth:`ml_math_nn.network.Network.flat_parameters`);
``param`` is updated in place and ``grad`` is only read.  Computing gradients and applying
updates are separate steps: the network fills the grads, :meth:`Optimizer.step` uses them.

Notation shared by the docstrings: :math:`\theta` a parameter, :math:`g_t` its gradient at
step :math:`t = 1, 2, \dots`, :math:`\eta` the learning rate ``lr`` (which a learning-rate
schedule may change between steps, see :mod:`ml_math_nn.schedules`) and :math:`\lambda`
the weight decay.  Every update rule that PyTorch has (``torch.optim``) follows it, default
and placement of :math:`\epsilon` included, so the tests can compare the two to rounding
error; :class:`Lion`, which PyTorch lacks, follows its paper.

**The rule and its arrays.**  A subclass implements :meth:`Optimizer.update`, the rule
applied to one array of parameters and its gradient.  It finds its state (moment
estimates, momentum buffers) and reusable scratch arrays in the :class:`Workspace` it is
handed, so the same code serves one tensor or many laid end to end.  The state lives in
``self.state`` as one array per ``"<slot>/<parameter name>"``; :meth:`Optimizer.state_dict`
flattens it to ``{"t": ..., "lr": ..., "<slot>/<parameter name>": array}``, which
``np.savez`` stores without pickle, and :meth:`Optimizer.load_state_dict` restores it.

**The flat update is a contract.**  A class that sets :attr:`Optimizer.elementwise` states
that its rule treats every element on its own (the same operations on each element, state
included).  Only such an optimiser, handed a :class:`ParameterBuffer`, updates all the
parameters in one call on the two flat arrays: a handful of numpy calls per step instead
of a handful per tensor, with the same numbers to the bit (each element goes through the
same operations).  Its state arrays are then views of flat state arrays, still one per
``"<slot>/<parameter name>"``.  Any other rule (a per-tensor norm, a trust ratio, an
orthogonalisation) gets one :meth:`~Optimizer.update` call per tensor, whatever the memory
layout.

**Allocation.**  The scratch arrays are allocated on the first step and reused (they are not
state and are never saved or pickled), so from the second step on a step allocates no
array the size of a parameter: a fresh temporary the size of a large parameter costs page
faults on every step.  Only a few small Python objects are made per tensor updated on its
own (none per flat update).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from ._registry import Registry
from ._types import Array

Parameters = Iterable[tuple[str, Array, Array]]
T = TypeVar("T")
StateDict = dict[str, Array | float]
"""Flat optimiser state: ``"t"``, ``"lr"`` and one array per ``"<slot>/<parameter name>"``."""
Layout = tuple[tuple[str, tuple[int, ...]], ...]
"""Each tensor's name and shape, in the order they lie in a :class:`ParameterBuffer`."""


def _check_unit_interval(value: float, what: str) -> None:
    """Raise unless ``0 <= value < 1`` (momentum and averaging coefficients)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")


def _check_betas(betas: Sequence[float], what: str) -> list[float]:
    """Two coefficients in [0, 1), as a list (as they read back from JSON)."""
    if len(betas) != 2:
        raise ValueError(f"{what} betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas, start=1):
        _check_unit_interval(beta, f"{what} beta{i}")
    return [float(beta) for beta in betas]


class ParameterBuffer:
    r"""Every parameter end to end in one 1-D array, every gradient in another.

    This is the contract of the flat update: a model that lays out its parameters this
    way hands the buffer to :meth:`Optimizer.step`; an elementwise optimiser updates
    :attr:`param` from :attr:`grad` in one pass, any other iterates the buffer, which
    yields each tensor's ``(name, param, grad)`` as views of the two flat arrays.

    Parameters
    ----------
    layout : sequence of (str, tuple of int)
        Each tensor's name (unique) and shape, in order: tensor :math:`i` occupies
        elements :math:`o_i \dots o_i + n_i - 1` of both flat arrays, with
        :math:`o_i = \sum_{j<i} n_j` and :math:`n_i` its number of elements.
    dtype : numpy dtype
        Of the parameters and of the gradients.

    Attributes
    ----------
    param, grad : numpy.ndarray
        The two flat arrays (1-D, contents undefined until written, see :meth:`pack`).
    layout : tuple of (str, tuple of int)
        As given.
    tensors : tuple of (str, numpy.ndarray, numpy.ndarray)
        Each tensor's name and its views of :attr:`param` and :attr:`grad`, shaped as the
        tensor; the model makes these views its own arrays.
    """

    def __init__(self, layout: Iterable[tuple[str, Sequence[int]]], dtype: np.dtype[Any] | type) -> None:
        self.layout: Layout = tuple((str(name), tuple(int(n) for n in shape)) for name, shape in layout)
        names = [name for name, _ in self.layout]
        if len(set(names)) != len(names):
            raise ValueError(f"ParameterBuffer: tensor names must be unique, got {names}")
        size = sum(math.prod(shape) for _, shape in self.layout)
        self.param: Array = np.empty(size, dtype=dtype)
        self.grad: Array = np.empty(size, dtype=dtype)
        self.tensors = tuple(
            (name, param, grad)
            for (name, _), param, grad in zip(self.layout, self.views(self.param), self.views(self.grad), strict=True)
        )

    @classmethod
    def pack(cls, tensors: Iterable[tuple[str, Array, Array]]) -> ParameterBuffer:
        """A buffer holding copies of the values of ``(name, param, grad)`` triples of one dtype."""
        tensors = list(tensors)
        dtypes = {a.dtype for _, param, grad in tensors for a in (param, grad)}
        if len(dtypes) != 1:
            raise ValueError(
                f"ParameterBuffer.pack: the parameters and grads need one dtype, got {sorted(map(str, dtypes))}"
            )
        for name, param, grad in tensors:
            if param.shape != grad.shape:
                raise ValueError(f"ParameterBuffer.pack: {name} has shape {param.shape} but its grad {grad.shape}")
        buffer = cls([(name, param.shape) for name, param, _ in tensors], dtypes.pop())
        for (_, param, grad), (_, param_view, grad_view) in zip(tensors, buffer.tensors, strict=True):
            param_view[...], grad_view[...] = param, grad
        return buffer

    def views(self, flat: Array) -> list[Array]:
        """``flat`` (1-D, as long as :attr:`param`) cut into one view per tensor, shaped as the tensor."""
        return _cut(flat, self.layout)

    def __iter__(self) -> Iterator[tuple[str, Array, Array]]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __repr__(self) -> str:
        return f"ParameterBuffer({len(self)} tensors, {self.param.size} {self.param.dtype} elements)"


def _reused(arrays: list[Array], index: int, like: Array) -> Array:
    """``arrays[index]``, (re)allocated like ``like`` when missing or of another shape or dtype."""
    while len(arrays) <= index:
        arrays.append(np.empty_like(like))
    if arrays[index].shape != like.shape or arrays[index].dtype != like.dtype:
        arrays[index] = np.empty_like(like)
    return arrays[index]


class Workspace:
    """The state and scratch arrays one :meth:`Optimizer.update` call works with.

    Shaped like the ``param`` of that call: one tensor's, or all of a
    :class:`ParameterBuffer`'s as one flat array.  A rule asks for what it needs by name,
    so it never knows (nor needs to) which of the two it got.
    """

    def slot(self, slot: str) -> Array:
        """The state array ``slot`` (one of the optimiser's :attr:`~Optimizer.slots`), zeros at first."""
        raise NotImplementedError

    def scratch(self, index: int = 0) -> Array:
        """Reusable scratch array number ``index``: never saved, its contents garbage on entry."""
        raise NotImplementedError


class _TensorWorkspace(Workspace):
    """One tensor's: its entries of ``optimizer.state`` and its own scratch arrays."""

    __slots__ = ("optimizer", "name", "param")

    def __init__(self, optimizer: Optimizer, name: str, param: Array) -> None:
        self.optimizer, self.name, self.param = optimizer, name, param

    def slot(self, slot: str) -> Array:
        return self.optimizer._tensor_slot(self.name, slot, self.param)

    def scratch(self, index: int = 0) -> Array:
        return _reused(self.optimizer._scratch.setdefault(self.name, []), index, self.param)


class _FlatWorkspace(Workspace):
    """All the tensors of a :class:`ParameterBuffer` layout at once.

    A state slot is one flat array, made on first use from the tensors' state so far;
    each tensor's entry in ``optimizer.state`` then becomes a view of it.
    """

    def __init__(self, optimizer: Optimizer, buffer: ParameterBuffer) -> None:
        self.optimizer, self.layout, self.dtype = optimizer, buffer.layout, buffer.param.dtype
        self.size = buffer.param.size
        self.like = buffer.param  # what the scratch arrays are shaped like
        self.slots: dict[str, Array] = {}
        self.arrays: list[Array] = []

    def fits(self, buffer: ParameterBuffer) -> bool:
        """Whether ``buffer`` has this layout and dtype (the same object, usually)."""
        return (buffer.layout is self.layout or buffer.layout == self.layout) and buffer.param.dtype == self.dtype

    def slot(self, slot: str) -> Array:
        flat = self.slots.get(slot)
        if flat is None:
            flat = np.zeros(self.size, dtype=self.dtype)
            for (name, _), view in zip(self.layout, _cut(flat, self.layout), strict=True):
                view[...] = self.optimizer._tensor_slot(name, slot, view)  # the state so far (zeros if none)
                self.optimizer.state[name][slot] = view
            self.slots[slot] = flat
        return flat

    def scratch(self, index: int = 0) -> Array:
        return _reused(self.arrays, index, self.like)


def _cut(flat: Array, layout: Layout) -> list[Array]:
    """``flat`` cut into one view per tensor of ``layout``, in order, shaped as the tensor."""
    views, start = [], 0
    for _, shape in layout:
        size = math.prod(shape)
        views.append(flat[start : start + size].reshape(shape))
        start += size
    return views


class Optimizer:
    r"""Base class: the step counter, learning rate, weight decay, state and the step itself.

    A subclass sets ``name`` (which registers it: :func:`make_optimizer` and
    ``config()["type"]`` use the name), its state :attr:`slots`, whether its rule is
    :attr:`elementwise`, and implements :meth:`update`.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta > 0`; may be changed between steps.
    weight_decay : float
        :math:`\lambda \ge 0`.  Unless a class says otherwise it is the coupled (L2) form,
        added to the gradient, :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}`, as PyTorch
        does for every optimiser except AdamW (which decouples it, see :class:`AdamW`).
    """

    name: ClassVar[str] = ""
    """The name that selects the class in options (``"adam"``); an unnamed class is not registered."""
    registry: ClassVar[Registry[type[Optimizer]]] = Registry("optimizer")
    """Every named optimiser class, by name (see :mod:`ml_math_nn._registry`)."""
    slots: ClassVar[tuple[str, ...]] = ()
    """Names of the per-parameter state arrays this optimiser keeps."""
    elementwise: ClassVar[bool] = False
    """Whether :meth:`update` treats each element on its own, so that it may be applied to
    all the parameters of a :class:`ParameterBuffer` at once (see the module docstring).
    False unless a class states it: a rule that is not elementwise must leave it False."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.registry.add(cls)

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"{type(self).__name__}: learning rate must be a finite number > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"{type(self).__name__}: weight decay must be >= 0, got {weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, dict[str, Array]] = {}
        self.t = 0
        self._scratch: dict[str, list[Array]] = {}  # per tensor updated on its own
        self._flat: _FlatWorkspace | None = None  # of the last ParameterBuffer updated at once

    def step(self, parameters: Parameters | ParameterBuffer) -> None:
        """Apply one update to every parameter from its gradient (step :math:`t` += 1).

        Parameters
        ----------
        parameters : iterable of (name, param, grad), or ParameterBuffer
            Triples get one :meth:`update` call each.  A :class:`ParameterBuffer` gets one
            call on its two flat arrays if this optimiser is :attr:`elementwise`, and one
            call per tensor otherwise.
        """
        self.t += 1
        if isinstance(parameters, ParameterBuffer) and self.elementwise:
            flat = self._flat
            if flat is None or not flat.fits(parameters):
                flat = self._flat = _FlatWorkspace(self, parameters)
            self.update(parameters.param, parameters.grad, flat)
            return
        for name, param, grad in parameters:
            self.update(param, grad, _TensorWorkspace(self, name, param))

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        """Update ``param`` in place from ``grad`` (only read) at step ``self.t``.

        ``space`` holds the state and scratch arrays shaped like ``param``.
        """
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # Scratch arrays and the flat workspace are caches of the step, rebuilt on the next
        # one; pickled, they would store a copy of every parameter's worth of garbage.
        return {**self.__dict__, "_flat": None, "_scratch": {}}

    def _coupled_decay(self, param: Array, grad: Array, space: Workspace) -> Array:
        r""":math:`g + \lambda \theta` in scratch array 1 (``grad`` itself when :math:`\lambda = 0`).

        The coupled weight decay; the stored gradient is left as it is.
        """
        if not self.weight_decay:
            return grad
        decayed = space.scratch(1)
        np.multiply(param, self.weight_decay, out=decayed)
        decayed += grad
        return decayed

    def _descend(self, param: Array, direction: Array, work: Array) -> None:
        r""":math:`\theta \leftarrow \theta - \eta\, d` through ``work`` (``direction`` may be ``work``)."""
        np.multiply(direction, self.lr, out=work)
        param -= work

    def _tensor_slot(self, name: str, slot: str, like: Array) -> Array:
        """The state array ``slot`` of parameter ``name``, created as zeros like ``like`` on first use."""
        arrays = self.state.setdefault(name, {})
        array = arrays.get(slot)
        if array is None:
            array = arrays[slot] = np.zeros_like(like)
        elif array.shape != like.shape:
            raise ValueError(
                f"optimizer state {slot}/{name} has shape {array.shape} but the parameter has {like.shape}"
            )
        return array

    # -- saving and restoring ----------------------------------------------------
    def state_dict(self) -> StateDict:
        """Flat copy of the state: ``"t"``, ``"lr"`` and ``"<slot>/<parameter name>"`` arrays."""
        out: StateDict = {"t": self.t, "lr": self.lr}
        for name, arrays in self.state.items():
            for slot, value in arrays.items():
                out[f"{slot}/{name}"] = value.copy()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state with one from :meth:`state_dict` (or an ``np.load`` of it)."""
        if "t" not in state or "lr" not in state:
            raise ValueError(f"{type(self).__name__} state needs 't' and 'lr' entries, got keys {sorted(state)}")
        arrays: dict[str, dict[str, Array]] = {}
        for key, value in state.items():
            if key in ("t", "lr"):
                continue
            slot, _, name = key.partition("/")
            if slot not in self.slots or not name:
                expected = ", ".join(f"{s}/<parameter name>" for s in self.slots) or "no arrays"
                raise ValueError(f"unknown {type(self).__name__} state entry {key!r}; expected {expected}")
            arrays.setdefault(name, {})[slot] = np.array(value)
        self.t, self.lr, self.state = int(state["t"]), float(state["lr"]), arrays
        self._flat = None  # its flat state is rebuilt from the new per-parameter arrays on the next step

    def config(self) -> dict[str, Any]:
        """Type name and hyperparameters, from which :func:`optimizer_from_config` rebuilds it."""
        options = inspect.signature(type(self)).parameters
        return {"type": self.name, **{key: getattr(self, key) for key in options}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Mini-batch gradient descent with optional (Nesterov) momentum.

    With :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}` (coupled weight decay) and
    momentum :math:`\mu`, the velocity starts at :math:`b_0 = 0` and

    .. math::

        b_t = \mu\, b_{t-1} + g_t, \qquad
        d_t = \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise} \end{cases},
        \qquad \theta_t = \theta_{t-1} - \eta\, d_t .

    With :math:`\mu = 0` this is plain :math:`\theta_t = \theta_{t-1} - \eta\, g_t`.  (PyTorch
    sets :math:`b_1 = g_1`, which is the same thing since there is no dampening.)

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    nesterov : bool
        Use Nesterov's look-ahead form; needs ``momentum > 0``.
    weight_decay : float
        Coupled L2 coefficient :math:`\lambda`.
    """

    name = "sgd"
    slots = ("momentum",)
    elementwise = True

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        _check_unit_interval(momentum, "SGD momentum")
        if nesterov and momentum == 0:
            raise ValueError("SGD with nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        g, work = self._coupled_decay(param, grad, space), space.scratch()
        if self.momentum:
            b = space.slot("momentum")
            b *= self.momentum
            b += g
            if self.nesterov:
                np.multiply(b, self.momentum, out=work)
                work += g
                g = work
            else:
                g = b
        self._descend(param, g, work)


class Adam(Optimizer):
    r"""Adam: step along bias-corrected moment estimates (Kingma & Ba, 2015).

    With :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}` (coupled weight decay) and
    :math:`m_0 = v_0 = 0`,

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,

        \theta_t = \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}, \qquad
        \hat m_t = \frac{m_t}{1 - \beta_1^t},\ \hat v_t = \frac{v_t}{1 - \beta_2^t},

    elementwise.  :math:`\epsilon` is added after the square root of the *bias-corrected*
    :math:`\hat v_t`, as in PyTorch.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta`.
    betas : (float, float)
        Decay rates :math:`\beta_1, \beta_2 \in [0, 1)` of the two moment estimates.
    eps : float
        :math:`\epsilon > 0`, keeps the denominator away from zero.
    weight_decay : float
        Coupled L2 coefficient :math:`\lambda`.
    """

    name = "adam"
    slots = ("m", "v")
    elementwise = True

    def __init__(
        self, lr: float, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.betas = _check_betas(betas, type(self).__name__)  # a list, as it reads back from JSON
        if not eps > 0:
            raise ValueError(f"{type(self).__name__} eps must be > 0, got {eps}")
        self.eps = float(eps)

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        self._adam(param, self._coupled_decay(param, grad, space), space)

    def _adam(self, param: Array, g: Array, space: Workspace) -> None:
        """The moment update and step shared by Adam and AdamW."""
        b1, b2 = self.betas
        m, v, work = space.slot("m"), space.slot("v"), space.scratch()
        np.subtract(g, m, out=work)  # m + (1 - b1)(g - m), PyTorch's lerp
        work *= 1 - b1
        m += work
        v *= b2
        np.square(g, out=work)
        work *= 1 - b2
        v += work
        # sqrt(v_hat) + eps = (sqrt(v) + eps sqrt(c2)) / sqrt(c2), with c2 = 1 - b2^t: the
        # 1/sqrt(c2) moves into the step size, one pass over the parameter fewer.
        root_c2 = math.sqrt(1 - b2**self.t)
        np.sqrt(v, out=work)
        work += self.eps * root_c2
        np.divide(m, work, out=work)
        work *= self.lr * root_c2 / (1 - b1**self.t)
        param -= work


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The decay shrinks the parameter directly instead of entering the gradient, so it is
    not rescaled by the adaptive denominator:

    .. math::

        \theta_{t-1} \leftarrow (1 - \eta \lambda)\, \theta_{t-1},

    then the :class:`Adam` update with the raw gradient :math:`g_t` (no L2 term).
    The default :math:`\lambda = 0.01` is PyTorch's.
    """

    name = "adamw"

    def __init__(
        self, lr: float, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay)

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        param *= 1 - self.lr * self.weight_decay
        self._adam(param, grad, space)


class RMSprop(Optimizer):
    r"""RMSprop: divide by a running root mean square of the gradients (Hinton, 2012).

    With :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}` (coupled weight decay) and
    :math:`v_0 = b_0 = 0`,

    .. math::

        v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2, \qquad
        b_t = \mu\, b_{t-1} + \frac{g_t}{\sqrt{v_t} + \epsilon}, \qquad
        \theta_t = \theta_{t-1} - \eta\, b_t,

    elementwise; with :math:`\mu = 0`, :math:`b_t` is just the scaled gradient.
    :math:`\epsilon` is added after the square root (PyTorch's non-centred form).

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta`.
    alpha : float
        Decay rate :math:`\alpha \in [0, 1)` of the mean square.
    eps : float
        :math:`\epsilon > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    weight_decay : float
        Coupled L2 coefficient :math:`\lambda`.
    """

    name = "rmsprop"
    slots = ("square_avg", "momentum")
    elementwise = True

    def __init__(
        self, lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        _check_unit_interval(alpha, "RMSprop alpha")
        _check_unit_interval(momentum, "RMSprop momentum")
        if not eps > 0:
            raise ValueError(f"RMSprop eps must be > 0, got {eps}")
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        g, work = self._coupled_decay(param, grad, space), space.scratch()
        v = space.slot("square_avg")
        v *= self.alpha
        np.square(g, out=work)
        work *= 1 - self.alpha
        v += work
        np.sqrt(v, out=work)
        work += self.eps
        scaled = np.divide(g, work, out=work)
        if self.momentum:
            b = space.slot("momentum")
            b *= self.momentum
            b += scaled
            scaled = b
        self._descend(param, scaled, work)


class AdaGrad(Optimizer):
    r"""AdaGrad: per-coordinate steps shrinking with the accumulated squared gradient.

    With :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}` (coupled weight decay) and
    :math:`s_0 = 0`,

    .. math::

        s_t = s_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon},

    elementwise (Duchi, Hazan & Singer, 2011), with PyTorch's default :math:`\epsilon = 10^{-10}`.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta`.
    eps : float
        :math:`\epsilon > 0`.
    weight_decay : float
        Coupled L2 coefficient :math:`\lambda`.
    """

    name = "adagrad"
    slots = ("sum",)
    elementwise = True

    def __init__(self, lr: float, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not eps > 0:
            raise ValueError(f"AdaGrad eps must be > 0, got {eps}")
        self.eps = float(eps)

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        g, work = self._coupled_decay(param, grad, space), space.scratch()
        s = space.slot("sum")
        np.square(g, out=work)
        s += work
        np.sqrt(s, out=work)
        work += self.eps
        self._descend(param, np.divide(g, work, out=work), work)


class Lion(Optimizer):
    r"""Lion: step by the sign of an interpolated momentum (Chen et al., 2023).

    "Symbolic Discovery of Optimization Algorithms" (EvoLved Sign Momentum).  With
    :math:`m_0 = 0`,

    .. math::

        c_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        \theta_t = \theta_{t-1} - \eta \left(\operatorname{sign}(c_t) + \lambda\, \theta_{t-1}\right),

        m_t = \beta_2 m_{t-1} + (1 - \beta_2)\, g_t,

    elementwise, with :math:`\operatorname{sign}(0) = 0`.  Every coordinate moves by exactly
    :math:`\eta` (plus the decay), so the paper advises a rate 3-10 times smaller than
    AdamW's and a weight decay 3-10 times larger.  The weight decay is decoupled, as in
    the paper: it shrinks :math:`\theta` directly and does not enter :math:`c_t` or
    :math:`m_t`.  The interpolations are computed as :math:`m + (1 - \beta)(g - m)`, equal
    to the above up to rounding.  PyTorch has no Lion; the tests check it against the
    equations written out.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta`.
    betas : (float, float)
        :math:`\beta_1, \beta_2 \in [0, 1)`: the interpolation of the update direction and
        the decay rate of the momentum (the paper's defaults 0.9 and 0.99).
    weight_decay : float
        Decoupled decay coefficient :math:`\lambda`.
    """

    name = "lion"
    slots = ("m",)
    elementwise = True

    def __init__(self, lr: float, betas: Sequence[float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.betas = _check_betas(betas, "Lion")

    def update(self, param: Array, grad: Array, space: Workspace) -> None:
        b1, b2 = self.betas
        m, work = space.slot("m"), space.scratch()
        np.subtract(grad, m, out=work)  # c = m + (1 - b1)(g - m)
        work *= 1 - b1
        work += m
        np.sign(work, out=work)
        if self.weight_decay:
            param *= 1 - self.lr * self.weight_decay
        self._descend(param, work, work)
        np.subtract(grad, m, out=work)  # m + (1 - b2)(g - m)
        work *= 1 - b2
        m += work


OPTIMIZERS: Mapping[str, type[Optimizer]] = Optimizer.registry
"""The optimisers by the name :func:`make_optimizer` and ``config()["type"]`` use (read-only;
a class that defines ``name`` adds itself)."""


def make_optimizer(name: str, lr: float, **options: Any) -> Optimizer:
    """Build the optimiser called ``name`` (a key of :data:`OPTIMIZERS`).

    ``options`` are its keyword arguments, e.g. ``make_optimizer("sgd", 0.1, momentum=0.9)``.
    """
    cls = Optimizer.registry.lookup(name)
    return build_from_options(cls, f"optimizer {name!r}", lr, **options)


def optimizer_from_config(config: Mapping[str, Any]) -> Optimizer:
    """Rebuild an optimiser (without its state) from its :meth:`Optimizer.config`."""
    options = dict(config)
    name, lr = str(options.pop("type", None)), options.pop("lr", None)
    if lr is None:
        raise ValueError(f"optimizer config needs an 'lr', got keys {sorted(config)}")
    return make_optimizer(name, lr, **options)


def build_from_options(cls: type[T], what: str, *args: Any, **options: Any) -> T:
    """``cls(*args, **options)``, with a clear error for a missing or unknown option.

    Serves :func:`make_optimizer` and :func:`ml_math_nn.schedules.make_schedule`; ``what``
    names the thing being built in the message, e.g. ``"optimizer 'sgd'"``.
    """
    accepted = list(inspect.signature(cls).parameters.values())[len(args) :]
    names = [p.name for p in accepted]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {what}; it takes {', '.join(names)}")
    missing = [p.name for p in accepted if p.default is p.empty and p.name not in options]
    if missing:
        raise ValueError(f"{what} needs option(s) {', '.join(missing)}")
    return cls(*args, **options)


def clip_grad_norm(parameters: Parameters, max_norm: float) -> float:
    r"""Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    With :math:`N = \sqrt{\sum_i \lVert g_i \rVert_2^2}` over every parameter's gradient,

    .. math::

        g_i \leftarrow g_i \cdot \min\!\left(1, \frac{c}{N + 10^{-6}}\right),

    the semantics of ``torch.nn.utils.clip_grad_norm_`` (the :math:`10^{-6}` included).
    The stored gradients are scaled **in place**, as PyTorch does: this is the one place
    that writes into gradients, between the backward pass and :meth:`Optimizer.step`.
    A non-finite :math:`N` (a diverged run) is returned as is for the caller to act on.

    Parameters
    ----------
    parameters : iterable of (name, param, grad)
        E.g. :meth:`ml_math_nn.network.Network.parameters`.
    max_norm : float
        The bound :math:`c > 0`.

    Returns
    -------
    float
        The global norm :math:`N` before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm for gradient clipping must be > 0, got {max_norm}")
    grads = [grad for _, _, grad in parameters]
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return norm
