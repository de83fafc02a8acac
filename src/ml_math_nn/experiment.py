"""A complete training run: data, model, training, and the run directory's records.

Data flows one way: :mod:`data` -> :mod:`network` -> :mod:`train` -> the files written
here (metrics.csv, summary.json, the model, the plots).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, data
from .config import TrainConfig
from .network import build_mlp
from .optim import SGD
from .persistence import Model, save_model, write_text
from .plots import plot_history
from .train import EpochRecord, Trainer

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]


@dataclass
class RunResult:
    out_dir: Path
    model: Model
    history: list[EpochRecord]
    summary: dict[str, Any]


def load_dataset(config: TrainConfig) -> data.Dataset:
    if config.dataset == "digits":
        return data.digits(config.test_size, config.seed)
    raise ValueError(f"unknown dataset {config.dataset!r}; available: digits")


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
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
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
    return (
        f"epoch {int(record['epoch']):>{len(str(epochs))}}/{epochs}"
        f"  train_loss {record['train_loss']:.4f}  test_loss {record['test_loss']:.4f}"
        f"  train_acc {record['train_acc']:.4f}  test_acc {record['test_acc']:.4f}"
    )


def run_training(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    report: Callable[[str], None] = print,
) -> RunResult:
    """Train the model ``config`` describes and write every record of the run into ``out_dir``.

    ``report`` receives one line per epoch (pass ``lambda s: None`` for silence).
    """
    start = time.perf_counter()
    dtype = np.dtype(config.dtype)
    dataset = load_dataset(config)
    out = prepare_out_dir(out_dir) if out_dir is not None else fresh_run_dir("runs", dataset.name)

    scaler = data.Standardizer.fit(dataset.X_train, dtype, per_feature=dataset.image_shape is None)
    X_train, X_test = scaler.transform(dataset.X_train), scaler.transform(dataset.X_test)
    init_seq, shuffle_seq = np.random.SeedSequence(config.seed).spawn(2)
    network = build_mlp(
        dataset.n_features,
        config.hidden,
        dataset.n_classes,
        np.random.default_rng(init_seq),
        config.activation,
        dtype,
    )
    trainer = Trainer(network, SGD(config.lr), config.batch_size, np.random.default_rng(shuffle_seq))
    history = trainer.fit(
        X_train,
        dataset.y_train,
        config.epochs,
        eval_sets={"test": (X_test, dataset.y_test)},
        callbacks=[lambda _, record: report(format_record(record, config.epochs))],
    )
    train_seconds = time.perf_counter() - start

    model = Model(network, dataset.class_names, scaler, {"dataset": dataset.name, "config": config.to_dict()})
    save_model(out, model)
    write_text(out / "metrics.csv", metrics_csv(history))
    plot_history(history, out)
    final = history[-1] if history else {}
    summary = {
        "final": {k: v for k, v in final.items() if k != "epoch"},
        "epochs_run": len(history),
        "config": config.to_dict(),
        "seed": config.seed,
        "dataset": {
            "name": dataset.name,
            "n_train": len(X_train),
            "n_test": len(X_test),
            "n_features": dataset.n_features,
            "n_classes": dataset.n_classes,
        },
        "n_parameters": int(sum(p.size for _, p, _ in network.parameters())),
        "wall_time_s": round(time.perf_counter() - start, 3),
        "train_time_s": round(train_seconds, 3),
        "versions": {"ml_math_nn": __version__, "numpy": np.__version__, "python": platform.python_version()},
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("wrote run to %s", out)
    return RunResult(out, model, history, summary)
