"""Training options: one dataclass shared by the CLI, TOML config files and run records.

Precedence: defaults, then a TOML file (``--config FILE``), then command-line flags.
Every run directory records the fully resolved options as ``config.toml``, so
``ml-math-nn train --config RUN_DIR/config.toml`` repeats the run exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..optim import Optimizer
    from ..schedules import Schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

MONITOR_NAMES = ("val_loss", "val_acc", "val_r2", "val_mse", "val_mae")
"""Validation metrics early stopping may watch: the loss, and each task's scores (``val_acc`` for
classification and multi-label, the subset accuracy; ``val_r2``, ``val_mse``, ``val_mae`` for
regression, the last two in the target's own units)."""

TASKS = ("auto", "classification", "regression", "multilabel")
"""What a run learns: one class per sample, real values, or a set of 0/1 labels per sample;
``auto`` tells them apart from the data (:func:`ml_math_nn.data.datasets.detect_task`)."""


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse ``"256,128,64"`` into ``(256, 128, 64)``; ``""`` means no hidden layer."""
    text = text.strip()
    if not text:
        return ()
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"hidden must be comma-separated positive integers like 256,128, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"hidden widths must be >= 1, got {text!r}")
    return widths


def parse_layer_list(text: str) -> tuple[str, ...]:
    """Parse ``"conv 16 3 pad 1, relu, maxpool 2, flatten, dense"`` into its items, checked
    (:func:`ml_math_nn.network.parse_layers`); ``""`` means no list (``hidden`` builds an MLP)."""
    items = tuple(" ".join(part.split()) for part in text.split(",")) if text.strip() else ()
    if items:
        from ..network import parse_layers

        parse_layers(items)
    return items


def activation_names() -> tuple[str, ...]:
    """The activations options may name, read from the network's mapping when asked."""
    from .. import network

    return tuple(network.ACTIVATIONS)


def initializer_names() -> tuple[str, ...]:
    from .. import init

    return tuple(init.INITIALIZERS)


def optimizer_names() -> tuple[str, ...]:
    """The registered optimisers (:attr:`ml_math_nn.optim.Optimizer.registry`), read when asked."""
    from .. import optim

    return tuple(optim.OPTIMIZERS)


def schedule_names() -> tuple[str, ...]:
    """The registered learning-rate schedules, read when asked."""
    from .. import schedules

    return tuple(schedules.SCHEDULES)


@dataclass(frozen=True)
class Option:
    """One training option, declared once as a :class:`TrainConfig` field (see :func:`option`).

    The config's field and default, its check and message, its TOML key, its command-line
    flag and help, and the estimator's parameter are all derived from this.

    Attributes
    ----------
    help : str
        One line for ``--help`` and the estimator's docs; ``{choices}`` is replaced by the
        names :attr:`choices` gives at that moment.
    check : callable, optional
        ``check(value) -> bool`` for a value of the right type (``None`` values of an
        optional option are not checked); a failure reads
        ``"<label> must be <rule>, got <value>"``.
    rule : str
        What ``check`` demands, for that message.
    label : str
        The option in words, for messages (default: its name with spaces).
    choices : callable, optional
        The names the option accepts, read when asked (from a registry, so that a new
        optimiser or schedule appears without edits).  Without ``check``, a name outside
        them reads ``"unknown <label> 'x'; choose from a, b"``.
    listed : bool
        The value may be a comma-separated list of names (or a TOML list of strings).
    parse : callable, optional
        Turns command-line text (or a TOML string) into the value (``hidden``'s widths).
    metavar : str, optional
        Placeholder of the flag's value in ``--help``.
    goes_to : tuple of str
        The constructor parameters the option fills: ``"optimizer.momentum"``,
        ``"optimizer.betas[0]"`` (the first item of ``betas``), ``"schedule.factor"``,
        ``"warmup.warmup_epochs"``.  Each built class gets exactly those of its
        constructor's parameters (by :func:`inspect.signature`), and that constructor
        checks the value: the option has no check of its own that could disagree.
    name, default, kind, optional, items
        Filled in from the field: its name, default, type (``bool``, ``int``, ``float``,
        ``str`` or ``tuple``), whether ``None`` is allowed, and a tuple's item type
        (``int`` for ``hidden``, ``str`` for ``layers``).
    """

    help: str
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    label: str = ""
    choices: Callable[[], Sequence[str]] | None = None
    listed: bool = False
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    goes_to: tuple[str, ...] = ()
    name: str = ""
    default: Any = None
    kind: type = object
    optional: bool = False
    items: type = object

    @property
    def flag(self) -> str:
        """The command-line flag: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def words(self) -> str:
        return self.label or self.name.replace("_", " ")

    def help_text(self) -> str:
        """The help line with the choices filled in and, for an option that only some
        registered optimisers or schedules take, their names (without the default)."""
        names = ", ".join(self.choices()) if self.choices is not None else ""
        text = self.help.replace("{choices}", names)
        users = self.taken_by()
        return f"{text} ({', '.join(users)})" if users else text

    def taken_by(self) -> list[str]:
        """The registered optimisers or schedules whose constructors take this option,
        when that is not all of them (read from their signatures now)."""
        from .. import optim, schedules

        registries = {"optimizer": optim.OPTIMIZERS, "schedule": schedules.SCHEDULES}
        users: list[str] = []
        for where, registry in registries.items():
            params = [t.partition(".")[2].partition("[")[0] for t in self.goes_to if t.startswith(where + ".")]
            if params:
                takes = [n for n, cls in registry.items() if set(params) & set(inspect.signature(cls).parameters)]
                users += takes if len(takes) < len(registry) else []
        return users

    def error(self, value: Any) -> str | None:
        """The message of ``value`` (of the right type) against this option's own check; None if fine."""
        if value is None and self.optional:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name} must be a finite number, got {value}"
        if self.check is not None:
            if not self.check(value):
                shown = repr(value) if isinstance(value, str) else value
                return f"{self.words} must be {self.rule}, got {shown}"
            return None
        if self.choices is not None:
            names = self.choices()
            unknown = [v.strip() for v in value.split(",")] if self.listed else [value]
            bad = next((v for v in unknown if v not in names), None)
            if bad is not None:
                return f"unknown {self.words} {bad!r}; choose from {', '.join(names)}"
        return None


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A :class:`TrainConfig` field declaring one :class:`Option` (its keywords but ``help``)."""
    return field(default=default, metadata={"option": Option(help, **kwargs)})


def _in(low: float, high: float, *, closed: str = "[)") -> Callable[[Any], bool]:
    """A check for ``low <= x < high`` (``closed`` says which ends are included)."""
    return lambda x: (low <= x if closed[0] == "[" else low < x) and (x <= high if closed[1] == "]" else x < high)


@dataclass
class TrainConfig:
    """Every option of a training run, with the defaults of ``ml-math-nn train``.

    Each field is the one declaration of its option (:func:`option`): the TOML key, the
    flag, its help and check, the estimator's parameter and where it goes all come from
    it (:data:`OPTIONS`).  ``activation`` is one name for every hidden layer or a
    comma-separated list with one name per hidden layer.  Optional values are ``None``
    when unset.  Options that go to the optimiser or the schedule are checked by building
    them (:meth:`validate`); one the chosen optimiser or schedule does not take is unused,
    and checked for its type only.
    """

    # data
    dataset: str = option(
        "digits", "digits, fashion-mnist, mnist, diabetes, friedman1, csv:PATH or npz:PATH", metavar="NAME"
    )
    data_dir: str | None = option(None, "folder holding the dataset's files (default: data/)", metavar="DIR")
    test_file: str | None = option(None, "separate test file for csv:/npz: datasets", metavar="FILE")
    label_column: str | None = option(
        None,
        "CSV label column, by name or index; several (a,b,c) for several labels or outputs",
        metavar="COL",
    )
    subset: int | None = option(
        None, "train on N samples of the training set", metavar="N", check=lambda n: n >= 2, rule=">= 2"
    )
    test_size: float = option(
        0.2, "stratified fraction held out for testing", check=_in(0, 1, closed="()"), rule="strictly between 0 and 1"
    )
    val_size: float = option(
        0.0,
        "fraction of the training data held out for validation",
        check=_in(0, 1),
        rule="in [0, 1)",
        label="validation size",
    )
    augment: bool = option(False, "random one-pixel shifts of images")
    task: str = option(
        "auto",
        "{choices}: what the labels are (auto: told from the data, and said)",
        choices=lambda: TASKS,
        check=lambda t: t in TASKS,
        rule=f"one of {', '.join(TASKS)}",
    )
    # model
    hidden: tuple[int, ...] = option(
        (128,),
        "hidden layer widths, comma-separated, e.g. 256,128",
        parse=parse_hidden,
        check=lambda h: all(w >= 1 for w in h),
        rule=">= 1",
        label="hidden widths",
    )
    activation: str = option(
        "relu", "one of {choices}, or one per hidden layer, comma-separated", choices=activation_names, listed=True
    )
    layers: tuple[str, ...] = option(
        (),
        "any network, as its layers: comma-separated on the command line, a list in TOML, "
        "e.g. 'conv 16 3 pad 1, relu, maxpool 2, flatten, dense 64, relu, dense' (syntax: docs/math.md); "
        "replaces hidden, activation, dropout and batch_norm",
        parse=parse_layer_list,
        metavar="SPEC",
    )
    init: str | None = option(None, "{choices} (default: per activation)", choices=initializer_names)
    dropout: float = option(0.0, "inverted dropout rate after each hidden layer", check=_in(0, 1), rule="in [0, 1)")
    batch_norm: bool = option(False, "batch normalisation")
    l2: float = option(0.0, "L2 penalty (l2/2)*sum ||W||^2 added to the loss", check=lambda x: x >= 0, rule=">= 0")
    dtype: str = option(
        "float32",
        "floating type",
        choices=lambda: ("float32", "float64"),
        check=lambda d: d in ("float32", "float64"),
        rule="float32 or float64",
    )
    # optimisation
    optimizer: str = option("sgd", "update rule", choices=optimizer_names)
    lr: float = option(0.05, "(initial) learning rate", goes_to=("optimizer.lr",))
    momentum: float = option(0.0, "momentum", goes_to=("optimizer.momentum",))
    nesterov: bool = option(False, "Nesterov momentum", goes_to=("optimizer.nesterov",))
    beta1: float = option(0.9, "first-moment decay", goes_to=("optimizer.betas[0]",))
    beta2: float = option(0.999, "second-moment decay", goes_to=("optimizer.betas[1]",))
    weight_decay: float = option(0.0, "weight decay (decoupled for adamw)", goes_to=("optimizer.weight_decay",))
    clip_norm: float | None = option(
        None, "clip the gradients' global L2 norm to this", check=lambda x: x > 0, rule="> 0"
    )
    schedule: str = option("constant", "learning-rate schedule", choices=schedule_names)
    warmup_epochs: int = option(
        0,
        "linear warm-up epochs before the schedule (0: none)",
        # 0 means no warm-up at all, which the Warmup wrapper (built only for >= 1) cannot say.
        check=lambda n: n >= 0,
        rule=">= 0",
        label="warmup epochs",
        goes_to=("warmup.warmup_epochs",),
    )
    step_size: int = option(10, "epochs between decays", goes_to=("schedule.step_size",))
    gamma: float = option(0.1, "decay factor of the schedule", goes_to=("schedule.gamma", "schedule.factor"))
    min_lr: float = option(0.0, "floor of the learning rate", goes_to=("schedule.eta_min", "schedule.min_lr"))
    plateau_patience: int = option(5, "epochs without improvement before a decay", goes_to=("schedule.patience",))
    # loop
    epochs: int = option(30, "passes over the training set", check=lambda n: n >= 0, rule=">= 0")
    batch_size: int = option(32, "samples per mini-batch", check=lambda n: n >= 1, rule=">= 1")
    seed: int = option(0, "the one seed of all randomness")
    early_stopping: bool = option(False, "stop when --monitor stops improving; keep the best")
    patience: int = option(10, "epochs without improvement before early stopping", check=lambda n: n >= 1, rule=">= 1")
    monitor: str = option(
        "val_loss",
        "validation metric for early stopping",
        choices=lambda: MONITOR_NAMES,
        check=lambda m: m in MONITOR_NAMES,
        rule=f"one of {', '.join(MONITOR_NAMES)}",
    )
    checkpoint_every: int = option(
        0, "save a checkpoint every N epochs", metavar="N", check=lambda n: n >= 0, rule=">= 0"
    )

    def __post_init__(self) -> None:
        if isinstance(self.hidden, str):
            self.hidden = parse_hidden(self.hidden)
        self.hidden = tuple(int(h) for h in self.hidden)
        if isinstance(self.layers, str):
            self.layers = parse_layer_list(self.layers)
        else:  # each item with single spaces, then checked
            self.layers = parse_layer_list(",".join(self.layers)) if self.layers else ()
        if not isinstance(self.activation, str):
            self.activation = ",".join(self.activation)
        self.validate()

    @property
    def activations(self) -> list[str]:
        """One activation name per hidden layer."""
        names = [a.strip() for a in self.activation.split(",")]
        return names * len(self.hidden) if len(names) == 1 else names

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid option and its value.

        In order: each option's own check (:meth:`Option.error`), the rules that tie
        options together (:data:`RULES`), then the optimiser and the schedule are built
        from the options that go to them; a constructor's ``ValueError`` is re-raised
        prefixed with the option(s) whose value it refuses, e.g.
        ``gamma: ReduceOnPlateau factor must be in (0, 1), got 1.0``.
        """
        for opt in config_options(type(self)).values():
            message = opt.error(getattr(self, opt.name))
            if message is not None:
                raise ValueError(message)
        for holds, says in RULES:
            if not holds(self):
                raise ValueError(says(self))
        message = _component_error(self)
        if message is not None:
            culprits = [
                name for name in _component_options(self) if _component_error(_at_default(self, name)) != message
            ]
            raise ValueError(f"{', '.join(culprits) or f'{self.optimizer}, {self.schedule}'}: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML values; unset (``None``) options are left out."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["hidden"] = list(self.hidden)
        out["layers"] = list(self.layers)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping (a TOML table, CLI values), rejecting unknown keys and bad types."""
        options = config_options(cls)
        unknown = sorted(set(values) - set(options))
        if unknown:
            raise ValueError(f"{source}: unknown option {unknown[0]!r}; known options: {', '.join(options)}")
        coerced = {name: _coerce(options[name], value, source) for name, value in values.items()}
        try:
            return cls(**coerced)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def merged(self, overrides: Mapping[str, Any], source: str = "command line") -> TrainConfig:
        """A copy with ``overrides`` applied (validated like :meth:`from_mapping`)."""
        return type(self).from_mapping({**self.to_dict(), **overrides}, source)

    def to_toml(self) -> str:
        """Every option as a TOML document that :func:`load_config` reads back identically.

        TOML has no null, so an option whose value is ``None`` (unset: its default applies,
        such as ``init``'s per-activation choice) is written as a comment, ``# init =
        (unset)``, with its help: reading the file leaves it unset again, and uncommenting the
        line with a value sets it.
        """
        lines = ["# ml-math-nn training options (ml-math-nn train --config FILE)"]
        lines.append("# Lines starting with '# name =' are options left unset (TOML has no null).")
        values = self.to_dict()
        for key, opt in config_options(type(self)).items():
            if key in values:
                lines.append(f"{key} = {_toml_value(values[key])}")
            else:
                lines.append(f"# {key} = (unset: {opt.help_text()})")
        return "\n".join(lines) + "\n"


def config_options(cls: type[TrainConfig] = TrainConfig) -> dict[str, Option]:
    """The :class:`Option` of every field of ``cls`` (a subclass may add options), in order."""
    known = _OPTIONS_OF.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    out: dict[str, Option] = {}
    for f in fields(cls):
        declared: Option = f.metadata["option"]
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
        optional = type(None) in typing.get_args(hints[f.name])
        kind = typing.get_origin(hints[f.name]) or hints[f.name]
        if optional:
            kind = args[0]
        items = typing.get_args(hints[f.name])[0] if kind is tuple else object
        out[f.name] = dataclasses.replace(
            declared, name=f.name, default=f.default, kind=kind, optional=optional, items=items
        )
    _OPTIONS_OF[cls] = out
    return out


_OPTIONS_OF: dict[type, dict[str, Option]] = {}


OPTIONS: dict[str, Option] = config_options()
"""Every option of :class:`TrainConfig` by name, in the order of the fields."""

RULES: list[tuple[Callable[[TrainConfig], bool], Callable[[TrainConfig], str]]] = [
    (
        lambda c: len(c.activations) == len(c.hidden),
        lambda c: f"activation lists {len(c.activations)} names for {len(c.hidden)} hidden layers",
    ),
    (
        lambda c: not c.layers or not _mlp_options(c),
        lambda c: f"layers replaces {' and '.join(_mlp_options(c))}: give none of them, or put them in the list",
    ),
    (
        lambda c: not c.batch_norm or c.batch_size >= 2,
        lambda c: f"batch norm needs a batch size >= 2 (batch statistics), got {c.batch_size}",
    ),
    (
        lambda c: not c.early_stopping or c.val_size > 0,
        lambda c: "early stopping needs a validation split (val_size > 0): the test set never chooses anything",
    ),
    (
        lambda c: not (c.schedule == "plateau" and c.val_size == 0),
        lambda c: "the plateau schedule needs a validation split (val_size > 0)",
    ),
]
"""Checks that tie several options together: (holds, message)."""


def _mlp_options(config: TrainConfig) -> list[str]:
    """The options of :func:`~ml_math_nn.network.build_mlp` that ``config`` sets (not at their defaults)."""
    options = config_options(type(config))
    return [n for n in ("hidden", "activation", "dropout", "batch_norm") if getattr(config, n) != options[n].default]


def constructor_options(config: TrainConfig, component: str, cls: type, **derived: Any) -> dict[str, Any]:
    """The keyword arguments of ``cls`` that ``config``'s options fill for ``component``.

    ``component`` is ``"optimizer"``, ``"schedule"`` or ``"warmup"``: each option whose
    :attr:`Option.goes_to` names a parameter of ``cls``'s constructor fills it (``betas[0]``
    and ``betas[1]`` make the pair ``betas``); ``derived`` values (the cosine schedule's
    ``t_max``) fill the parameters of those names that ``cls`` has.  Nothing else is passed.
    """
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    items: dict[str, dict[int, Any]] = {}
    for opt in config_options(type(config)).values():
        for target in opt.goes_to:
            where, _, param = target.partition(".")
            param, _, index = param.partition("[")
            if where != component or param not in accepted:
                continue
            value = getattr(config, opt.name)
            if index:
                items.setdefault(param, {})[int(index.rstrip("]"))] = value
            else:
                kwargs[param] = value
    kwargs.update({param: tuple(v for _, v in sorted(values.items())) for param, values in items.items()})
    kwargs.update({name: value for name, value in derived.items() if name in accepted})
    return kwargs


def build_optimizer(config: TrainConfig) -> Optimizer:
    """The registered optimiser ``config.optimizer``, given exactly the options its constructor takes.

    Each option whose :attr:`~ml_math_nn.runs.options.Option.goes_to` names one of the
    class's parameters fills it (``lr``, ``momentum``, ``nesterov``, ``betas`` from
    ``beta1`` and ``beta2``, ``weight_decay``, ...); its other parameters keep their
    defaults.  No list of names here: every registered optimiser builds.
    """
    from ..optim import OPTIMIZERS, make_optimizer

    cls = OPTIMIZERS.get(config.optimizer)
    if cls is None:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    return make_optimizer(config.optimizer, **constructor_options(config, "optimizer", cls))


def build_schedule(config: TrainConfig, optimizer: Optimizer) -> Schedule:
    r"""The registered schedule ``config.schedule`` on ``optimizer``, given the options it takes.

    Like :func:`build_optimizer`: ``step_size``, ``gamma`` (as ``gamma`` or ``factor``),
    ``min_lr`` (as ``eta_min`` or ``min_lr``), ``plateau_patience`` (as ``patience``) fill
    the parameters a schedule has.  One value is derived here, not an option: a schedule
    that takes ``t_max`` (cosine) anneals over the epochs after the warm-up,
    :math:`T = \max(\text{epochs} - \text{warmup}, 1)`.  ``warmup_epochs > 0`` wraps the
    schedule in :class:`~ml_math_nn.schedules.Warmup`.
    """
    from ..schedules import SCHEDULES, Warmup, make_schedule

    cls = SCHEDULES.get(config.schedule)
    if cls is None:
        raise ValueError(f"unknown schedule {config.schedule!r}; choose from {', '.join(SCHEDULES)}")
    t_max = max(config.epochs - config.warmup_epochs, 1)
    options = constructor_options(config, "schedule", cls, t_max=t_max)
    warmup = constructor_options(config, "warmup", Warmup)
    return make_schedule(config.schedule, optimizer, **warmup, **options)


def _component_options(config: TrainConfig) -> list[str]:
    """The options (not at their defaults) that go to the optimiser or schedule."""
    return [
        opt.name
        for opt in config_options(type(config)).values()
        if opt.goes_to and getattr(config, opt.name) != opt.default
    ]


def _at_default(config: TrainConfig, name: str) -> TrainConfig:
    """A copy of ``config`` with option ``name`` at its default, not validated."""
    out = copy.copy(config)
    setattr(out, name, config_options(type(config))[name].default)
    return out


def _component_error(config: TrainConfig) -> str | None:
    """The message of building ``config``'s optimiser and schedule; None if they build."""
    try:
        build_schedule(config, build_optimizer(config))
    except ValueError as e:
        return str(e)
    return None


def _coerce(opt: Option, value: Any, source: str) -> Any:
    """Check one option's type (``None`` only where the option is optional)."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"{source}: option {opt.name!r} must be {expected}, got {value!r}")

    if opt.kind is tuple:
        if isinstance(value, str) and opt.parse is not None:
            try:
                return opt.parse(value)
            except ValueError as e:  # say where: the file, or the command line
                raise ValueError(f"{source}: {e}") from None
        if opt.items is int:
            if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return tuple(value)
            raise bad("a list of positive integers")
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise bad("a list of strings")
    if opt.listed and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if opt.kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if opt.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if opt.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if opt.kind is str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise bad("a string")
        return str(value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        # a TOML string may not hold control characters or DEL as they are: write them as \uXXXX
        escaped = "".join(f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table of a TOML options file, with one-line errors naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML file of training options (any subset of :class:`TrainConfig` fields)."""
    return TrainConfig.from_mapping(read_toml(path), str(path))
