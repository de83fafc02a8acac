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
from pathlib import Path
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


EPOCH_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} epochs [{elapsed}<{remaining}]"
"""The epoch bar: how far training is, in epochs (fractional: it moves during an epoch), and
the time; no metrics, which the epoch's line above the bar already gives once."""
BATCH_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}"
"""The batch bar: short enough, with its running means, to leave a bar at 80 columns (the
time left is on the epoch bar below it)."""


def running_postfix(loss: float, score: float | None, score_name: str = "acc") -> str:
    """The batch bar's figures: the mean loss and score of the epoch's mini-batches so far,
    measured in training mode (dropout on, batch norm on batch statistics, weights still
    moving), which is why they differ from the epoch line's, measured after the epoch."""
    text = f"running train-mode loss {loss:.4f}"
    return text + (f" {score_name} {score:.4f}" if score is not None else "")


class EpochProgress:
    """A progress bar over epochs, usable as a :class:`~ml_math_nn.train.Trainer` callback.

    Each call ``progress(trainer, record)`` moves the bar to the end of the record's epoch;
    :meth:`on_batch` moves it within an epoch, so it never sits still through a long one.
    The epoch's metrics are not repeated on the bar: the run prints them once, as a line
    above it.  For long epochs :meth:`on_batch` also draws a second bar over the
    mini-batches with the running mean loss and score of the epoch so far (labelled as
    training-mode figures).

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
        self.done = 0  # epochs finished, as the last record said
        self._loss_sum = self._score_sum = 0.0

    def _bar(self, total: int, desc: str, unit: str, leave: bool, bar_format: str) -> tqdm[Any]:
        file = self.file or sys.stderr
        return tqdm(
            total=total, desc=desc, unit=unit, leave=leave, file=file, dynamic_ncols=True, bar_format=bar_format
        )

    def _epoch_bar(self) -> tqdm[Any]:
        # Created on first use, so a disabled or never-started run prints nothing.
        if self.epochs is None:
            self.epochs = self._bar(self.total_epochs, "training", "epoch", True, EPOCH_FORMAT)
        return self.epochs

    def _move_to(self, epochs: float) -> None:
        bar = self._epoch_bar()
        bar.update(epochs - bar.n)

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        if not self.enabled:
            return
        # To the record's epoch, not by one: a resumed run starts its bar where it left off.
        self.done = int(record["epoch"])
        self._move_to(self.done)
        if self.done >= self.total_epochs:
            self.close()

    def on_batch(self, trainer: Trainer, record: Mapping[str, float]) -> None:
        """Move the epoch bar by one mini-batch; ``record`` holds ``batch`` (1-based),
        ``batches``, ``loss`` and the head's score (``acc``) of that mini-batch.  Epochs of
        at least :data:`LONG_EPOCH_BATCHES` batches also get a batch bar."""
        if not self.enabled:
            return
        batch, batches = int(record["batch"]), int(record["batches"])
        self._move_to(self.done + batch / batches)
        if batches < LONG_EPOCH_BATCHES:
            return
        if batch == 1 or self.batches is None:
            if self.batches is not None:
                self.batches.close()
            self.batches = self._bar(batches, f"epoch {self.done + 1}", "batch", False, BATCH_FORMAT)
            self._loss_sum = self._score_sum = 0.0
        name = next((k for k in record if k not in ("batch", "batches", "loss")), None)
        self._loss_sum += record["loss"]
        self._score_sum += record[name] if name is not None else 0.0
        score = self._score_sum / batch if name is not None else None
        self.batches.set_postfix_str(running_postfix(self._loss_sum / batch, score, name or ""), refresh=False)
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


def end_summary(summary: Mapping[str, Any], out_dir: Path, report: Path | None = None) -> list[str]:
    """The lines a finished run ends with: how long it took and which epoch's weights it kept,
    its test figures, and where its files (and the report, if written) are."""
    epochs, best = summary.get("epochs_run", 0), summary.get("best_epoch", 0)
    config, final = summary.get("config", {}), summary.get("final", {})

    def seconds(key: str) -> str:
        value = float(summary.get(key) or 0.0)
        return f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms"

    timing = f"{seconds('train_time_s')} training, {seconds('wall_time_s')} in all"
    monitor = config.get("monitor", "val_loss")
    if config.get("early_stopping") and monitor in final:
        kept = f"kept the weights of epoch {best}, the best {monitor} ({final[monitor]:.4f})"
    else:
        kept = f"kept the weights of the last epoch, {best}"
    names = {"acc": "accuracy", "loss": "loss"}
    tested = "  ".join(
        f"test {names.get(k[5:], k[5:])} {v:.4f}"
        for k, v in sorted(final.items(), key=lambda kv: kv[0].endswith("loss"))
        if k.startswith("test_")
    )
    lines = [f"done: {epochs} epoch{'s' if epochs != 1 else ''} ({timing}); {kept}"]
    lines += [tested] if tested else []
    lines.append(f"run written to {out_dir}")
    if report is not None:
        lines.append(f"report written to {report}")
    else:
        lines.append(f"see it as one page: ml-math-nn report {out_dir}")
    return lines


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
