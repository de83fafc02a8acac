"""Training runs end to end: early stopping, exact repeats from config.toml, checkpoints
and resume, interrupts, divergence."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ml_math_nn.data.datasets import Dataset
from ml_math_nn.network import Network
from ml_math_nn.runs import builders, training
from ml_math_nn.runs.builders import load_configured_dataset
from ml_math_nn.runs.checkpoint import FORMAT as CHECKPOINT
from ml_math_nn.runs.checkpoint import VERSION as CHECKPOINT_VERSION
from ml_math_nn.runs.options import TrainConfig, load_config
from ml_math_nn.runs.persistence import load_model, read_archive
from ml_math_nn.runs.training import Interrupted, run_training
from ml_math_nn.train import Trainer, TrainingDiverged

QUIET = {"report": lambda _: None}
# Every piece of state a resume must restore: Adam moments, a plateau schedule with
# warm-up, early stopping, dropout masks, batch-norm statistics, augmentation shifts.
RICH = TrainConfig(
    hidden=(32, 16),
    activation="relu,tanh",
    optimizer="adam",
    lr=3e-3,
    dropout=0.2,
    batch_norm=True,
    val_size=0.2,
    early_stopping=True,
    patience=3,
    schedule="plateau",
    plateau_patience=1,
    warmup_epochs=2,
    augment=True,
    epochs=7,
    batch_size=64,
    clip_norm=5.0,
)


def weights(directory: Path) -> dict[str, np.ndarray]:
    return load_model(directory).arrays()


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_early_stopping_restores_the_best_epoch(tmp_path: Path) -> None:
    snapshots: list[dict[str, np.ndarray]] = []

    def snapshot(trainer: Trainer, record: dict[str, float]) -> None:
        snapshots.append({k: v.copy() for k, v in trainer.network.state().items()})

    config = TrainConfig(hidden=(64,), lr=0.5, val_size=0.25, early_stopping=True, patience=3, epochs=60)
    result = run_training(config, tmp_path, callbacks=[snapshot], **QUIET)
    val = [r["val_loss"] for r in result.history]
    best = int(np.argmin(val))
    assert len(result.history) < 60, "expected to stop early with lr 0.5"
    assert len(result.history) == best + 1 + 3
    assert result.summary["best_epoch"] == best + 1
    assert_same(result.model.network.state(), snapshots[best])
    assert_same(
        weights(tmp_path), {**snapshots[best], **{k: v for k, v in weights(tmp_path).items() if k.startswith("scaler")}}
    )
    assert result.summary["final"]["val_loss"] == val[best]


def test_recorded_config_repeats_the_run_exactly(tmp_path: Path) -> None:
    first = run_training(RICH, tmp_path / "a", **QUIET)
    again = run_training(load_config(tmp_path / "a" / "config.toml"), tmp_path / "b", **QUIET)
    assert load_config(tmp_path / "a" / "config.toml") == RICH
    assert_same(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert first.history == again.history


def test_train_time_counts_the_training_loop_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that moves only when the data loads (100 s) and once per epoch (1 s)."""
    clock = [0.0]

    def slow_load(config: TrainConfig) -> Dataset:
        clock[0] += 100.0
        return load_configured_dataset(config)

    def tick(trainer: Trainer, record: dict[str, float]) -> None:
        clock[0] += 1.0

    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(builders, "load_configured_dataset", slow_load)
    summary = run_training(TrainConfig(hidden=(8,), epochs=3), tmp_path, callbacks=[tick], **QUIET).summary
    assert (summary["load_time_s"], summary["train_time_s"], summary["wall_time_s"]) == (100.0, 3.0, 103.0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("whole")
    return out, run_training(RICH, out, **QUIET)


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_interrupted_and_resumed_equals_uninterrupted(
    stop_after: int, uninterrupted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_dir, whole = uninterrupted
    original = Trainer.train_epoch

    def train_epoch(self: Trainer, X: np.ndarray, y: np.ndarray) -> float:
        loss = original(self, X, y)
        if len(self.history) + 1 == stop_after:
            self.interrupted = self.stop = True  # what the SIGINT handler does
        return loss

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    with pytest.raises(Interrupted, match=f"after epoch {stop_after} of 7.*--resume"):
        run_training(RICH, tmp_path, **QUIET)
    assert (tmp_path / "checkpoint.npz").is_file() and not (tmp_path / "model.npz").exists()
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run_training(load_config(tmp_path / "config.toml"), tmp_path, resume=True, **QUIET)
    assert resumed.history == whole.history
    assert_same(weights(tmp_path), weights(whole_dir))


def test_periodic_checkpoints_resume_exactly(uninterrupted, tmp_path: Path) -> None:
    whole_dir, whole = uninterrupted
    short = TrainConfig(**{**RICH.to_dict(), "hidden": RICH.hidden, "epochs": 4, "checkpoint_every": 2})
    run_training(short, tmp_path, **QUIET)
    resumed = run_training(RICH, tmp_path, resume=True, **QUIET)
    assert resumed.history == whole.history
    assert_same(weights(tmp_path), weights(whole_dir))


OLD_CHECKPOINT = Path(__file__).with_name("data") / "checkpoint-before-layout"
"""A run's ``checkpoint.npz`` and ``config.toml`` after epoch 2 of 2, written by the code as it
was before the core was reshaped (commit 1231be2: experiment.py, the flat update found by
address): Adam moments, a step schedule, early stopping, dropout and batch norm."""


def test_a_checkpoint_from_before_the_reshaping_resumes_exactly(tmp_path: Path) -> None:
    """Old checkpoint files still load, and going on from one gives, to the bit, the run the
    current code makes without stopping."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("checkpoint.npz", "config.toml"):
        shutil.copy(OLD_CHECKPOINT / name, old / name)
    config = load_config(old / "config.toml").merged({"epochs": 4})
    resumed = run_training(config, old, resume=True, **QUIET)
    whole = run_training(config, tmp_path / "whole", **QUIET)
    assert len(resumed.history) == 4 and resumed.history == whole.history
    assert_same(weights(old), weights(tmp_path / "whole"))


def test_resume_without_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint.npz: no such file"):
        run_training(TrainConfig(epochs=1), tmp_path, resume=True, **QUIET)


def test_divergence_names_epoch_and_batch_and_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, batch \d+; try a smaller learning rate"):
        run_training(TrainConfig(epochs=3, lr=1e4, hidden=(256, 256, 256)), tmp_path / "new", **QUIET)
    assert '"status": "diverged"' in (tmp_path / "new" / "summary.json").read_text()
    assert not (tmp_path / "new" / "model.npz").exists()
    # A resumed run that diverges leaves the model of the run it continued.
    run_training(TrainConfig(epochs=1, checkpoint_every=1), tmp_path / "old", **QUIET)
    before = weights(tmp_path / "old")
    original = Network.forward_backward
    monkeypatch.setattr(Network, "forward_backward", lambda *a, **k: (float("nan"), original(*a, **k)[1]))
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, batch 1;"):
        run_training(TrainConfig(epochs=3), tmp_path / "old", resume=True, **QUIET)
    assert_same(weights(tmp_path / "old"), before)
    assert '"status": "diverged"' in (tmp_path / "old" / "summary.json").read_text()


def test_a_run_directory_holding_a_run_is_refused_unless_overwrite(tmp_path: Path) -> None:
    """A second run into the same directory is an error naming --overwrite, before anything
    is written; with ``overwrite`` the old run's files (its stale checkpoint included) go,
    and other files stay."""
    old = TrainConfig(epochs=1, hidden=(8,), checkpoint_every=1)
    run_training(old, tmp_path, **QUIET)
    assert (tmp_path / "checkpoint.npz").is_file()
    (tmp_path / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(
        ValueError, match=r"holds a run already \(config\.toml, metrics\.csv, .*--overwrite to replace it, or --resume"
    ):
        run_training(TrainConfig(epochs=2, hidden=(16,)), tmp_path, **QUIET)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(ValueError, match="give one of them"):
        run_training(old, tmp_path, resume=True, overwrite=True, **QUIET)
    new = run_training(TrainConfig(epochs=2, hidden=(16,)), tmp_path, overwrite=True, **QUIET)
    assert not (tmp_path / "checkpoint.npz").exists()  # the old run's: it could be resumed over the new one
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert load_config(tmp_path / "config.toml").hidden == (16,) and len(new.history) == 2
    with pytest.raises(ValueError, match="checkpoint.npz: no such file"):
        run_training(load_config(tmp_path / "config.toml"), tmp_path, resume=True, **QUIET)


def test_an_empty_or_unrelated_directory_is_a_fine_out(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("data notes")
    run_training(TrainConfig(epochs=1, hidden=(8,)), tmp_path, **QUIET)
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "README").read_text() == "data notes"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ml_math_nn", *args]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_saves_a_checkpoint_and_resume_finishes_exactly(tmp_path: Path) -> None:
    options = ["--epochs", "60", "--hidden", "64", "--batch-size", "32", "--quiet", "--seed", "4"]
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cli("train", *options, "--checkpoint-every", "1", "--out", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with: ml-math-nn train --resume" in err and "Traceback" not in err
    done = subprocess.run(cli("train", "--resume", str(out), "--quiet"), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    run_training(load_config(out / "config.toml"), tmp_path / "whole", **QUIET)
    assert_same(weights(out), weights(tmp_path / "whole"))


SAVER = """
import sys
import numpy as np
from ml_math_nn.network import build_mlp
from ml_math_nn.runs.persistence import Model, save_model
i = 0
while True:
    net = build_mlp(64, (256, 256), 10, np.random.default_rng(i % 2))
    save_model(sys.argv[1], Model(net, [str(c) for c in range(10)], None, {"i": i}))
    i += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_while_saving_never_breaks_the_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)])
        deadline = time.monotonic() + 60
        while not (tmp_path / "model.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.05, 0.5)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        model = load_model(tmp_path)
        assert model.network.n_in == 64
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("model.npz", "model.json")]
    assert all(name.endswith(".tmp") for name in leftovers)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_training_killed_while_checkpointing_keeps_model_and_resumes_exactly(tmp_path: Path) -> None:
    """SIGKILL a real ``ml-math-nn train`` while a temporary checkpoint file is being written:
    the model already in the run directory is untouched, the last checkpoint is intact, and
    resuming from it ends with the weights and metrics of the run never killed."""
    config = TrainConfig(hidden=(256,), optimizer="adam", lr=1e-3, dropout=0.1, epochs=15, checkpoint_every=1, seed=5)
    whole = run_training(config, tmp_path / "whole", **QUIET)
    out = tmp_path / "killed"
    run_training(config.merged({"epochs": 1}), out, **QUIET)  # a model from before, to be kept
    previous = (out / "model.npz").read_bytes()
    proc = subprocess.Popen(cli("train", "--resume", str(out), "--epochs", str(config.epochs), "--quiet"))
    deadline, saving = time.monotonic() + 120, False
    while not saving and proc.poll() is None and time.monotonic() < deadline:  # a checkpoint, then the next one
        saving = (out / "checkpoint.npz").exists() and any(p.name.startswith(".checkpoint.npz.") for p in out.iterdir())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert saving, "the run ended before a checkpoint was seen being written"
    assert (out / "model.npz").read_bytes() == previous
    _, meta = read_archive(out / "checkpoint.npz", CHECKPOINT, CHECKPOINT_VERSION)  # complete, checksum verified
    assert 1 <= meta["epoch"] < config.epochs
    resumed = run_training(config, out, resume=True, **QUIET)
    assert resumed.history == whole.history
    assert_same(weights(out), weights(tmp_path / "whole"))


@pytest.mark.parametrize(
    "change",
    [
        {"history": [["not", "a", "record"]]},
        {"history": [{"epoch": "one"}]},
        {"early_stopping": {"best": "low", "best_epoch": 1, "wait": 0}},
        {"early_stopping": None},
        {"rngs": {}},
        {"epoch": 99},
    ],
)
def test_crafted_checkpoint_metadata_is_refused(change: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    from ml_math_nn.runs.checkpoint import FILE
    from ml_math_nn.runs.persistence import META_KEY, ModelFileError

    config = TrainConfig(epochs=2, checkpoint_every=1, val_size=0.2, early_stopping=True)
    run_training(config, tmp_path, **QUIET)
    with np.load(tmp_path / FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    import json

    meta = json.loads(arrays.pop(META_KEY).tobytes())
    arrays[META_KEY] = np.frombuffer(json.dumps({**meta, **change}).encode(), dtype=np.uint8)
    np.savez(tmp_path / FILE, **arrays)
    with pytest.raises(ModelFileError, match="checkpoint.npz"):
        run_training(config.merged({"epochs": 3}), tmp_path, resume=True, **QUIET)


@pytest.mark.parametrize("change", ["shape", "dtype", "missing", "stranger"])
def test_crafted_optimizer_state_is_refused(change: str, tmp_path: Path) -> None:
    """Arrays of Adam's state that do not fit the network, with the checksum made to match."""
    import json

    from ml_math_nn.runs.checkpoint import FILE
    from ml_math_nn.runs.persistence import META_KEY, ModelFileError, checksum, write_archive

    config = TrainConfig(hidden=(8,), optimizer="adam", epochs=1, checkpoint_every=1)
    run_training(config, tmp_path, **QUIET)
    with np.load(tmp_path / FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop(META_KEY).tobytes())
    m = arrays["opt/m/0.W"]
    if change == "shape":
        arrays["opt/m/0.W"] = m[:-1]
    elif change == "dtype":
        arrays["opt/m/0.W"] = m.astype(np.float64)
    elif change == "missing":
        del arrays["opt/m/0.W"]
    else:
        arrays["opt/m/9.W"] = m
    write_archive(tmp_path / FILE, arrays, {**meta, "checksum": checksum(arrays)})
    message = {
        "shape": r"optimizer state 'm/0.W' has shape \(63, 8\) and dtype float32, expected \(64, 8\) and float32",
        "dtype": "optimizer state 'm/0.W' has shape .* and dtype float64, expected .* and float32",
        "missing": r"optimizer state 'm' is missing for \['0.W'\]",
        "stranger": "optimizer state 'm/9.W' belongs to no parameter of the network",
    }[change]
    with pytest.raises(ModelFileError, match=f"checkpoint.npz: {message}"):
        run_training(config.merged({"epochs": 2}), tmp_path, resume=True, **QUIET)
