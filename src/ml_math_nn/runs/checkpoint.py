"""Checkpoints: the full state of a training run, so it can stop and resume exactly.

A checkpoint is one file, ``checkpoint.npz`` in the run directory, written atomically
like a model (:func:`ml_math_nn.runs.persistence.write_archive`): no pickles, a checksum, and the
non-array state as JSON inside it.  It holds, at the end of an epoch,

* the network's parameters and buffers (``net/<name>``);
* the optimiser's state (``opt/<slot>/<name>``, step count, learning rate), each array
  checked against its parameter's shape and dtype when read;
* the learning-rate schedule's state;
* every random generator's exact bit-generator state (shuffles, augmentation, dropout);
* the early-stopping state, with the best epoch's weights (``best/<name>``);
* the epoch records so far.

Restoring all of it and training on gives weights bit-identical to a run that never
stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array
from ..schedules import Schedule
from ..train import EarlyStopping, Trainer
from .persistence import ModelFileError, checksum, read_archive, write_archive

FILE = "checkpoint.npz"
FORMAT = "ml-math-nn-checkpoint"
VERSION = 1


@dataclass
class RunState:
    """What a run needs besides the trainer to be checkpointed: its schedule, early stopping
    and the generators it draws from (by name)."""

    trainer: Trainer
    schedule: Schedule
    stopper: EarlyStopping | None
    rngs: Mapping[str, np.random.Generator]


def save_checkpoint(directory: str | Path, run: RunState) -> Path:
    """Write ``directory/checkpoint.npz`` from the current state of ``run``."""
    trainer = run.trainer
    arrays: dict[str, Array] = {f"net/{k}": v for k, v in trainer.network.state().items()}
    scalars: dict[str, Any] = {}
    for key, value in trainer.optimizer.state_dict().items():
        if isinstance(value, np.ndarray):
            arrays[f"opt/{key}"] = value
        else:
            scalars[key] = value
    stopping = None
    if run.stopper is not None:
        s = run.stopper
        stopping = {"best": s.best, "best_epoch": s.best_epoch, "wait": s.wait}
        arrays |= {f"best/{k}": v for k, v in s.best_state.items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": len(trainer.history),
        "history": trainer.history,
        "optimizer": scalars,
        "schedule": run.schedule.state_dict(),
        "rngs": {name: rng.bit_generator.state for name, rng in run.rngs.items()},
        "early_stopping": stopping,
        "checksum": checksum(arrays),
    }
    path = Path(directory) / FILE
    write_archive(path, arrays, meta)
    return path


def load_checkpoint(directory: str | Path, run: RunState) -> int:
    """Restore ``run`` from ``directory/checkpoint.npz``; returns the epoch it continues from."""
    path = Path(directory) / FILE
    arrays, meta = read_archive(path, FORMAT, VERSION)
    trainer = run.trainer
    try:
        net = {k.removeprefix("net/"): v for k, v in arrays.items() if k.startswith("net/")}
        state = trainer.network.state()
        if set(net) != set(state) or any(net[k].shape != v.shape or net[k].dtype != v.dtype for k, v in state.items()):
            raise ModelFileError(f"{path}: the network in the checkpoint does not match the run's configuration")
        for name, value in state.items():
            value[...] = net[name]
        opt = {k.removeprefix("opt/"): v for k, v in arrays.items() if k.startswith("opt/")}
        trainer.optimizer.load_state_dict({**meta["optimizer"], **opt})
        check_optimizer_arrays(path, opt, {name: p for name, p, _ in trainer.network.parameters()})
        run.schedule.load_state_dict(meta["schedule"])
        for name, rng in run.rngs.items():
            rng.bit_generator.state = meta["rngs"][name]
        if run.stopper is not None:
            if meta["early_stopping"] is None:
                raise ModelFileError(f"{path}: the checkpoint has no early-stopping state but the run uses it")
            s = run.stopper
            stopping = meta["early_stopping"]
            s.best = None if stopping["best"] is None else float(stopping["best"])
            s.best_epoch, s.wait = int(stopping["best_epoch"]), int(stopping["wait"])
            s.best_state = {k.removeprefix("best/"): v for k, v in arrays.items() if k.startswith("best/")}
        trainer.history = [{str(k): float(v) for k, v in r.items()} for r in meta["history"]]
        if len(trainer.history) != meta["epoch"]:
            raise ValueError(f"{meta['epoch']} epochs but {len(trainer.history)} records")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{path}: invalid checkpoint ({e})") from None
    return len(trainer.history)


def check_optimizer_arrays(path: Path, opt: Mapping[str, Array], params: Mapping[str, Array]) -> None:
    """Each ``<slot>/<parameter>`` array of the optimiser has its parameter's shape and dtype,
    and a slot that some parameter has, every parameter has (each step updates them all)."""
    holders: dict[str, set[str]] = {}
    for key, value in opt.items():
        slot, _, name = key.partition("/")
        param = params.get(name)
        if param is None:
            raise ModelFileError(f"{path}: optimizer state {key!r} belongs to no parameter of the network")
        if value.shape != param.shape or value.dtype != param.dtype:
            raise ModelFileError(
                f"{path}: optimizer state {key!r} has shape {value.shape} and dtype {value.dtype}, "
                f"expected {param.shape} and {param.dtype} like its parameter"
            )
        holders.setdefault(slot, set()).add(name)
    for slot, names in holders.items():
        if names != set(params):
            raise ModelFileError(f"{path}: optimizer state {slot!r} is missing for {sorted(set(params) - names)}")


class Checkpointer:
    """Trainer callback: save a checkpoint every ``every`` epochs, and whenever training
    was asked to stop early by an interrupt (``trainer.interrupted``)."""

    def __init__(self, directory: str | Path, run: RunState, every: int) -> None:
        self.directory, self.run, self.every = Path(directory), run, every
        self.saved_epoch = 0

    def __call__(self, trainer: Trainer, record: dict[str, float]) -> None:
        epoch = len(trainer.history)
        if (self.every and epoch % self.every == 0) or trainer.interrupted:
            save_checkpoint(self.directory, self.run)
            self.saved_epoch = epoch
