r"""Optimisers: turn stored gradients into parameter updates.

Every optimiser has one interface, ``step(parameters)``, where ``parameters`` yields
``(name, param, grad)`` triples (see :meth:`ml_math_nn.network.Network.parameters`);
``param`` is updated in place and ``grad`` is only read.  Computing gradients and applying
updates are separate steps: the network fills the grads, :meth:`Optimizer.step` uses them.

Notation shared by the docstrings: :math:`\theta` a parameter, :math:`g_t` its gradient at
step :math:`t = 1, 2, \dots`, :math:`\eta` the learning rate ``lr`` (which a learning-rate
schedule may change between steps, see :mod:`ml_math_nn.schedules`) and :math:`\lambda`
the weight decay.  Every update rule, default and placement of :math:`\epsilon` is
PyTorch's (``torch.optim``), so the tests can compare the two to rounding error.

Per-parameter state (moment estimates, momentum buffers) lives in ``self.state`` as plain
arrays keyed by the parameter's name.  :meth:`Optimizer.state_dict` flattens it to
``{"t": ..., "lr": ..., "<slot>/<parameter name>": array}``, which ``np.savez`` stores
without pickle, and :meth:`Optimizer.load_state_dict` restores it.

Each update works in place through one scratch array per parameter, allocated on the
first step and reused (it is not state and is never saved), so a step allocates nothing:
a fresh temporary the size of a large parameter costs page faults on every step.

Every update rule here is elementwise, so when the parameters lie end to end in one
buffer and their gradients in another (as :class:`~ml_math_nn.network.Network` lays them
out), :meth:`Optimizer.step` updates all of them as one flat array: a handful of numpy
calls per step instead of a handful per parameter.  The state arrays are then views of
flat state arrays, still one per ``"<slot>/<parameter name>"``, and the numbers are the
same to the bit (each element goes through the same operations).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from ._types import Array

Parameters = Iterable[tuple[str, Array, Array]]
T = TypeVar("T")
StateDict = dict[str, Array | float]
"""Flat optimiser state: ``"t"``, ``"lr"`` and one array per ``"<slot>/<parameter name>"``."""
FLAT = "<all>"
"""The name :meth:`Optimizer.step` passes to ``update`` for all parameters as one flat array."""


def _check_unit_interval(value: float, what: str) -> None:
    """Raise unless ``0 <= value < 1`` (momentum and averaging coefficients)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")


class Optimizer:
    r"""Base class: the step counter, learning rate, coupled weight decay and state.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta > 0`; may be changed between steps.
    weight_decay : float
        :math:`\lambda \ge 0`.  Here it is the coupled (L2) form, added to the gradient,
        :math:`g_t \leftarrow g_t + \lambda \theta_{t-1}`, as PyTorch does for every
        optimiser except AdamW (which decouples it, see :class:`AdamW`).
    """

    slots: ClassVar[tuple[str, ...]] = ()
    """Names of the per-parameter state arrays this optimiser keeps."""

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"{type(self).__name__}: learning rate must be a finite number > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"{type(self).__name__}: weight decay must be >= 0, got {weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, dict[str, Array]] = {}
        self.t = 0
        self._scratch: dict[str, Array] = {}
        self._run: _Run | None = None
        self._flat_state: dict[str, Array] = {}

    def step(self, parameters: Parameters) -> None:
        """Apply one update to every parameter from its gradient (step :math:`t` += 1).

        Parameters laid end to end in one buffer, with their gradients in another, are
        updated in one go as the flat parameter :data:`FLAT` (see the module docstring).
        """
        self.t += 1
        triples = list(parameters)
        run = self._run
        if run is None or not run.matches(triples):
            run = _Run.find(triples)
            if run is not None:
                self._run, self._flat_state = run, {}
        if run is not None:
            self.update(FLAT, run.param, run.grad)
        else:
            for name, param, grad in triples:
                self.update(name, param, grad)

    def update(self, name: str, param: Array, grad: Array) -> None:
        """Update ``param`` in place from ``grad`` at step ``self.t``."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # The run, flat state and scratch arrays are caches of the step, rebuilt on the next
        # one; pickled, the run would hold a stale copy of every parameter and gradient.
        return {**self.__dict__, "_run": None, "_flat_state": {}, "_scratch": {}}

    def _l2(self, param: Array, grad: Array) -> Array:
        r""":math:`g + \lambda \theta` in a new array (the stored gradient is left as is)."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def _work(self, name: str, param: Array) -> Array:
        """The reusable scratch array of parameter ``name`` (its contents are garbage)."""
        work = self._scratch.get(name)
        if work is None or work.shape != param.shape or work.dtype != param.dtype:
            work = self._scratch[name] = np.empty_like(param)
        return work

    def _descend(self, param: Array, direction: Array, work: Array) -> None:
        r""":math:`\theta \leftarrow \theta - \eta\, d` through ``work`` (``direction`` may be ``work``)."""
        np.multiply(direction, self.lr, out=work)
        param -= work

    def _slot(self, name: str, slot: str, param: Array) -> Array:
        """The state array ``slot`` of parameter ``name``, created as zeros on first use."""
        if name == FLAT:
            return self._flat_slot(slot)
        arrays = self.state.setdefault(name, {})
        if slot not in arrays:
            arrays[slot] = np.zeros_like(param)
        elif arrays[slot].shape != param.shape:
            raise ValueError(
                f"optimizer state {slot}/{name} has shape {arrays[slot].shape} but the parameter has {param.shape}"
            )
        return arrays[slot]

    def _flat_slot(self, slot: str) -> Array:
        """The state array ``slot`` of :data:`FLAT`; each parameter's entry in ``self.state`` is a view of it."""
        flat = self._flat_state.get(slot)
        if flat is None:
            assert self._run is not None
            flat = np.zeros_like(self._run.param)
            for name, view in self._run.views(flat):
                view[...] = self._slot(name, slot, view)  # the state so far (zeros if none)
                self.state[name][slot] = view
            self._flat_state[slot] = flat
        return flat

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
        self._flat_state = {}  # rebuilt from the new per-parameter arrays on the next step

    def config(self) -> dict[str, Any]:
        """Type name and hyperparameters, from which :func:`optimizer_from_config` rebuilds it."""
        options = inspect.signature(type(self)).parameters
        return {"type": type(self).__name__.lower(), **{key: getattr(self, key) for key in options}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class _Run:
    """Parameters lying end to end in one buffer, with their gradients end to end in another.

    ``param`` and ``grad`` are 1-D views spanning them; ``triples`` are the
    ``(name, param, grad)`` they were found from, kept to recognise the same ones on the
    next step by identity (cheap, and a kept array's identity cannot be reused).
    """

    def __init__(self, triples: list[tuple[str, Array, Array]], param: Array, grad: Array) -> None:
        self.triples, self.param, self.grad = triples, param, grad

    @classmethod
    def find(cls, triples: list[tuple[str, Array, Array]]) -> _Run | None:
        if len(triples) < 2:  # nothing to gain
            return None
        param, grad = _span([p for _, p, _ in triples]), _span([g for _, _, g in triples])
        if param is None or grad is None or param.dtype != grad.dtype:
            return None
        return cls(triples, param, grad)

    def matches(self, triples: list[tuple[str, Array, Array]]) -> bool:
        return len(triples) == len(self.triples) and all(
            a[0] == b[0] and a[1] is b[1] and a[2] is b[2] for a, b in zip(triples, self.triples, strict=True)
        )

    def views(self, flat: Array) -> Iterator[tuple[str, Array]]:
        """Each parameter's name and the part of ``flat`` (laid out like ``param``) that belongs to it."""
        start = 0
        for name, param, _ in self.triples:
            yield name, flat[start : start + param.size].reshape(param.shape)
            start += param.size


def _span(arrays: list[Array]) -> Array | None:
    """A 1-D view covering ``arrays`` when they lie end to end, in order, in one buffer; else None."""
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address = arrays[0].__array_interface__["data"][0]
    start = address - base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous:
            return None
        if a.__array_interface__["data"][0] != address:
            return None
        address += a.nbytes
    stop = address - base.__array_interface__["data"][0]
    return base[start // base.itemsize : stop // base.itemsize]


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

    slots = ("momentum",)

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        _check_unit_interval(momentum, "SGD momentum")
        if nesterov and momentum == 0:
            raise ValueError("SGD with nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, name: str, param: Array, grad: Array) -> None:
        g, work = self._l2(param, grad), self._work(name, param)
        if self.momentum:
            b = self._slot(name, "momentum", param)
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

    slots = ("m", "v")

    def __init__(
        self, lr: float, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        if len(betas) != 2:
            raise ValueError(f"{type(self).__name__} betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas, start=1):
            _check_unit_interval(beta, f"{type(self).__name__} beta{i}")
        if not eps > 0:
            raise ValueError(f"{type(self).__name__} eps must be > 0, got {eps}")
        self.betas = [float(beta) for beta in betas]  # a list, as it reads back from JSON
        self.eps = float(eps)

    def update(self, name: str, param: Array, grad: Array) -> None:
        self._adam(name, param, self._l2(param, grad))

    def _adam(self, name: str, param: Array, g: Array) -> None:
        """The moment update and step shared by Adam and AdamW."""
        b1, b2 = self.betas
        m, v = self._slot(name, "m", param), self._slot(name, "v", param)
        work = self._work(name, param)
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

    def __init__(
        self, lr: float, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay)

    def update(self, name: str, param: Array, grad: Array) -> None:
        param *= 1 - self.lr * self.weight_decay
        self._adam(name, param, grad)


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

    slots = ("square_avg", "momentum")

    def __init__(
        self, lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        _check_unit_interval(alpha, "RMSprop alpha")
        _check_unit_interval(momentum, "RMSprop momentum")
        if not eps > 0:
            raise ValueError(f"RMSprop eps must be > 0, got {eps}")
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)

    def update(self, name: str, param: Array, grad: Array) -> None:
        g, work = self._l2(param, grad), self._work(name, param)
        v = self._slot(name, "square_avg", param)
        v *= self.alpha
        np.square(g, out=work)
        work *= 1 - self.alpha
        v += work
        np.sqrt(v, out=work)
        work += self.eps
        scaled = np.divide(g, work, out=work)
        if self.momentum:
            b = self._slot(name, "momentum", param)
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

    slots = ("sum",)

    def __init__(self, lr: float, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not eps > 0:
            raise ValueError(f"AdaGrad eps must be > 0, got {eps}")
        self.eps = float(eps)

    def update(self, name: str, param: Array, grad: Array) -> None:
        g, work = self._l2(param, grad), self._work(name, param)
        s = self._slot(name, "sum", param)
        np.square(g, out=work)
        s += work
        np.sqrt(s, out=work)
        work += self.eps
        self._descend(param, np.divide(g, work, out=work), work)


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, RMSprop, AdaGrad)}
"""The optimisers by the name :func:`make_optimizer` and ``config()["type"]`` use."""


def make_optimizer(name: str, lr: float, **options: Any) -> Optimizer:
    """Build the optimiser called ``name`` (a key of :data:`OPTIMIZERS`).

    ``options`` are its keyword arguments, e.g. ``make_optimizer("sgd", 0.1, momentum=0.9)``.
    """
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
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
