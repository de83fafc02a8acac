r"""Learning-rate schedules: set ``optimizer.lr`` once per epoch.

A schedule is built on an optimiser, whose learning rate at that moment becomes the base
rate :math:`\eta_0`; the trainer calls :meth:`Schedule.step` after every epoch (with the
monitored metric, which only :class:`ReduceOnPlateau` uses), and the schedule writes the
rate for the next epoch into ``optimizer.lr``.  After :math:`e` calls the rate is
:math:`\eta_e`, given by each class's closed form below; :math:`\eta_0` is used for the
first epoch.

Each class matches its counterpart in ``torch.optim.lr_scheduler`` (named in its
docstring) to rounding error when that scheduler is stepped once per epoch as well.
State (:meth:`Schedule.state_dict`) is a dict of plain numbers, so it can be written as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ._registry import Registry
from .optim import Optimizer, build_from_options


def _check_count(value: int, what: str, minimum: int) -> None:
    """Raise unless ``value`` is an integer ``>= minimum`` (a number of epochs)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _check_positive(value: float, what: str) -> None:
    """Raise unless ``value`` is a finite number > 0 (a rate or a factor)."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a finite number > 0, got {value}")


class Schedule:
    r"""Base class of the learning-rate schedules.

    Subclasses give the closed form :math:`\eta_e` in :meth:`lr_at`; :meth:`step`
    advances the epoch counter :math:`e` and writes :math:`\eta_e` into the optimiser.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``lr`` the schedule drives; its current ``lr`` is the base rate :math:`\eta_0`.
    """

    name: ClassVar[str] = ""
    """The name :func:`make_schedule` and ``config()["type"]`` use; an unnamed class is not registered."""
    registry: ClassVar[Registry[type[Schedule]]] = Registry("learning-rate schedule")
    """Every named schedule class, by name (see :mod:`ml_math_nn._registry`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.registry.add(cls)

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        r"""The learning rate :math:`\eta_e` after ``epoch`` steps."""
        raise NotImplementedError

    @property
    def lr(self) -> float:
        """The learning rate for the coming epoch."""
        return self.lr_at(self.epoch)

    def step(self, metric: float | None = None) -> None:
        """End of an epoch: advance and set ``optimizer.lr``.  ``metric`` is ignored here."""
        self.epoch += 1
        self.optimizer.lr = self.lr

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers that, with the same :meth:`config`, restore this schedule."""
        return {"epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output and set ``optimizer.lr`` accordingly."""
        self.epoch, self.base_lr = int(state["epoch"]), float(state["base_lr"])
        self.optimizer.lr = self.lr

    def config(self) -> dict[str, Any]:
        """Name and options, from which :func:`schedule_from_config` rebuilds the schedule."""
        return {"type": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config()!r})"


class Constant(Schedule):
    r"""The base rate throughout, :math:`\eta_e = \eta_0` (a schedule that does nothing)."""

    name = "constant"

    def lr_at(self, epoch: int) -> float:
        return self.base_lr


class StepLR(Schedule):
    r"""Multiply the rate by :math:`\gamma` every ``step_size`` epochs (torch ``StepLR``).

    .. math:: \eta_e = \eta_0\, \gamma^{\lfloor e / s \rfloor}

    Parameters
    ----------
    optimizer : Optimizer
        See :class:`Schedule`.
    step_size : int
        :math:`s \ge 1`, epochs between decays.
    gamma : float
        Factor :math:`\gamma > 0`.
    """

    name = "step"

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        _check_count(step_size, "StepLR step_size", 1)
        _check_positive(gamma, "StepLR gamma")
        self.step_size, self.gamma = step_size, float(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "step_size": self.step_size, "gamma": self.gamma}


class Exponential(Schedule):
    r"""Multiply the rate by :math:`\gamma` every epoch (torch ``ExponentialLR``).

    .. math:: \eta_e = \eta_0\, \gamma^{e}

    Parameters
    ----------
    optimizer : Optimizer
        See :class:`Schedule`.
    gamma : float
        Factor :math:`\gamma > 0`.
    """

    name = "exponential"

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        super().__init__(optimizer)
        _check_positive(gamma, "Exponential gamma")
        self.gamma = float(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "gamma": self.gamma}


class Cosine(Schedule):
    r"""Cosine annealing from :math:`\eta_0` to :math:`\eta_{min}` over :math:`T` epochs.

    .. math::

        \eta_e = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}\left(1 + \cos\frac{\pi e}{T}\right)

    (torch ``CosineAnnealingLR``).  Past :math:`T` the formula, like torch's, carries on:
    the rate climbs back to :math:`\eta_0` at :math:`2T`, so choose :math:`T` = the number
    of epochs for one smooth decay.

    Parameters
    ----------
    optimizer : Optimizer
        See :class:`Schedule`.
    t_max : int
        :math:`T \ge 1`.
    eta_min : float
        Floor :math:`\eta_{min} \ge 0`.
    """

    name = "cosine"

    def __init__(self, optimizer: Optimizer, t_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        _check_count(t_max, "Cosine t_max", 1)
        if not eta_min >= 0:
            raise ValueError(f"Cosine eta_min must be >= 0, got {eta_min}")
        self.t_max, self.eta_min = t_max, float(eta_min)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.t_max)) / 2

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "t_max": self.t_max, "eta_min": self.eta_min}


class ReduceOnPlateau(Schedule):
    r"""Divide the rate when the monitored metric stops improving (torch ``ReduceLROnPlateau``).

    A metric value :math:`x` improves on the best so far, :math:`x^*`, when
    :math:`x < x^*(1 - \tau)` in ``"min"`` mode or :math:`x > x^*(1 + \tau)` in ``"max"``
    mode (torch's relative threshold; the first value always improves).  After more than
    ``patience`` epochs in a row without improvement,

    .. math:: \eta \leftarrow \max(f\, \eta,\ \eta_{min}),

    and the count starts again.  As in torch, a decrease of less than :math:`10^{-8}` is
    skipped, so the rate settles at :math:`\eta_{min}`.

    Parameters
    ----------
    optimizer : Optimizer
        See :class:`Schedule`.
    mode : {"min", "max"}
        Whether lower (a loss) or higher (an accuracy) is better.
    factor : float
        :math:`f \in (0, 1)`.
    patience : int
        Epochs without improvement tolerated before reducing, :math:`\ge 0`.
    threshold : float
        Relative improvement :math:`\tau \ge 0` that counts.
    min_lr : float
        Floor :math:`\eta_{min} \ge 0`.
    """

    name = "plateau"
    min_decrease = 1e-8
    """torch's ``eps``: smaller reductions are not applied."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceOnPlateau mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"ReduceOnPlateau factor must be in (0, 1), got {factor}")
        _check_count(patience, "ReduceOnPlateau patience", 0)
        if not 0 <= threshold < 1:
            raise ValueError(f"ReduceOnPlateau threshold must be in [0, 1), got {threshold}")
        if not min_lr >= 0:
            raise ValueError(f"ReduceOnPlateau min_lr must be >= 0, got {min_lr}")
        self.mode, self.factor, self.patience = mode, float(factor), patience
        self.threshold, self.min_lr = float(threshold), float(min_lr)
        self.current = self.base_lr
        self.best = self.worst  # so that the first finite value improves on it
        self.bad_epochs = 0

    @property
    def lr(self) -> float:
        return self.current

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improves(self, metric: float) -> bool:
        """Whether ``metric`` beats the best value so far by the relative threshold."""
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def step(self, metric: float | None = None) -> None:
        """End of an epoch with the monitored ``metric`` (required)."""
        if metric is None:
            raise ValueError("ReduceOnPlateau.step needs the monitored metric, e.g. step(val_loss)")
        self.epoch += 1
        if self.improves(metric):
            self.best, self.bad_epochs = float(metric), 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            reduced = max(self.current * self.factor, self.min_lr)
            if self.current - reduced > self.min_decrease:
                self.current = reduced
            self.bad_epochs = 0
        self.optimizer.lr = self.lr

    def state_dict(self) -> dict[str, Any]:
        best = None if self.best == self.worst else self.best  # JSON has no infinity
        return {**super().state_dict(), "lr": self.current, "best": best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.current, self.bad_epochs = float(state["lr"]), int(state["bad_epochs"])
        self.best = self.worst if state["best"] is None else float(state["best"])
        super().load_state_dict(state)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "min_lr": self.min_lr,
        }


class Warmup(Schedule):
    r"""Linear warm-up over :math:`W` epochs, then the ``inner`` schedule from its start.

    .. math::

        \eta_e = \begin{cases}
            \eta_0 \left(s + (1 - s)\, \dfrac{e}{W}\right) & e < W \\
            \eta^{\text{inner}}_{e - W} & e \ge W
        \end{cases}

    In torch terms this is ``SequentialLR(opt, [LinearLR(opt, start_factor=s,
    total_iters=W), inner], milestones=[W])``: at the milestone torch restarts ``inner`` at
    its epoch 0, as here.  The inner schedule sees no steps (and no metrics) during the
    warm-up; a wrapped :class:`ReduceOnPlateau` (which torch's ``SequentialLR`` refuses)
    starts judging the metric after it.

    Parameters
    ----------
    inner : Schedule
        The schedule to follow, built on the same optimiser with the base rate.
    warmup_epochs : int
        :math:`W \ge 1`.
    start_factor : float
        :math:`s \in (0, 1]`: the first epoch runs at :math:`s\, \eta_0`.

    A wrapper, not a schedule of its own: it has no ``name`` (so it is not registered);
    :func:`make_schedule` builds it from ``warmup_epochs``, and its :meth:`config` is the
    inner schedule's plus the warm-up options.
    """

    def __init__(self, inner: Schedule, warmup_epochs: int, start_factor: float = 1 / 3) -> None:
        super().__init__(inner.optimizer)
        if isinstance(inner, Warmup):
            raise ValueError("Warmup cannot wrap another Warmup")
        _check_count(warmup_epochs, "Warmup warmup_epochs", 1)
        if not 0 < start_factor <= 1:
            raise ValueError(f"Warmup start_factor must be in (0, 1], got {start_factor}")
        self.inner, self.warmup_epochs, self.start_factor = inner, warmup_epochs, float(start_factor)
        self.base_lr = inner.base_lr
        self.optimizer.lr = self.lr

    @property
    def lr(self) -> float:
        if self.epoch < self.warmup_epochs:
            return self.base_lr * (self.start_factor + (1 - self.start_factor) * self.epoch / self.warmup_epochs)
        return self.inner.lr

    def step(self, metric: float | None = None) -> None:
        self.epoch += 1
        if self.epoch > self.warmup_epochs:
            self.inner.step(metric)
        self.optimizer.lr = self.lr

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        super().load_state_dict(state)

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "warmup_epochs": self.warmup_epochs, "start_factor": self.start_factor}


SCHEDULES: Mapping[str, type[Schedule]] = Schedule.registry
"""The schedules by the name :func:`make_schedule` and ``config()["type"]`` use (read-only;
a class that defines ``name`` adds itself)."""


def make_schedule(
    name: str, optimizer: Optimizer, warmup_epochs: int = 0, start_factor: float | None = None, **options: Any
) -> Schedule:
    """Build the schedule called ``name`` (a key of :data:`SCHEDULES`) on ``optimizer``.

    ``options`` are the schedule's keyword arguments, e.g.
    ``make_schedule("step", opt, step_size=10, gamma=0.5)``.  ``warmup_epochs > 0`` wraps
    it in a :class:`Warmup` (with ``start_factor``, default 1/3 as in torch's ``LinearLR``).
    """
    cls = Schedule.registry.lookup(name)
    schedule = build_from_options(cls, f"schedule {name!r}", optimizer, **options)
    if warmup_epochs == 0:
        if start_factor is not None:
            raise ValueError("start_factor only applies with warmup_epochs > 0")
        return schedule
    return Warmup(schedule, warmup_epochs, 1 / 3 if start_factor is None else start_factor)


def schedule_from_config(config: Mapping[str, Any], optimizer: Optimizer) -> Schedule:
    """Rebuild a schedule on ``optimizer`` from its :meth:`Schedule.config`."""
    options = dict(config)
    return make_schedule(str(options.pop("type", None)), optimizer, **options)
