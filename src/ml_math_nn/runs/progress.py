"""Live progress of training (tqdm bars) and the package's logging set-up.

The bars write to stderr and are drawn only when :func:`progress_enabled` says so: not
``--quiet``, and both stdout and stderr are terminals.  When either is redirected (CI, a
pipe to ``tee``, ``> log.txt``) the output is being kept, and a kept log should hold lines,
not carriage-return redraws of a bar.

Log records of the ``ml_math_nn`` logger go to stderr through :func:`tqdm.tqdm.write`, which
clears the bars, writes the line and redraws them, so messages never tear a bar apart.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Protocol

from tqdm import tqdm

from ..train import EpochRecord, Trainer

LOGGER = "ml_math_nn"
LONG_EPOCH_BATCHES = 100
"""An epoch of at least this many mini-batches also gets a bar over its batches."""


class _Stream(Protocol):
    def isatty(self) -> bool: ...


def progress_enabled(quiet: bool, stdout: _Stream | None = None, stderr: _Stream | None = None) -> bool:
    """True unless ``quiet`` or either of ``stdout``, ``stderr`` (default: ``sys``'s) is not a terminal."""
    streams = (stdout or sys.stdout, stderr or sys.stderr)
    return not quiet and all(s is not None and s.isatty() for s in streams)


def _postfix(record: Mapping[str, float], prefix: str = "") -> dict[str, str]:
    """The ``<split>_loss`` and ``<split>_acc`` values of ``record``, formatted for a bar."""
    return {k: f"{v:.4f}" for k, v in record.items() if k.startswith(prefix) and k.endswith(("_loss", "_acc"))}


class EpochProgress:
    """A progress bar over epochs, usable as a :class:`~ml_math_nn.train.Trainer` callback.

    Each call ``progress(trainer, record)`` advances the bar by one epoch and shows the
    record's losses and accuracies.  For long epochs :meth:`on_batch` draws a second bar
    over the mini-batches with the running mean loss and accuracy of the epoch so far.

    Parameters
    ----------
    total_epochs : int
        Length of the epoch bar.
    enabled : bool
        Draw nothing at all when False (see :func:`progress_enabled`).
    file : text stream, optional
        Where the bars go (default: stderr at the time of drawing).

    Use it as a context manager, or call :meth:`close`, so that a run stopped early still
    ends its bar with a newline.
    """

    def __init__(self, total_epochs: int, enabled: bool, file: IO[str] | None = None) -> None:
        self.enabled, self.file = enabled, file
        self.epochs: tqdm[Any] | None = None
        self.batches: tqdm[Any] | None = None
        self.total_epochs = total_epochs
        self._loss_sum = self._acc_sum = 0.0

    def _bar(self, total: int, desc: str, unit: str, leave: bool) -> tqdm[Any]:
        return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=self.file or sys.stderr, dynamic_ncols=True)

    def _epoch_bar(self) -> tqdm[Any]:
        # Created on first use, so a disabled or never-started run prints nothing.
        if self.epochs is None:
            self.epochs = self._bar(self.total_epochs, "training", "epoch", leave=True)
        return self.epochs

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        if not self.enabled:
            return
        bar = self._epoch_bar()
        bar.set_postfix(_postfix(record), refresh=False)
        # To the record's epoch, not by one: a resumed run starts its bar where it left off.
        bar.update(int(record["epoch"]) - bar.n)
        if bar.n >= self.total_epochs:
            self.close()

    def on_batch(self, trainer: Trainer, record: Mapping[str, float]) -> None:
        """Advance the batch bar; ``record`` holds ``batch`` (1-based), ``batches``, ``loss`` and ``acc``
        of that mini-batch.  Epochs shorter than :data:`LONG_EPOCH_BATCHES` batches get no batch bar."""
        batches = int(record["batches"])
        if not self.enabled or batches < LONG_EPOCH_BATCHES:
            return
        batch = int(record["batch"])
        if batch == 1 or self.batches is None:
            if self.batches is not None:
                self.batches.close()
            epoch = self._epoch_bar().n + 1
            self.batches = self._bar(batches, f"epoch {epoch}", "batch", leave=False)
            self._loss_sum = self._acc_sum = 0.0
        self._loss_sum += record["loss"]
        self._acc_sum += record.get("acc", float("nan"))
        self.batches.set_postfix(
            loss=f"{self._loss_sum / batch:.4f}", acc=f"{self._acc_sum / batch:.4f}", refresh=False
        )
        self.batches.update(1)
        if batch == batches:
            self.batches.close()
            self.batches = None

    def close(self, trainer: Trainer | None = None) -> None:
        """End the bars (idempotent); the trainer calls it when ``fit`` ends, however it ends."""
        for bar in (self.batches, self.epochs):
            if bar is not None:
                bar.close()
        self.batches = self.epochs = None

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _TqdmHandler(logging.Handler):
    """Writes each record as one line to stderr via :func:`tqdm.write`, which keeps bars intact."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never crash the program
            self.handleError(record)


def setup_logging(verbose: bool = False, quiet: bool = False) -> logging.Logger:
    """Send the package's log records to stderr and return its logger.

    Levels: ``DEBUG`` with ``verbose`` (lines prefixed with level and module), ``WARNING``
    with ``quiet``, ``INFO`` otherwise.  Calling it again replaces the handler it added
    before, so it never duplicates lines; other handlers (the application's, pytest's) are
    left alone.
    """
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _TqdmHandler)]:
        logger.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    return logger
