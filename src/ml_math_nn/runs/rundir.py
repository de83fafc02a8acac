"""A run directory: creating it, and the files that record a run (metrics.csv, the
per-epoch line, peak memory), written so that a failure to write is a run failure.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..train import Callback, EpochRecord, Trainer

METRIC_COLUMNS = ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024 / (1024 if sys.platform == "darwin" else 1), 1)


def fresh_run_dir(root: str | Path = "runs", name: str = "digits") -> Path:
    """A new directory ``root/<timestamp>-<name>`` (suffixed ``-2``, ``-3``... if taken)."""
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    root = Path(root)
    for i in range(1, 1000):
        candidate = root / (stem if i == 1 else f"{stem}-{i}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run directory under {root}")


RUN_FILES = (
    "config.toml",
    "metrics.csv",
    "summary.json",
    "model.npz",
    "model.json",
    "checkpoint.npz",
    "confusion_matrix.csv",
    "report.html",
    "*.png",
)
"""The files (names or glob patterns) that a run writes into its directory: what makes a
directory hold a run, and what ``overwrite`` removes (nothing else in the directory)."""


def run_files(out_dir: str | Path) -> list[Path]:
    """The files of a run in ``out_dir`` (see :data:`RUN_FILES`, in its order); none if it is not a directory."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    return [p for pattern in RUN_FILES for p in sorted(out.glob(pattern)) if p.is_file()]


def refuse_existing_run(out_dir: str | Path) -> None:
    """Raise ``ValueError`` (one line) if ``out_dir`` already holds a run: a run directory
    is never reused silently (its old checkpoint could later be resumed over the new run)."""
    found = run_files(out_dir)
    if found:
        names = ", ".join(p.name for p in found[:3]) + (", ..." if len(found) > 3 else "")
        resume = f", or --resume {out_dir} to continue it" if (Path(out_dir) / "checkpoint.npz").is_file() else ""
        raise ValueError(f"--out {out_dir}: holds a run already ({names}); give --overwrite to replace it{resume}")


def prepare_out_dir(out_dir: str | Path, clear: bool = False) -> Path:
    """Create ``out_dir`` if needed and check it is a writable directory; with ``clear``,
    remove the files of a run already there (:func:`run_files`) and nothing else."""
    if not str(out_dir):  # Path("") would silently mean the working directory
        raise ValueError("--out: empty path")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(f"--out {out}: cannot create ({e.strerror})") from None
    probe = out / ".write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"--out {out}: not writable ({e.strerror})") from None
    if clear:
        for path in run_files(out):
            try:
                path.unlink()
            except OSError as e:
                raise type(e)(f"--out {out}: cannot remove the old run's {path.name} ({e.strerror})") from None
    return out


def metrics_csv(history: list[EpochRecord]) -> str:
    """One row per epoch, the columns of :data:`METRIC_COLUMNS` (plus any extra metrics; a
    regression's records have no accuracy, but ``_r2``, ``_mse`` and ``_mae`` columns)."""
    first = history[0] if history else {}
    fixed = [c for c in METRIC_COLUMNS if not history or c in first or not c.endswith("_acc")]
    columns = fixed + [k for k in first if k not in fixed]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: int(v) if k == "epoch" else repr(float(v)) for k, v in record.items()})
    return buf.getvalue()


def format_record(record: EpochRecord, epochs: int) -> str:
    """The one-line report of an epoch: every loss and score of the record (accuracy; R² and
    mean absolute error for a regression)."""
    parts = [f"epoch {int(record['epoch']):>{len(str(epochs))}}/{epochs}"]
    for metric in ("loss", "acc", "r2", "mae"):
        parts += [f"{k} {v:.4f}" for k, v in record.items() if k.endswith(f"_{metric}")]
    return "  ".join(parts)


def write_progress(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename, without waiting for the disk (no fsync).

    For files rewritten while a run goes on, such as metrics.csv after each epoch: a reader
    sees the old text or the new one, never half of it; the run's last write of the file
    goes through :func:`~ml_math_nn.runs.persistence.write_text`, which also syncs.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LiveMetrics(Callback):
    """Trainer callback: rewrite ``metrics.csv`` after every epoch, so that the run can be
    watched while it trains (``ml-math-nn serve`` polls the file)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "metrics.csv"

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        write_progress(self.path, metrics_csv(trainer.history))


class RunFailed(Exception):
    """A run that had started could not go on, e.g. its files could not be written (disk
    full): a failure during the run (exit status 1), not an input error."""


@contextlib.contextmanager
def failing_run() -> Iterator[None]:
    """Re-raise an ``OSError`` (of writing the run's files) as :class:`RunFailed`."""
    try:
        yield
    except OSError as e:
        raise RunFailed(str(e)) from e
