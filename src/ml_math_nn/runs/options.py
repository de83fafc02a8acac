"""Training options: one dataclass shared by the CLI, TOML config files and run records.

Precedence: defaults, then a TOML file (``--config FILE``), then command-line flags.
Every run directory records the fully resolved options as ``config.toml``, so
``ml-math-nn train --config RUN_DIR/config.toml`` repeats the run exactly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..init import INITIALIZERS
from ..network import ACTIVATIONS
from ..optim import OPTIMIZERS
from ..schedules import SCHEDULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

ACTIVATION_NAMES = tuple(ACTIVATIONS)
OPTIMIZER_NAMES = tuple(OPTIMIZERS)
SCHEDULE_NAMES = tuple(SCHEDULES)
MONITOR_NAMES = ("val_loss", "val_acc")


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


@dataclass
class TrainConfig:
    """Every option of a training run, with the defaults of ``ml-math-nn train``.

    ``activation`` is one name for every hidden layer or a comma-separated list with
    one name per hidden layer.  Optional values are ``None`` when unset.
    """

    # data
    dataset: str = "digits"
    data_dir: str | None = None
    test_file: str | None = None
    label_column: str | None = None
    subset: int | None = None
    test_size: float = 0.2
    val_size: float = 0.0
    augment: bool = False
    # model
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    init: str | None = None
    dropout: float = 0.0
    batch_norm: bool = False
    l2: float = 0.0
    dtype: str = "float32"
    # optimisation
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    clip_norm: float | None = None
    schedule: str = "constant"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0
    plateau_patience: int = 5
    # loop
    epochs: int = 30
    batch_size: int = 32
    seed: int = 0
    early_stopping: bool = False
    patience: int = 10
    monitor: str = "val_loss"
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.hidden, str):
            self.hidden = parse_hidden(self.hidden)
        self.hidden = tuple(int(h) for h in self.hidden)
        if not isinstance(self.activation, str):
            self.activation = ",".join(self.activation)
        self.validate()

    @property
    def activations(self) -> list[str]:
        """One activation name per hidden layer."""
        names = [a.strip() for a in self.activation.split(",")]
        return names * len(self.hidden) if len(names) == 1 else names

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid option and its value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        unknown = next((a for a in self.activations if a not in ACTIVATION_NAMES), None)
        checks = [
            (all(h >= 1 for h in self.hidden), f"hidden widths must be >= 1, got {self.hidden}"),
            (
                unknown is None,
                f"unknown activation {unknown!r}; choose from {', '.join(ACTIVATION_NAMES)}",
            ),
            (
                len(self.activations) == len(self.hidden),
                f"activation lists {len(self.activations)} names for {len(self.hidden)} hidden layers",
            ),
            (
                self.init is None or self.init in INITIALIZERS,
                f"unknown init {self.init!r}; choose from {', '.join(INITIALIZERS)}",
            ),
            (self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (
                not self.batch_norm or self.batch_size >= 2,
                f"batch norm needs a batch size >= 2 (batch statistics), got {self.batch_size}",
            ),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (0 < self.test_size < 1, f"test size must be strictly between 0 and 1, got {self.test_size}"),
            (0 <= self.val_size < 1, f"validation size must be in [0, 1), got {self.val_size}"),
            (self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype!r}"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.l2 >= 0, f"l2 must be >= 0, got {self.l2}"),
            (
                self.optimizer in OPTIMIZER_NAMES,
                f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZER_NAMES)}",
            ),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (not self.nesterov or self.momentum > 0, "nesterov needs momentum > 0"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, f"betas must be in [0, 1), got {self.beta1}, {self.beta2}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.clip_norm is None or self.clip_norm > 0, f"clip norm must be > 0, got {self.clip_norm}"),
            (
                self.schedule in SCHEDULE_NAMES,
                f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULE_NAMES)}",
            ),
            (self.warmup_epochs >= 0, f"warmup epochs must be >= 0, got {self.warmup_epochs}"),
            (self.step_size >= 1, f"step size must be >= 1, got {self.step_size}"),
            (0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
            (self.min_lr >= 0, f"min lr must be >= 0, got {self.min_lr}"),
            (self.plateau_patience >= 0, f"plateau patience must be >= 0, got {self.plateau_patience}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.monitor in MONITOR_NAMES, f"monitor must be one of {', '.join(MONITOR_NAMES)}, got {self.monitor!r}"),
            (
                not self.early_stopping or self.val_size > 0,
                "early stopping needs a validation split (val_size > 0): the test set never chooses anything",
            ),
            (
                not (self.schedule == "plateau" and self.val_size == 0),
                "the plateau schedule needs a validation split (val_size > 0)",
            ),
            (self.checkpoint_every >= 0, f"checkpoint every must be >= 0, got {self.checkpoint_every}"),
            (self.subset is None or self.subset >= 2, f"subset must be >= 2, got {self.subset}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML values; unset (``None``) options are left out."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping (a TOML table, CLI values), rejecting unknown keys and bad types."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown option {unknown[0]!r}; known options: {', '.join(known)}")
        defaults = cls.__new__(cls)
        for name, f in known.items():
            setattr(defaults, name, f.default)
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            coerced[name] = _coerce(name, value, getattr(defaults, name), source)
        try:
            return cls(**coerced)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def merged(self, overrides: Mapping[str, Any], source: str = "command line") -> TrainConfig:
        """A copy with ``overrides`` applied (validated like :meth:`from_mapping`)."""
        return TrainConfig.from_mapping({**self.to_dict(), **overrides}, source)

    def to_toml(self) -> str:
        """The options as a TOML document that :func:`load_config` reads back identically."""
        lines = ["# ml-math-nn training options (ml-math-nn train --config FILE)"]
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _coerce(name: str, value: Any, default: Any, source: str) -> Any:
    """Check one option's type against its default's (None defaults accept str/int/float)."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"{source}: option {name!r} must be {expected}, got {value!r}")

    if name == "hidden":
        if isinstance(value, str):
            try:
                return parse_hidden(value)
            except ValueError as e:  # say where: the file, or the command line
                raise ValueError(f"{source}: {e}") from None
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
        raise bad("a list of positive integers")
    if name == "activation" and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int) or name in ("subset",):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float) or name in ("clip_norm",):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(default, str) or default is None:
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
