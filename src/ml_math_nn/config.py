"""Training options: one dataclass shared by the CLI, config files and the run records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse ``"256,128,64"`` into ``(256, 128, 64)``; ``""`` means no hidden layer."""
    text = text.strip()
    if not text:
        return ()
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated positive integers like 256,128, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"--hidden widths must be >= 1, got {text!r}")
    return widths


@dataclass
class TrainConfig:
    """Every option of a training run, with the defaults of ``ml-math-nn train``."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.05
    seed: int = 0
    test_size: float = 0.2
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid option."""
        checks = [
            (all(h >= 1 for h in self.hidden), f"hidden widths must be >= 1, got {self.hidden}"),
            (self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (0 < self.test_size < 1, f"test size must be strictly between 0 and 1, got {self.test_size}"),
            (self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
