"""A complete training run: data, model, training, and the run directory's records.

Data flows one way: :mod:`~ml_math_nn.data` -> :mod:`~ml_math_nn.network` ->
:mod:`~ml_math_nn.train` -> the files written here (metrics.csv, summary.json, the model,
the plots).
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..data import datasets as data
from ..data.augment import random_shifts
from ..network import Network
from ..train import EarlyStopping, EpochRecord, ScheduleStep, Trainer, TrainingDiverged
from .builders import (
    PreparedData,
    build_network,
    build_optimizer,
    build_schedule,
    prepare_data,
    run_generators,
    sample_shape,
    unscale_targets,
)
from .checkpoint import Checkpointer, RunState, load_checkpoint
from .options import TrainConfig
from .persistence import Model, save_model, write_text
from .rundir import (
    LiveMetrics,
    failing_run,
    format_record,
    fresh_run_dir,
    metrics_csv,
    peak_memory_mb,
    prepare_out_dir,
    refuse_existing_run,
)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    out_dir: Path
    model: Model
    history: list[EpochRecord]
    summary: dict[str, Any]


def run_training(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    report: Callable[[str], None] = print,
    callbacks: Sequence[Callable[[Trainer, EpochRecord], None]] = (),
    dataset: data.Dataset | None = None,
    resume: bool = False,
    on_batch: Callable[[Trainer, dict[str, float]], None] | None = None,
    html_report: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> RunResult:
    """Train the model ``config`` describes and write every record of the run into ``out_dir``.

    ``report`` receives one line per epoch (pass ``lambda s: None`` for silence);
    ``callbacks`` run after each epoch besides the run's own (schedule, early stopping,
    checkpoints), ``on_batch`` after every update (see :attr:`Trainer.on_batch`).  With
    ``resume``, training continues from ``out_dir/checkpoint.npz``; ``html_report`` also
    writes ``report.html``; ``command`` (the command line, if any) is recorded in ``summary.json``.
    A run directory is never reused silently: if ``out_dir`` already holds a run
    (:data:`~ml_math_nn.runs.rundir.RUN_FILES`), this raises ``ValueError`` before loading
    anything, unless ``overwrite`` (the old run's files are then removed before training;
    other files stay) or ``resume`` (which continues the run there).
    Ctrl-C (SIGINT) ends the current epoch, saves a checkpoint and raises
    :class:`Interrupted`; a second Ctrl-C stops at once.  Bad input raises ``ValueError``
    or ``OSError`` before training starts; an ``OSError`` after that (a file of the run
    that cannot be written) is raised as :class:`RunFailed`.
    """
    if resume and overwrite:
        raise ValueError("resume continues the run in out_dir, overwrite replaces it: give one of them")
    if out_dir is not None and not resume and not overwrite:
        refuse_existing_run(out_dir)
    start = time.perf_counter()
    started = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    prepared = prepare_data(config, dataset)
    load_seconds = time.perf_counter() - start
    ds = prepared.dataset
    if "task_detected" in ds.extra and not resume:  # said when the run started, not again on resuming
        log.info("%s", ds.extra["task_detected"])
    check_monitor(config, ds.task)
    # Built before the run directory, so that a width too large to allocate leaves no directory.
    rngs = run_generators(config.seed)
    network = build_network(config, ds.n_features, ds.n_classes, rngs["dropout"], ds.task, sample_shape(ds))
    out = prepare_out_dir(out_dir, clear=overwrite) if out_dir is not None else fresh_run_dir("runs", ds.name)
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
    if ds.task == "regression":  # first, so that early stopping may watch val_mse or val_mae
        run_callbacks.insert(0, TargetErrors(prepared))
    run_callbacks += [stopper] if stopper is not None else []
    run_callbacks += [Checkpointer(out, run, config.checkpoint_every)]
    run_callbacks += [LiveMetrics(out)]  # metrics.csv after every epoch, for a watcher
    run_callbacks += [lambda _, record: report(format_record(record, config.epochs)), *callbacks]
    meta = {"dataset": ds.name, "config": config.to_dict(), "task": ds.task}
    model = Model(network, ds.class_names, prepared.scaler, meta, prepared.target_scaler)
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
                    from ..results.plots import write_run_figures  # here: matplotlib's memory only when used

                    best_epoch = stopper.best_epoch if stopper is not None else None
                    if ds.task == "classification":
                        write_run_figures(out, model, ds, prepared.X_test, prepared.y_test, history, best_epoch)
                    else:
                        from ..results.plots import write_task_figures

                        write_task_figures(out, model, ds.task, prepared.X_test, ds.y_test, history, best_epoch)
            write_text(out / "metrics.csv", metrics_csv(history))
            summary = {
                "status": status,
                "final": {k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"},
                "epochs_run": len(history),
                "best_epoch": stopper.best_epoch if stopper is not None else len(history),
                "config": config.to_dict(),
                "seed": config.seed,
                "started": started,
                "command": command,
                "layers": layer_rows(network),
                "dataset": {
                    "name": ds.name,
                    "n_train": len(prepared.X_train),
                    "n_test": len(prepared.X_test),
                    "n_val": 0 if prepared.X_val is None else len(prepared.X_val),
                    "n_features": ds.n_features,
                    "n_classes": ds.n_classes,
                    "task": ds.task,
                },
                "n_parameters": int(sum(p.size for _, p, _ in network.parameters())),
                # Wall time is the whole run; of it, loading is reading, splitting and scaling
                # the data, and training the fit loop alone (epochs, their evaluation and
                # callbacks; a resumed run counts only its own epochs).
                "wall_time_s": round(time.perf_counter() - start, 3),
                "load_time_s": round(load_seconds, 3),
                "train_time_s": round(train_seconds, 3),
                # The median wall time of one training epoch, without its evaluation
                # (this process's epochs; None when none ran).
                "epoch_time_s": None if (epoch_time := trainer.epoch_time()) is None else round(epoch_time, 4),
                "peak_memory_mb": peak_memory_mb(),
                "versions": {"ml_math_nn": __version__, "numpy": np.__version__, "python": platform.python_version()},
            }
            if stopper is not None and history:
                best = history[stopper.best_epoch - 1]
                summary["final"] = {k: v for k, v in best.items() if k != "epoch"}
            if status == "completed" and ds.task != "classification":
                summary["test_metrics"] = task_metrics(model, ds.task, prepared.X_test, ds.y_test)
            write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if status == "interrupted":
        raise Interrupted(
            f"interrupted after epoch {len(history)} of {config.epochs}; checkpoint saved, "
            f"resume with: ml-math-nn train --resume {out}"
        )
    if html_report:
        from ..results.report import write_report

        with failing_run():
            write_report([out], out / "report.html")
    log.debug("wrote run to %s", out)
    return RunResult(out, model, history, summary)


def layer_rows(network: Network) -> list[dict[str, Any]]:
    """One row per layer for the report's layer table: the layer, its output shape for one
    sample and its number of parameters (empty when the network's input shape is unknown)."""
    try:
        shapes = network.shapes()
    except ValueError:
        return []
    return [
        {"layer": repr(layer), "output": list(out), "parameters": int(sum(p.size for p in layer.params.values()))}
        for layer, (_, out) in zip(network.layers, shapes, strict=True)
    ]


TASK_MONITORS = {
    "classification": ("val_loss", "val_acc"),
    "multilabel": ("val_loss", "val_acc"),
    "regression": ("val_loss", "val_r2", "val_mse", "val_mae"),
}
"""The validation metrics each task's records have (``val_acc`` of multi-label is the subset accuracy)."""


def check_monitor(config: TrainConfig, task: str) -> None:
    """A one-line ``ValueError`` when early stopping would watch a metric the task does not record."""
    if config.early_stopping and config.monitor not in TASK_MONITORS[task]:
        names = ", ".join(TASK_MONITORS[task])
        raise ValueError(f"monitor {config.monitor!r}: a {task} run records {names}")


class TargetErrors:
    """Adds ``<set>_mse`` and ``<set>_mae`` of a regression, in the targets' own units, to each
    epoch's record, for the sets the records score (train, val, test)."""

    def __init__(self, prepared: PreparedData) -> None:
        sets = {"train": (prepared.X_train, prepared.y_train), **prepared.eval_sets()}
        self.scaler = prepared.target_scaler
        self.sets = {name: (X, unscale_targets(self.scaler, y)) for name, (X, y) in sets.items()}

    def __call__(self, trainer: Trainer, record: EpochRecord) -> None:
        for name, (X, y) in self.sets.items():
            if isinstance(X, np.ndarray) and f"{name}_loss" in record:
                err = unscale_targets(self.scaler, trainer.network.predict(X)) - y
                record[f"{name}_mse"], record[f"{name}_mae"] = float(np.mean(err**2)), float(np.mean(np.abs(err)))


def task_metrics(model: Model, task: str, X: Any, y: Any) -> dict[str, Any]:
    r"""The test metrics of a regression or multi-label model, for ``summary.json``.

    Regression, in the targets' units, over the :math:`m` rows and :math:`K` outputs:
    :math:`\mathrm{MSE} = \frac{1}{mK}\sum (\hat y - y)^2`, :math:`\mathrm{MAE} = \frac{1}{mK}\sum |\hat y - y|`
    and :math:`R^2` averaged over the outputs (scikit-learn's ``mean_squared_error``,
    ``mean_absolute_error`` and ``r2_score``), with each output's under ``per_output`` when
    :math:`K > 1`.  Multi-label: the subset accuracy, the macro-averaged F1 and each label's
    precision, recall, F1 and support (``per_label``).
    """
    names = model.class_names
    pred = model.values(X)
    if task == "regression":
        y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
        err = pred - y
        r2 = [float(model.network.loss.score(pred[:, k], y[:, k])) for k in range(pred.shape[1])]
        out: dict[str, Any] = {
            "mse": float(np.mean(err**2)),
            "mae": float(np.mean(np.abs(err))),
            "r2": float(np.mean(r2)),
        }
        if len(names) > 1:
            out["per_output"] = {
                name: {"mse": float(np.mean(err[:, k] ** 2)), "mae": float(np.mean(np.abs(err[:, k]))), "r2": r2[k]}
                for k, name in enumerate(names)
            }
        return out
    from sklearn.metrics import precision_recall_fscore_support

    y = np.asarray(y).reshape(pred.shape).astype(np.int8)
    decided = pred.astype(np.int8)
    precision, recall, f1, support = precision_recall_fscore_support(y, decided, zero_division=0)
    return {
        "subset_accuracy": float(np.mean(np.all(decided == y, axis=1))),
        "f1_macro": float(np.mean(f1)),
        "per_label": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
    }


class Interrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint."""


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
