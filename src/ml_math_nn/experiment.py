"""A complete training run: data, model, training, and the run directory's records.

Data flows one way: :mod:`data` -> :mod:`network` -> :mod:`train` -> the files written
here (metrics.csv, summary.json, the model, the plots).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, data
from ._types import Array, Labels
from .augment import random_shifts
from .checkpoint import Checkpointer, RunState, load_checkpoint
from .config import TrainConfig
from .network import Network, build_mlp
from .optim import Optimizer, make_optimizer
from .persistence import Model, save_model, write_text
from .plots import write_run_figures
from .report import write_report
from .schedules import Schedule, make_schedule
from .train import Callback, EarlyStopping, EpochRecord, Trainer, TrainingDiverged

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]


@dataclass
class RunResult:
    out_dir: Path
    model: Model
    history: list[EpochRecord]
    summary: dict[str, Any]


@dataclass
class PreparedData:
    """A dataset split into train / validation / test and scaled for the network."""

    dataset: data.Dataset
    scaler: data.Standardizer
    X_train: Array
    y_train: Labels
    X_test: Array
    y_test: Labels
    X_val: Array | None = None
    y_val: Labels | None = None

    def eval_sets(self) -> dict[str, tuple[Array, Labels]]:
        sets = {"test": (self.X_test, self.y_test)}
        if self.X_val is not None and self.y_val is not None:
            sets = {"val": (self.X_val, self.y_val), **sets}
        return sets


def derived_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent streams from the one user seed: each use of randomness gets its own."""
    return dict(zip(("val_split", "init", "shuffle", "dropout"), np.random.SeedSequence(seed).spawn(4), strict=True))


def load_dataset(config: TrainConfig) -> data.Dataset:
    """The dataset named by ``config.dataset`` (digits, fashion-mnist, mnist, csv:PATH, npz:PATH)."""
    return data.load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        test_file=config.test_file,
        test_size=config.test_size,
        seed=config.seed,
        label_column=config.label_column,
        subset=config.subset,
    )


def validation_split(X: Array, y: Labels, val_size: float, seed: int) -> tuple[Array, Array, Labels, Labels]:
    """Stratified ``(X_train, X_val, y_train, y_val)``, drawn from the seed's ``val_split`` stream."""
    split_seed: int = derived_seeds(seed)["val_split"].generate_state(1).tolist()[0]
    try:
        return data.split(X, y, val_size, split_seed)
    except ValueError as e:  # scikit-learn's message alone would not say which split
        raise ValueError(f"val_size {val_size:g}: cannot split a validation set off {len(y)} samples: {e}") from None


def prepare_data(config: TrainConfig, dataset: data.Dataset | None = None) -> PreparedData:
    """Load (unless given), carve the validation split, fit the scaling on training rows only."""
    dataset = dataset if dataset is not None else load_dataset(config)
    dtype = np.dtype(config.dtype)
    X_train, y_train, X_val, y_val = dataset.X_train, dataset.y_train, None, None
    if config.val_size > 0:
        X_train, X_val, y_train, y_val = validation_split(X_train, y_train, config.val_size, config.seed)
    scaler = data.Standardizer.fit(X_train, dtype, per_feature=dataset.image_shape is None)
    X_train, X_test = scaler.transform(X_train), scaler.transform(dataset.X_test)
    X_val = None if X_val is None else scaler.transform(X_val)
    # The run keeps only the scaled arrays: the raw ones (e.g. 60,000 uint8 images) are
    # dropped here, so the data is held once.  Empty copies keep the feature count and
    # dtype (an empty slice would be a view that keeps the whole raw array alive).
    empty = {name: np.empty_like(getattr(dataset, name)[:0]) for name in ("X_train", "X_test")}
    raw_free = dataclasses.replace(dataset, **empty)
    return PreparedData(raw_free, scaler, X_train, y_train, X_test, dataset.y_test, X_val, y_val)


def run_generators(seed: int) -> dict[str, np.random.Generator]:
    """The generators a training run draws from while it trains (saved in checkpoints)."""
    seeds = derived_seeds(seed)
    return {"shuffle": np.random.default_rng(seeds["shuffle"]), "dropout": np.random.default_rng(seeds["dropout"])}


def build_network(
    config: TrainConfig, n_features: int, n_classes: int, dropout_rng: np.random.Generator | None = None
) -> Network:
    """The network ``config`` describes, initialised from the seed's ``init`` stream.

    Its dropout layers (if any) draw from ``dropout_rng`` (default: the seed's own stream).
    Widths too large to allocate raise ``ValueError`` naming ``--hidden``: an input error.
    """
    seeds = derived_seeds(config.seed)
    dtype = np.dtype(config.dtype)
    try:
        network = build_mlp(
            n_features,
            config.hidden,
            n_classes,
            np.random.default_rng(seeds["init"]),
            config.activations,
            dtype,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
            init=config.init,
            l2=config.l2,
        )
    except MemoryError:
        widths = [n_features, *config.hidden, n_classes]
        weights = sum(a * b for a, b in pairwise(widths))
        raise ValueError(
            f"--hidden {','.join(map(str, config.hidden))}: the weight matrices hold {weights:,} numbers "
            f"({weights * dtype.itemsize / 2**30:,.1f} GiB as {dtype}), more than memory can hold"
        ) from None
    network.set_rng(dropout_rng or run_generators(config.seed)["dropout"])
    return network


def build_optimizer(config: TrainConfig) -> Optimizer:
    """The optimiser of ``config`` with the options that apply to it."""
    betas = (config.beta1, config.beta2)
    options: dict[str, dict[str, Any]] = {
        "sgd": {"momentum": config.momentum, "nesterov": config.nesterov, "weight_decay": config.weight_decay},
        "adam": {"betas": betas, "weight_decay": config.weight_decay},
        "adamw": {"betas": betas, "weight_decay": config.weight_decay},
        "rmsprop": {"momentum": config.momentum, "weight_decay": config.weight_decay},
        "adagrad": {"weight_decay": config.weight_decay},
    }
    return make_optimizer(config.optimizer, config.lr, **options[config.optimizer])


def build_schedule(config: TrainConfig, optimizer: Optimizer) -> Schedule:
    options: dict[str, dict[str, Any]] = {
        "constant": {},
        "step": {"step_size": config.step_size, "gamma": config.gamma},
        "exponential": {"gamma": config.gamma},
        "cosine": {"t_max": max(config.epochs - config.warmup_epochs, 1), "eta_min": config.min_lr},
        "plateau": {"factor": config.gamma, "patience": config.plateau_patience, "min_lr": config.min_lr},
    }
    return make_schedule(config.schedule, optimizer, warmup_epochs=config.warmup_epochs, **options[config.schedule])


class ScheduleStep(Callback):
    """Steps a learning-rate schedule after every epoch (on ``monitor`` for reduce-on-plateau)."""

    def __init__(self, schedule: Schedule, monitor: str = "val_loss") -> None:
        self.schedule, self.monitor = schedule, monitor

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        record["lr"] = trainer.optimizer.lr
        self.schedule.step(record.get(self.monitor))


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


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` if needed and check it is a writable directory."""
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
    return out


def metrics_csv(history: list[EpochRecord]) -> str:
    """One row per epoch, the columns of :data:`METRIC_COLUMNS` (plus any extra metrics)."""
    columns = METRIC_COLUMNS + [k for k in (history[0] if history else {}) if k not in METRIC_COLUMNS]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: int(v) if k == "epoch" else repr(float(v)) for k, v in record.items()})
    return buf.getvalue()


def format_record(record: EpochRecord, epochs: int) -> str:
    """The one-line report of an epoch: every loss and accuracy of the record."""
    parts = [f"epoch {int(record['epoch']):>{len(str(epochs))}}/{epochs}"]
    for metric in ("loss", "acc"):
        parts += [f"{k} {v:.4f}" for k, v in record.items() if k.endswith(f"_{metric}")]
    return "  ".join(parts)


def run_training(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    report: Callable[[str], None] = print,
    callbacks: Sequence[Callable[[Trainer, EpochRecord], None]] = (),
    dataset: data.Dataset | None = None,
    resume: bool = False,
    on_batch: Callable[[Trainer, dict[str, float]], None] | None = None,
    html_report: bool = False,
) -> RunResult:
    """Train the model ``config`` describes and write every record of the run into ``out_dir``.

    ``report`` receives one line per epoch (pass ``lambda s: None`` for silence);
    ``callbacks`` run after each epoch besides the run's own (schedule, early stopping,
    checkpoints), ``on_batch`` after every update (see :attr:`Trainer.on_batch`).  With
    ``resume``, training continues from ``out_dir/checkpoint.npz``; ``html_report`` also
    writes ``report.html``.
    Ctrl-C (SIGINT) ends the current epoch, saves a checkpoint and raises
    :class:`Interrupted`; a second Ctrl-C stops at once.  Bad input raises ``ValueError``
    or ``OSError`` before training starts; an ``OSError`` after that (a file of the run
    that cannot be written) is raised as :class:`RunFailed`.
    """
    start = time.perf_counter()
    prepared = prepare_data(config, dataset)
    load_seconds = time.perf_counter() - start
    ds = prepared.dataset
    # Built before the run directory, so that a width too large to allocate leaves no directory.
    rngs = run_generators(config.seed)
    network = build_network(config, ds.n_features, ds.n_classes, rngs["dropout"])
    out = prepare_out_dir(out_dir) if out_dir is not None else fresh_run_dir("runs", ds.name)
    with failing_run():
        write_text(out / "config.toml", config.to_toml())

    optimizer = build_optimizer(config)
    augment = None
    if config.augment:
        if ds.image_shape is None:
            raise ValueError(f"--augment shifts images, but dataset {ds.name!r} is not an image dataset")
        blank = float(prepared.scaler.transform(np.zeros((1, ds.n_features)))[0, 0])
        augment = random_shifts(ds.image_shape, blank)
    trainer = Trainer(
        network, optimizer, config.batch_size, rngs["shuffle"], clip_norm=config.clip_norm, augment=augment
    )
    trainer.on_batch = on_batch
    stopper = EarlyStopping(config.monitor, config.patience) if config.early_stopping else None
    schedule = build_schedule(config, optimizer)
    run = RunState(trainer, schedule, stopper, rngs)
    if resume:
        epoch = load_checkpoint(out, run)
        log.info("resuming %s after epoch %d of %d", out, epoch, config.epochs)
    run_callbacks: list[Callable[[Trainer, EpochRecord], None]] = [ScheduleStep(schedule)]
    run_callbacks += [stopper] if stopper is not None else []
    run_callbacks += [Checkpointer(out, run, config.checkpoint_every)]
    run_callbacks += [lambda _, record: report(format_record(record, config.epochs)), *callbacks]
    model = Model(network, ds.class_names, prepared.scaler, {"dataset": ds.name, "config": config.to_dict()})
    status = "failed"
    fit_start = time.perf_counter()
    with failing_run():
        try:
            # A diverging loss stops training with one message naming the epoch and batch;
            # numpy's overflow warnings on the way there would only repeat it as noise.
            with stop_on_interrupt(trainer), np.errstate(over="ignore", invalid="ignore"):
                trainer.fit(prepared.X_train, prepared.y_train, config.epochs, prepared.eval_sets(), run_callbacks)
            status = "interrupted" if trainer.interrupted else "completed"
        except TrainingDiverged:
            status = "diverged"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            # Records of what happened are always written; the model only when training
            # completed, so a diverged or interrupted run never overwrites a good model.
            history = trainer.history
            train_seconds = time.perf_counter() - fit_start
            if status == "completed":
                save_model(out, model)
                if history:
                    write_run_figures(out, model, ds, prepared.X_test, prepared.y_test, history)
            write_text(out / "metrics.csv", metrics_csv(history))
            summary = {
                "status": status,
                "final": {k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"},
                "epochs_run": len(history),
                "best_epoch": stopper.best_epoch if stopper is not None else len(history),
                "config": config.to_dict(),
                "seed": config.seed,
                "dataset": {
                    "name": ds.name,
                    "n_train": len(prepared.X_train),
                    "n_test": len(prepared.X_test),
                    "n_val": 0 if prepared.X_val is None else len(prepared.X_val),
                    "n_features": ds.n_features,
                    "n_classes": ds.n_classes,
                },
                "n_parameters": int(sum(p.size for _, p, _ in network.parameters())),
                # Wall time is the whole run; of it, loading is reading, splitting and scaling
                # the data, and training the fit loop alone (epochs, their evaluation and
                # callbacks; a resumed run counts only its own epochs).
                "wall_time_s": round(time.perf_counter() - start, 3),
                "load_time_s": round(load_seconds, 3),
                "train_time_s": round(train_seconds, 3),
                "peak_memory_mb": peak_memory_mb(),
                "versions": {"ml_math_nn": __version__, "numpy": np.__version__, "python": platform.python_version()},
            }
            if stopper is not None and history:
                best = history[stopper.best_epoch - 1]
                summary["final"] = {k: v for k, v in best.items() if k != "epoch"}
            write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if status == "interrupted":
        raise Interrupted(
            f"interrupted after epoch {len(history)} of {config.epochs}; checkpoint saved, "
            f"resume with: ml-math-nn train --resume {out}"
        )
    if html_report:
        with failing_run():
            write_report([out], out / "report.html")
    log.debug("wrote run to %s", out)
    return RunResult(out, model, history, summary)


class Interrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint."""


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


@contextlib.contextmanager
def stop_on_interrupt(trainer: Trainer) -> Iterator[None]:
    """While active, the first SIGINT asks ``trainer`` to stop after the current epoch
    (and checkpoint); a second one raises KeyboardInterrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if trainer.interrupted:
            raise KeyboardInterrupt
        trainer.interrupted = trainer.stop = True
        print("\ninterrupt: finishing this epoch and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
