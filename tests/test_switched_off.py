"""Tests that fail when a feature is silently switched off or reversed (issue 22).

Each feature here was once unplugged by hand (the trainer ignoring ``clip_norm`` or
``augment``, a score monitored as a loss, the scaler fitted on test rows, evaluation in
training mode) and the rest of the suite still passed, because it compared a run only
with itself.  These tests compare with something computed another way: the same updates
done by hand, the batches the network was actually given, the statistics of the training
rows alone, a network without its dropout layers.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_math_nn.data import datasets as data
from ml_math_nn.data.augment import random_shifts
from ml_math_nn.layers import BatchNorm, Dropout
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.runs.builders import load_configured_dataset, prepare_data, validation_split
from ml_math_nn.runs.options import MONITOR_NAMES, TrainConfig
from ml_math_nn.runs.training import run_training
from ml_math_nn.schedules import ReduceOnPlateau
from ml_math_nn.train import EarlyStopping, Trainer, TrainingDiverged, evaluate

QUIET = {"report": lambda _: None}
# A small digits run: a few hundred images, one narrow hidden layer, a validation split.
SMALL = {"subset": 300, "hidden": (16,), "batch_size": 32, "val_size": 0.25, "lr": 0.1}

# Which way each monitor improves; a new monitor must be added here (and so be tested).
DIRECTION = {"val_loss": "min", "val_acc": "max", "val_r2": "max", "val_mse": "min", "val_mae": "min"}


@pytest.fixture(autouse=True)
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs here are about training; drawing their figures would triple their time."""
    import ml_math_nn.results.plots as plots
    import ml_math_nn.runs.training as training

    def skip(*args: Any, **kwargs: Any) -> None:
        pass

    monkeypatch.setattr(plots, "write_run_figures", skip)
    monkeypatch.setattr(training, "write_run_figures", skip, raising=False)


def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every mini-batch any network is trained on from now on (copies: the trainer reuses buffers)."""
    seen: list[np.ndarray] = []
    original = Network.forward_backward

    def spy(self: Network, x: Any, target: Any, sample_weight: Any = None) -> tuple[float, Any]:
        seen.append(np.array(x, copy=True))
        return original(self, x, target, sample_weight)

    monkeypatch.setattr(Network, "forward_backward", spy)
    return seen


def global_grad_norm(network: Network) -> float:
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for _, _, g in network.parameters()))


# -- gradient clipping ------------------------------------------------------------------
def test_clipped_training_equals_the_updates_computed_by_hand(rng: np.random.Generator) -> None:
    # Full batches: the shuffle cannot change the gradient, so the trainer's run and the
    # hand-made one see the same batch.  Plain SGD: p <- p - lr * g * min(1, c / (|g| + 1e-6)).
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    net = build_mlp(5, (8,), 3, np.random.default_rng(1), dtype=np.float64)
    by_hand = copy.deepcopy(net)
    lr, c = 0.5, 0.05
    Trainer(net, SGD(lr), batch_size=len(X), rng=np.random.default_rng(0), clip_norm=c).fit(X, y, 4)
    norms = []
    for _ in range(4):
        by_hand.forward_backward(X, y)
        norm = global_grad_norm(by_hand)
        norms.append(norm)
        for _, param, grad in by_hand.parameters():
            param -= lr * grad * min(1.0, c / (norm + 1e-6))
    assert min(norms) > 10 * c  # every update was clipped, by a lot
    for (name, p, _), (_, q, _) in zip(net.parameters(), by_hand.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12, err_msg=name)


def test_a_run_with_clip_norm_steps_with_gradients_of_that_norm(tmp_path: Path) -> None:
    # The option reaches the trainer: after every update the gradients it used have norm c.
    c, norms = 1e-3, []
    config = TrainConfig(**SMALL, epochs=2, clip_norm=c)
    run_training(config, tmp_path / "run", on_batch=lambda t, _: norms.append(global_grad_norm(t.network)), **QUIET)
    assert len(norms) > 10
    np.testing.assert_allclose(norms, c, rtol=1e-5)


# -- augmentation -------------------------------------------------------------------------
def shifted_images(X: np.ndarray, shape: tuple[int, int], fill: float) -> set[bytes]:
    """Every row of ``X`` moved by each of the 9 offsets in {-1, 0, 1}^2, as bytes."""
    h, w = shape
    images = X.reshape(len(X), h, w)
    out: set[bytes] = set()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            moved = np.full_like(images, fill)
            moved[:, max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = images[
                :, max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
            ]
            out.update(row.tobytes() for row in moved.reshape(len(X), -1))
    return out


def test_the_trainer_gives_the_network_augmented_batches(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    X = rng.integers(1, 9, size=(60, 16)).astype(np.float64)  # 4x4 images, no pixel blank
    y = rng.integers(0, 2, size=60)
    before = X.copy()
    seen = record_batches(monkeypatch)
    net = build_mlp(16, (4,), 2, rng, dtype=np.float64)
    Trainer(net, SGD(0.01), 16, np.random.default_rng(0), augment=random_shifts((4, 4), 0.0)).fit(X, y, 2)
    rows = np.concatenate(seen)
    originals = {row.tobytes() for row in X}
    moved = [row.tobytes() not in originals for row in rows]
    assert len(rows) == 2 * len(X)
    assert 0.6 < np.mean(moved) < 1.0  # 8 of 9 offsets move an image (0 then it is switched off)
    assert all(row.tobytes() in shifted_images(X, (4, 4), 0.0) for row in rows)  # ... each a shift of one
    np.testing.assert_array_equal(X, before)  # the caller's data untouched


def test_a_run_with_augment_trains_on_shifted_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(**SMALL, epochs=1, augment=True)
    prepared = prepare_data(config)
    X = np.asarray(prepared.X_train[np.arange(len(prepared.y_train))])
    blank = float(prepared.scaler.transform(np.zeros((1, X.shape[1])))[0, 0])
    seen = record_batches(monkeypatch)
    run_training(config, tmp_path / "run", **QUIET)
    rows = np.concatenate(seen)
    originals = {row.tobytes() for row in X}
    assert len(rows) == len(X)
    assert np.mean([row.tobytes() not in originals for row in rows]) > 0.6
    shifts = shifted_images(X, (8, 8), blank)
    assert all(row.tobytes() in shifts for row in rows)


# -- monitors: early stopping and reduce-on-plateau, both directions ----------------------
def test_every_monitor_has_a_known_direction() -> None:
    assert set(MONITOR_NAMES) <= set(DIRECTION), set(MONITOR_NAMES) - set(DIRECTION)


@pytest.mark.parametrize("monitor", MONITOR_NAMES)
@pytest.mark.parametrize("trend", ["rises", "falls"])
def test_early_stopping_keeps_the_best_epoch_in_the_monitor_s_direction(monitor: str, trend: str) -> None:
    values = [0.5, 0.6, 0.7, 0.65, 0.62, 0.61] if trend == "rises" else [0.7, 0.6, 0.5, 0.55, 0.58, 0.59]
    net = build_mlp(2, (), 2, np.random.default_rng(0), dtype=np.float64)
    trainer = Trainer(net, SGD(0.1), 4, np.random.default_rng(0))
    stopper = EarlyStopping(monitor, patience=2)
    weights = net.layers[0].params["W"]
    for epoch, value in enumerate(values, 1):
        weights[...] = epoch  # each epoch's weights say which epoch they are
        stopper(trainer, {"epoch": float(epoch), monitor: value})
        if trainer.stop:
            break
    best = values.index(max(values) if DIRECTION[monitor] == "max" else min(values)) + 1
    if (DIRECTION[monitor] == "max") == (trend == "rises"):  # improves twice, then two worse: stop
        assert (best, epoch, trainer.stop) == (3, 5, True)
    else:  # never improves after the first: stops after patience
        assert (best, epoch, trainer.stop) == (1, 3, True)
    assert stopper.best_epoch == best
    stopper.close(trainer)
    np.testing.assert_array_equal(weights, best)


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])  # a classification run's monitors
def test_a_run_with_early_stopping_keeps_the_best_epoch_of_its_monitor(monitor: str, tmp_path: Path) -> None:
    config = TrainConfig(**{**SMALL, "lr": 0.5}, epochs=8, early_stopping=True, monitor=monitor, patience=3)
    result = run_training(config, tmp_path / "run", **QUIET)
    values = [r[monitor] for r in result.history]
    pick = max if DIRECTION[monitor] == "max" else min
    best = values.index(pick(values)) + 1  # the first epoch that reached the best value
    assert result.summary["best_epoch"] == best
    # The model kept is the best epoch's: it scores on the validation split what that epoch recorded.
    prepared = prepare_data(config)
    kept = evaluate(result.model.network, prepared.X_val, prepared.y_val)
    assert kept == pytest.approx((result.history[best - 1]["val_loss"], result.history[best - 1]["val_acc"]), rel=1e-6)
    assert best < len(values) and values[-1] != values[best - 1]  # a later, worse epoch was undone


@pytest.mark.parametrize("mode", ["min", "max"])
def test_reduce_on_plateau_cuts_only_when_the_metric_stops_improving(mode: str) -> None:
    # A steady improvement in the mode's direction keeps the rate; the other way cuts it
    # after `patience` epochs in a row without improvement (patience 1: every second epoch).
    sign = 1 if mode == "max" else -1
    better = [1.0 + sign * 0.1 * e for e in range(6)]
    worse = [1.0 - sign * 0.1 * e for e in range(6)]
    for values, expected in ((better, [1.0] * 6), (worse, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25])):
        opt = SGD(1.0)
        schedule = ReduceOnPlateau(opt, mode=mode, factor=0.5, patience=1)
        rates = []
        for value in values:
            schedule.step(value)
            rates.append(opt.lr)
        assert rates == expected, (values, rates)


def test_a_run_with_the_plateau_schedule_cuts_the_rate_when_val_loss_stops_falling(tmp_path: Path) -> None:
    # The run's plateau schedule watches val_loss, lower is better: replay its rule on the
    # recorded val_loss (torch's relative threshold 1e-4) and compare with the recorded rates.
    config = TrainConfig(**{**SMALL, "lr": 0.8}, epochs=10, schedule="plateau", plateau_patience=0, gamma=0.5)
    history = run_training(config, tmp_path / "run", **QUIET).history
    lr, best, expected = 0.8, math.inf, []
    for record in history:
        expected.append(lr)
        if record["val_loss"] < best * (1 - 1e-4):
            best = record["val_loss"]
        else:
            lr *= 0.5
    assert [r["lr"] for r in history] == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1  # the rate was cut at least once


# -- scaling fitted on the training rows alone --------------------------------------------
@pytest.mark.parametrize("val_size", [0.0, 0.25])
def test_the_scaler_is_fitted_on_the_training_rows_alone(val_size: float) -> None:
    config = TrainConfig(subset=400, val_size=val_size, dtype="float64")
    dataset = load_configured_dataset(config)
    X_raw = dataset.X_train
    if val_size:
        X_raw, X_val_raw, _, _ = validation_split(X_raw, dataset.y_train, val_size, config.seed)
    prepared = prepare_data(config)
    assert len(prepared.y_train) == len(X_raw) < len(dataset.X_train) + len(dataset.X_test)
    # digits are images: one mean and one deviation over every pixel of the training rows
    np.testing.assert_allclose(prepared.scaler.mean, X_raw.mean(), rtol=1e-12)
    np.testing.assert_allclose(prepared.scaler.scale, X_raw.std(), rtol=1e-12)
    X_test = (dataset.X_test - X_raw.mean()) / X_raw.std()
    np.testing.assert_allclose(prepared.X_test, X_test, rtol=1e-10, atol=1e-12)


def test_the_scaler_of_a_table_is_fitted_per_column_on_the_training_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(loc=[0.0, 5.0, -3.0], scale=[1.0, 2.0, 0.5], size=(80, 3))
    y = np.arange(80) % 2
    path = tmp_path / "table.npz"
    np.savez(path, X=X, y=y)
    config = TrainConfig(dataset=f"npz:{path}", val_size=0.25, dtype="float64")
    prepared = prepare_data(config)
    X_train_raw, _, y_train_raw, _ = data.split(X, y, config.test_size, config.seed)
    train = validation_split(X_train_raw, y_train_raw, 0.25, config.seed)[0]
    # (the file's columns are read as float32: agreement to float32 rounding; with the test
    # rows included the statistics move by about 1e-2)
    np.testing.assert_allclose(prepared.scaler.mean, train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(prepared.scaler.scale, train.std(axis=0), rtol=1e-6)
    X_train = np.asarray(prepared.X_train[np.arange(len(prepared.y_train))])
    np.testing.assert_allclose(X_train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(X_train.std(axis=0), 1.0, rtol=1e-6)


# -- evaluation in inference mode -----------------------------------------------------------
def trained_net(rng: np.random.Generator, **options: Any) -> tuple[Network, np.ndarray, np.ndarray]:
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, size=64)
    net = build_mlp(6, (12, 8), 3, rng, dtype=np.float64, **options)
    net.set_rng(np.random.default_rng(7))
    Trainer(net, SGD(0.1), 16, np.random.default_rng(0)).fit(X, y, 3, eval_train=False)
    return net, X, y


def test_evaluate_uses_no_dropout(rng: np.random.Generator) -> None:
    net, X, y = trained_net(rng, dropout=0.5)
    without = Network([layer for layer in net.layers if not isinstance(layer, Dropout)], np.float64)
    logits = without.forward(X)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss, acc = evaluate(net, X, y, batch_size=10)
    assert loss == pytest.approx(-log_p[np.arange(len(y)), y].mean(), rel=1e-12)
    assert acc == np.mean(logits.argmax(axis=1) == y)
    np.testing.assert_allclose(net.predict_proba(X), np.exp(log_p), rtol=1e-12)


def test_evaluate_normalises_with_the_running_statistics(rng: np.random.Generator) -> None:
    net, X, y = trained_net(rng, batch_norm=True)
    state = {k: v.copy() for k, v in net.state().items()}
    # By hand: Dense -> (z - running mean) / sqrt(running var + eps) * gamma + beta -> ReLU, twice, then Dense.
    h = X
    for layer in net.layers:
        if isinstance(layer, BatchNorm):
            mean, var = layer.buffers["running_mean"], layer.buffers["running_var"]
            h = (h - mean) / np.sqrt(var + layer.eps) * layer.params["gamma"] + layer.params["beta"]
        elif "W" in layer.params:
            h = h @ layer.params["W"] + layer.params.get("b", 0.0)
        else:
            h = np.maximum(h, 0.0)
    loss, acc = evaluate(net, X, y, batch_size=5)  # chunks of 5: batch statistics would differ by chunk
    p = np.exp(h - h.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), rel=1e-10)
    assert acc == np.mean(h.argmax(axis=1) == y)
    for name, value in net.state().items():  # evaluating moved no running statistic
        np.testing.assert_array_equal(value, state[name], err_msg=name)


# -- survivors of make mutants (docs/mutation-testing.md), killed here --------------------
def test_a_plateau_schedule_restored_mid_plateau_keeps_counting() -> None:
    # Saved two epochs into a plateau (patience 3), the restored schedule cuts the rate after
    # two more bad epochs, as the one never saved does; a count reset would wait five.
    straight, first = SGD(1.0), SGD(1.0)
    a = ReduceOnPlateau(straight, factor=0.5, patience=3)
    b = ReduceOnPlateau(first, factor=0.5, patience=3)
    for value in (1.0, 1.0, 1.0):
        a.step(value)
        b.step(value)
    assert b.state_dict()["bad_epochs"] == 2
    second = SGD(1.0)
    c = ReduceOnPlateau(second, factor=0.5, patience=3)
    c.load_state_dict(b.state_dict())
    rates_straight, rates_restored = [], []
    for _ in range(4):
        a.step(1.0)
        c.step(1.0)
        rates_straight.append(straight.lr)
        rates_restored.append(second.lr)
    assert rates_restored == rates_straight == [1.0, 0.5, 0.5, 0.5]


def test_a_non_finite_loss_stops_training_before_the_update(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    X[7, 1] = np.inf
    net = build_mlp(3, (4,), 2, rng, dtype=np.float64)
    before = {k: v.copy() for k, v in net.state().items()}
    with pytest.raises(TrainingDiverged, match=r"^loss became nan at epoch 1, batch 1; try a smaller learning rate$"):
        Trainer(net, SGD(0.1), batch_size=20, rng=rng).fit(X, y, 2)
    for name, value in net.state().items():  # the NaN gradient never reached the weights
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_checkpoint_keeps_early_stopping_s_count_of_epochs_without_improvement(tmp_path: Path) -> None:
    from ml_math_nn.runs.checkpoint import RunState, load_checkpoint, save_checkpoint
    from ml_math_nn.schedules import make_schedule

    def run_state() -> RunState:
        net = build_mlp(2, (3,), 2, np.random.default_rng(0), dtype=np.float64)
        trainer = Trainer(net, SGD(0.1), 4, np.random.default_rng(0))
        return RunState(trainer, make_schedule("constant", trainer.optimizer), EarlyStopping("val_loss", 5), {})

    saved = run_state()
    for epoch, value in enumerate([0.5, 0.7, 0.6], 1):  # best at epoch 1, then two epochs without improvement
        record = {"epoch": float(epoch), "val_loss": value}
        saved.trainer.history.append(record)
        assert saved.stopper is not None
        saved.stopper(saved.trainer, record)
    save_checkpoint(tmp_path, saved)
    restored = run_state()
    assert load_checkpoint(tmp_path, restored) == 3
    assert restored.stopper is not None
    assert (restored.stopper.best, restored.stopper.best_epoch, restored.stopper.wait) == (0.5, 1, 2)
    assert saved.stopper.best_state.keys() == restored.stopper.best_state.keys() != set()
    for name, value in saved.stopper.best_state.items():  # the best epoch's weights, to restore at the end
        np.testing.assert_array_equal(restored.stopper.best_state[name], value, err_msg=name)
