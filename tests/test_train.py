"""Training behaviour: full epochs without replacement, reproducibility, accuracy on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.network import build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.runs.options import TrainConfig
from ml_math_nn.runs.training import run_training
from ml_math_nn.train import Trainer, batch_bounds, evaluate


def test_every_epoch_visits_every_sample_once(rng: np.random.Generator) -> None:
    X = np.arange(23, dtype=np.float64)[:, None]
    y = np.zeros(23, dtype=np.intp)
    net = build_mlp(1, (), 2, rng, dtype=np.float64)
    seen: list[np.ndarray] = []
    original = net.forward_backward

    def record(xb: np.ndarray, yb: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        seen.append(xb[:, 0].copy())
        return original(xb, yb, sample_weight)

    net.forward_backward = record  # type: ignore[method-assign]
    trainer = Trainer(net, SGD(1e-3), batch_size=5, rng=np.random.default_rng(0))
    for _ in range(3):
        seen.clear()
        trainer.train_epoch(X, y)
        assert [len(b) for b in seen] == [5, 5, 5, 5, 3]
        assert sorted(np.concatenate(seen).tolist()) == list(range(23))
    assert np.array_equal(X[:, 0], np.arange(23)), "training must not reorder the caller's data"


@pytest.mark.parametrize(
    "n,size,expected",
    [
        (23, 5, [5, 5, 5, 5, 3]),
        (21, 5, [5, 5, 5, 6]),
        (20, 5, [5, 5, 5, 5]),
        (1, 5, [1]),
        (6, 5, [6]),
        (3, 1, [1, 1, 1]),
    ],
)
def test_batches_cover_every_sample_and_never_leave_one_alone(n: int, size: int, expected: list[int]) -> None:
    bounds = batch_bounds(n, size)
    assert [stop - start for start, stop in bounds] == expected
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


def test_batch_norm_trains_when_one_sample_would_be_left_over(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(33, 4)), rng.integers(0, 2, size=33)
    net = build_mlp(4, (8,), 2, rng, batch_norm=True)
    before = {k: v.copy() for k, v in net.state().items()}
    trainer = Trainer(net, SGD(0.1), batch_size=8, rng=rng)
    seen: list[tuple[int, int, float]] = []
    trainer.on_batch = lambda t, info: seen.append((int(info["batch"]), int(info["batches"]), info["loss"]))
    loss = trainer.train_epoch(X.astype(np.float32), y)
    # 33 = 8 + 8 + 8 + 9: the one sample left over joins the last batch, and every batch updates
    assert [(b, n) for b, n, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    sizes = [8, 8, 8, 9]
    assert loss == pytest.approx(np.dot(sizes, [batch_loss for *_, batch_loss in seen]) / 33, rel=1e-6)
    after = net.state()
    assert all(np.isfinite(v).all() for v in after.values())
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    assert set(changed) == set(before)  # weights, batch norm's scale and shift, and its running statistics


def test_evaluate_counts_correct_predictions(rng: np.random.Generator) -> None:
    net = build_mlp(3, (4,), 3, rng, dtype=np.float64)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 3, size=50)
    loss, acc = evaluate(net, X, y, batch_size=7)
    assert acc == pytest.approx(np.mean(net.predict(X) == y))
    net.loss.forward(net.forward(X), y)
    assert loss == pytest.approx(net.loss.forward(net.forward(X), y), rel=1e-12)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return run_training(TrainConfig(), tmp_path_factory.mktemp("run"), lambda _: None)


def test_default_training_reaches_97_percent(default_run) -> None:  # type: ignore[no-untyped-def]
    assert default_run.history[-1]["test_acc"] >= 0.97
    assert len(default_run.history) == TrainConfig().epochs


def test_same_seed_gives_bit_identical_weights(default_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    again = run_training(TrainConfig(), tmp_path, lambda _: None)
    pairs = zip(default_run.model.network.parameters(), again.model.network.parameters(), strict=True)
    for (_, a, _), (_, b, _) in pairs:
        assert np.array_equal(a, b)
    assert again.history == default_run.history


def test_different_seed_gives_different_weights(default_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = run_training(TrainConfig(seed=1, epochs=1), tmp_path, lambda _: None)
    assert not np.array_equal(
        default_run.model.network.layers[0].params["W"], other.model.network.layers[0].params["W"]
    )


def test_float64_training_matches_float32_accuracy(default_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run64 = run_training(TrainConfig(dtype="float64"), tmp_path, lambda _: None)
    assert run64.model.network.dtype == np.float64
    assert abs(run64.history[-1]["test_acc"] - default_run.history[-1]["test_acc"]) <= 0.01


def test_invalid_options_are_rejected() -> None:
    for kwargs, message in [
        ({"lr": 0}, "learning rate"),
        ({"batch_size": 0}, "batch size"),
        ({"epochs": -1}, "epochs"),
        ({"test_size": 1.0}, "test size"),
        ({"hidden": (0,)}, "hidden"),
        ({"dtype": "float16"}, "dtype"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kwargs)  # type: ignore[arg-type]
