"""The loss heads: values, stability at extreme logits, gradients (finite differences and PyTorch),
weights, decisions, scores and the errors on bad targets."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ml_math_nn._registry import Registry
from ml_math_nn.gradcheck import check_network, numerical_gradient, relative_error
from ml_math_nn.losses import (
    Loss,
    MeanSquaredError,
    SigmoidCrossEntropy,
    SoftmaxCrossEntropy,
    check_sample_weight,
    log_softmax,
    loss_from_config,
    sigmoid,
    softmax,
)
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import SGD, Adam
from ml_math_nn.train import EarlyStopping, Trainer, evaluate


def test_softmax_rows_are_distributions(rng: np.random.Generator) -> None:
    p = softmax(rng.normal(size=(7, 5)) * 10)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)


def test_loss_matches_definition(rng: np.random.Generator) -> None:
    z = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, size=6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert SoftmaxCrossEntropy().forward(z, y) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_and_exact(dtype: type) -> None:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4], [0.0, 1e4, -1e4]], dtype=dtype)
    y = np.array([0, 1, 2, 0])
    p = softmax(z)
    assert np.all(np.isfinite(p)) and p.dtype == dtype
    np.testing.assert_allclose(p[0], [1, 0, 0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(p[3], [0, 1, 0])
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, y)
    # Sample losses: 0, log 3, log 3, and 1e4 (the true class is 1e4 below the maximum).
    assert np.isfinite(value)
    assert value == pytest.approx((0 + 2 * np.log(3) + 1e4) / 4, rel=1e-6)
    assert np.all(np.isfinite(loss.backward()))
    assert np.all(np.isfinite(log_softmax(z)))


def test_loss_gradient_is_probs_minus_onehot_over_m(rng: np.random.Generator) -> None:
    z = rng.normal(size=(5, 3))
    y = np.array([0, 2, 1, 1, 0])
    loss = SoftmaxCrossEntropy()
    loss.forward(z, y)
    grad = loss.backward()
    expected = (softmax(z) - np.eye(3)[y]) / 5
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=1e-17)
    numeric = numerical_gradient(lambda: SoftmaxCrossEntropy().forward(z, y), z)
    assert relative_error(grad, numeric) <= 1e-7


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="expected logits"):
        SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros(2, dtype=int))
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()


# -- the heads as components ---------------------------------------------------------


HEADS = [SoftmaxCrossEntropy, SigmoidCrossEntropy, MeanSquaredError]


def random_target(head: Loss, rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """Targets of the kind ``head`` expects for outputs (m, k)."""
    if isinstance(head, SoftmaxCrossEntropy):
        return rng.integers(0, k, size=m)
    if isinstance(head, SigmoidCrossEntropy):
        return (rng.random((m, k)) < 0.5).astype(np.float64)
    return rng.normal(size=(m, k)) * 3


def torch_sample_losses(torch: ModuleType, head: Loss, z: Any, target: np.ndarray) -> Any:
    """PyTorch's per-sample losses for ``head``: the framework's loss with reduction="none"."""
    f = torch.nn.functional
    if isinstance(head, SoftmaxCrossEntropy):
        return f.cross_entropy(z, torch.tensor(target), reduction="none")
    if isinstance(head, SigmoidCrossEntropy):
        return f.binary_cross_entropy_with_logits(z, torch.tensor(target), reduction="none").mean(dim=1)
    return f.mse_loss(z, torch.tensor(target), reduction="none").mean(dim=1)


def test_heads_are_registered_by_name() -> None:
    assert list(Loss.registry) == ["softmax_cross_entropy", "sigmoid_cross_entropy", "mean_squared_error"]
    for cls in HEADS:
        assert Loss.registry.lookup(cls.name) is cls
        assert isinstance(loss_from_config(cls().config()), cls)
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose one of: softmax_cross_entropy, sigmoid"):
        loss_from_config({"name": "hinge"})
    with pytest.raises(ValueError, match="invalid mean_squared_error loss config"):
        loss_from_config({"name": "mean_squared_error", "delta": 1.0})


@pytest.mark.parametrize("weighted", [False, True], ids=["mean", "weighted"])
@pytest.mark.parametrize("cls", HEADS, ids=lambda c: c.name)
def test_heads_match_pytorch(cls: type[Loss], weighted: bool, torch: ModuleType, rng: np.random.Generator) -> None:
    """Value and gradient against PyTorch's loss, on random shapes, in float64, to 1e-10.

    PyTorch's reduction="mean" is the unweighted case; the weighted mean is
    ``(w * losses).sum() / w.sum()`` of its reduction="none" losses.
    """
    for m, k in [(1, 1), (5, 3), (17, 1), (33, 7)]:
        head = cls()
        z = rng.normal(size=(m, k)) * 4
        target = random_target(head, rng, m, k)
        w = rng.random(m) * 3 if weighted else None
        value = head.forward(z, target, w)
        grad = head.backward()
        zt = torch.tensor(z, requires_grad=True)
        losses = torch_sample_losses(torch, head, zt, target)
        ref = (losses * torch.tensor(w)).sum() / w.sum() if weighted else losses.mean()
        ref.backward()
        assert value == pytest.approx(ref.item(), rel=1e-10, abs=1e-14)
        assert relative_error(grad, zt.grad.numpy()) <= 1e-10
        if not weighted:  # the framework's own mean reduction is the same number
            f = torch.nn.functional
            reduce = {
                "softmax_cross_entropy": f.cross_entropy,
                "sigmoid_cross_entropy": f.binary_cross_entropy_with_logits,
                "mean_squared_error": f.mse_loss,
            }[head.name]
            mean = reduce(zt, torch.tensor(target))
            assert value == pytest.approx(mean.item(), rel=1e-10, abs=1e-14)
        np.testing.assert_allclose(head.sample_losses(z, target), losses.detach().numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cls", HEADS, ids=lambda c: c.name)
def test_heads_match_finite_differences(cls: type[Loss], rng: np.random.Generator) -> None:
    head = cls()
    z = rng.normal(size=(6, 4)) * 2
    target = random_target(head, rng, 6, 4)
    for w in (None, rng.random(6) * 2, np.array([0.0, 1, 0, 2, 0, 0.5])):
        head.forward(z, target, w)
        grad = head.backward()
        numeric = numerical_gradient(lambda: cls().forward(z, target, w), z)  # noqa: B023
        assert relative_error(grad, numeric) <= 1e-7


@pytest.mark.parametrize("cls", HEADS, ids=lambda c: c.name)
def test_backward_gives_a_fresh_array(cls: type[Loss], rng: np.random.Generator) -> None:
    head = cls()
    z = rng.normal(size=(4, 3))
    head.forward(z, random_target(head, rng, 4, 3))
    first = head.backward()
    first[...] = 123.0
    assert not np.shares_memory(first, head.backward()) and np.all(head.backward() != 123.0)
    with pytest.raises(RuntimeError, match="before forward"):
        cls().backward()


def test_zero_weight_drops_a_sample(rng: np.random.Generator) -> None:
    """A sample of weight 0 changes nothing: the weighted mean is the mean of the others."""
    for cls in HEADS:
        head = cls()
        z = rng.normal(size=(5, 3))
        target = random_target(head, rng, 5, 3)
        w = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
        keep = w > 0
        assert head.forward(z, target, w) == pytest.approx(cls().forward(z[keep], target[keep]), rel=1e-14)
        grad = head.backward()
        other = cls()
        other.forward(z[keep], target[keep])
        np.testing.assert_allclose(grad[keep], other.backward(), rtol=1e-14)
        assert np.all(grad[~keep] == 0)
        # Weights scaled by a constant give the same loss.
        assert head.forward(z, target, 7 * w) == pytest.approx(head.forward(z, target, w), rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_cross_entropy_is_stable_at_extreme_logits(dtype: type) -> None:
    z = np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, 1e4, 30.0, -30.0]], dtype=dtype)
    y = np.array([[1, 0, 1, 0], [1, 0, 0, 1]], dtype=dtype)
    head = SigmoidCrossEntropy()
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no log(0), no 0/0
        value = head.forward(z, y)
        grad = head.backward()
        probs = head.activate(z)
    # Element losses: 0, 0, log 2, 1e4 | 1e4, 1e4, 30 + log(1+e^-30), 30 + log(1+e^-30).
    expected = (np.log(2) + 3e4 + 2 * (30 + np.log1p(np.exp(-30.0)))) / 8
    assert value == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(probs[0], [1, 0, 0.5, 1])
    np.testing.assert_allclose(grad * 8, [[0, 0, -0.5, 1], [-1, 1, 1, -1]], atol=1e-6)
    assert grad.dtype == dtype and probs.dtype == dtype


def test_decisions_and_scores(rng: np.random.Generator) -> None:
    z = np.array([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]])
    assert SoftmaxCrossEntropy().decide(z).tolist() == [0, 1]
    assert SoftmaxCrossEntropy().score(np.array([0, 1]), np.array([0, 2])) == 0.5
    np.testing.assert_allclose(SoftmaxCrossEntropy().activate(z), softmax(z))
    sig = SigmoidCrossEntropy()
    assert sig.decide(z).tolist() == [[1, 0, 1], [1, 1, 0]]
    assert sig.decide(np.zeros((1, 2))).tolist() == [[0, 0]]  # p = 0.5 exactly is not above 0.5
    # Subset accuracy: a row counts only when every label is right.
    assert sig.score(sig.decide(z), np.array([[1, 0, 1], [1, 1, 1]])) == 0.5
    mse = MeanSquaredError()
    assert mse.decide(z) is z and mse.activate(z) is z


def test_r2_score_matches_scikit_learn(rng: np.random.Generator) -> None:
    from sklearn.metrics import r2_score

    y = rng.normal(size=(40, 3)) * [1, 5, 0.1]
    pred = y + rng.normal(size=(40, 3)) * 0.5
    head = MeanSquaredError()
    assert head.score(pred, y) == pytest.approx(r2_score(y, pred), rel=1e-12)
    assert head.score(pred[:, 0], y[:, 0]) == pytest.approx(r2_score(y[:, 0], pred[:, 0]), rel=1e-12)
    # A constant target: 1 if predicted exactly, else 0 (scikit-learn's force_finite).
    const = np.ones((5, 2))
    assert head.score(const, const) == 1.0
    assert head.score(const + [[0.1, 0.0]], const) == pytest.approx(r2_score(const, const + [[0.1, 0.0]]))


def test_one_output_takes_a_vector_target(rng: np.random.Generator) -> None:
    z = rng.normal(size=(6, 1))
    for cls, target in [(MeanSquaredError, rng.normal(size=6)), (SigmoidCrossEntropy, np.array([0, 1, 1, 0, 1, 0]))]:
        assert cls().forward(z, target) == pytest.approx(cls().forward(z, target[:, None]), rel=1e-15)


def test_target_errors_are_one_line() -> None:
    z = np.zeros((3, 4))
    cases = [
        (SoftmaxCrossEntropy().check_target, np.array([0, -1, 2]), "labels must be in 0..3, got -1"),
        (SoftmaxCrossEntropy().check_target, np.array([0, 4, 2]), "labels must be in 0..3, got 4"),
        (SoftmaxCrossEntropy().check_target, np.array([0.0, 1.0, 2.0]), r"expected integer labels of shape \(3,\)"),
        (SoftmaxCrossEntropy().check_target, np.array([[0, 1, 2]]), r"expected integer labels of shape \(3,\)"),
        (SigmoidCrossEntropy().check_target, np.full((3, 4), 0.5), "must be 0/1 indicators, got 0.5"),
        (SigmoidCrossEntropy().check_target, np.full((3, 4), np.nan), "must be 0/1 indicators, got nan"),
        (SigmoidCrossEntropy().check_target, np.zeros((3, 3)), r"expected targets of shape \(3, 4\), got \(3, 3\)"),
        (MeanSquaredError().check_target, np.full((3, 4), np.inf), "targets must be finite, got inf"),
        (MeanSquaredError().check_target, np.zeros(3), r"expected targets of shape \(3, 4\), got \(3,\)"),
        (MeanSquaredError().check_target, np.full((3, 4), "a"), "targets must be real numbers"),
    ]
    for check, target, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            check(target, z.shape)
        assert "\n" not in str(info.value)
    # forward finds a label >= K (or < -K) in the indexing it does anyway, and names it.
    with pytest.raises(ValueError, match="labels must be in 0..3, got 7"):
        SoftmaxCrossEntropy().forward(z, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match="expected outputs of shape"):
        MeanSquaredError().forward(np.zeros(3), np.zeros(3))


def test_sample_weight_errors() -> None:
    z = np.zeros((3, 2))
    y = np.array([0, 1, 1])
    for w, message in [
        (np.ones(2), r"one weight per sample, shape \(3,\), got shape \(2,\)"),
        (np.array([1.0, -1.0, 1.0]), "weights must be >= 0, got -1.0"),
        (np.array([1.0, np.nan, 1.0]), "weights must be finite, got nan"),
        (np.zeros(3), "the weights are all zero"),
    ]:
        with pytest.raises(ValueError, match=message):
            SoftmaxCrossEntropy().forward(z, y, w)
        with pytest.raises(ValueError, match=message):
            MeanSquaredError().forward(z, z, w)
    assert check_sample_weight([1, 2, 3], 3).dtype == np.float64


# -- the head in the network -----------------------------------------------------------


@pytest.mark.parametrize("cls", HEADS, ids=lambda c: c.name)
def test_network_finite_differences_with_each_head(cls: type[Loss], rng: np.random.Generator) -> None:
    net = build_mlp(5, (6, 4), 3, rng, "tanh", np.float64, l2=0.1, loss=cls())
    x = rng.normal(size=(7, 5))
    target = random_target(net.loss, rng, 7, 3)
    for w in (None, rng.random(7)):
        results = check_network(net, x, target, sample_weight=w)
        assert max(err for _, err in results.values()) <= 1e-7, results


def test_forward_backward_uses_the_head(rng: np.random.Generator) -> None:
    net = build_mlp(4, (5,), 2, rng, dtype=np.float64, l2=0.01, loss=MeanSquaredError())
    x, target, w = rng.normal(size=(6, 4)), rng.normal(size=(6, 2)), rng.random(6)
    loss, output = net.forward_backward(x, target, w)
    assert loss == pytest.approx(MeanSquaredError().forward(output, target, w) + net.penalty(), rel=1e-15)
    np.testing.assert_array_equal(output, net.forward(x))


def test_each_head_learns_a_toy_problem(rng: np.random.Generator) -> None:
    X = rng.normal(size=(300, 4))
    labels = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5], axis=1).astype(np.float64)
    values = np.stack([X[:, 0] - 2 * X[:, 1], np.sin(X[:, 2]) + X[:, 3] ** 2], axis=1)
    for head, target, metric, floor in [
        (SigmoidCrossEntropy(), labels, "train_acc", 0.9),
        (MeanSquaredError(), values, "train_r2", 0.9),
    ]:
        net = build_mlp(4, (32,), target.shape[1], np.random.default_rng(0), dtype=np.float64, loss=head)
        before = evaluate(net, X, target)
        history = Trainer(net, Adam(1e-2), 32, np.random.default_rng(1)).fit(X, target, 60)
        assert history[-1]["train_loss"] < before[0] / 5
        assert history[-1][metric] >= floor, history[-1]
        assert evaluate(net, X, target) == (history[-1]["train_loss"], history[-1][metric])


def test_predictions_go_through_the_head(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 3))
    default = build_mlp(3, (4,), 3, rng)
    np.testing.assert_array_equal(default.predict(x), default.forward(x.astype(np.float32)).argmax(axis=1))
    np.testing.assert_allclose(default.predict_proba(x).sum(axis=1), 1, rtol=1e-6)
    multi = build_mlp(3, (4,), 3, rng, dtype=np.float64, loss=SigmoidCrossEntropy())
    np.testing.assert_array_equal(multi.predict_proba(x), sigmoid(multi.forward(x)))
    assert multi.predict(x).shape == (5, 3) and set(np.unique(multi.predict(x))) <= {0, 1}
    reg = build_mlp(3, (4,), 2, rng, dtype=np.float64, loss=MeanSquaredError())
    np.testing.assert_array_equal(reg.predict(x), reg.forward(x))
    assert reg.predict(x[:0]).shape == (0, 2) and default.predict_proba(x[:0]).shape == (0, 3)
    with pytest.raises(ValueError, match="the mean_squared_error head predicts values, not probabilities"):
        reg.predict_proba(x)


def test_network_config_records_only_a_chosen_head(rng: np.random.Generator, tmp_path: Path) -> None:
    from ml_math_nn.runs.persistence import Model, load_model, save_model

    default = build_mlp(3, (4,), 2, rng)
    assert "loss" not in default.config() and "loss" not in repr(default)
    assert isinstance(Network.from_config(default.config()).loss, SoftmaxCrossEntropy)
    for cls in (SigmoidCrossEntropy, MeanSquaredError):
        net = build_mlp(3, (4,), 2, rng, loss=cls())
        assert net.config()["loss"] == {"name": cls.name}
        assert isinstance(Network.from_config(net.config()).loss, cls)
        save_model(tmp_path / cls.name, Model(net, ["a", "b"]))
        loaded = load_model(tmp_path / cls.name)
        assert isinstance(loaded.network.loss, cls) and loaded.network.config() == net.config()
        x = rng.normal(size=(4, 3)).astype(np.float32)
        np.testing.assert_array_equal(loaded.network.predict(x), net.predict(x))
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        Network.from_config({**default.config(), "loss": {"name": "nope"}})


def test_trainer_checks_the_targets_once(rng: np.random.Generator) -> None:
    net = build_mlp(2, (), 3, rng, dtype=np.float64)
    trainer = Trainer(net, SGD(0.1), 4, rng)
    with pytest.raises(ValueError, match="labels must be in 0..2, got -1"):
        trainer.fit(rng.normal(size=(6, 2)), np.array([0, 1, 2, -1, 0, 1]), 1)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        trainer.fit(rng.normal(size=(6, 2)), np.zeros(6, dtype=int), 1, sample_weight=-np.ones(6))


def test_trainer_sample_weights(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)

    def train(w: np.ndarray | None) -> tuple[list[dict[str, float]], Network]:
        net = build_mlp(3, (5,), 2, np.random.default_rng(0), dtype=np.float64)
        return Trainer(net, SGD(0.1), 6, np.random.default_rng(1)).fit(X, y, 3, sample_weight=w), net

    plain, net_plain = train(None)
    equal, net_equal = train(np.full(20, 2.5))  # equal weights: the plain mean, up to rounding
    for (_, a, _), (_, b, _) in zip(net_plain.parameters(), net_equal.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert [r["train_acc"] for r in equal] == [r["train_acc"] for r in plain]
    # The weights follow their samples through the shuffle: a sample of weight 0 is never learnt from.
    net = build_mlp(3, (), 2, np.random.default_rng(0), dtype=np.float64)
    trainer = Trainer(net, SGD(0.1), 20, np.random.default_rng(1))
    w = (np.arange(20) < 10).astype(np.float64)
    epoch_loss = trainer.train_epoch(X, y, w)
    reference = build_mlp(3, (), 2, np.random.default_rng(0), dtype=np.float64)
    start = {name: p.copy() for name, p, _ in reference.parameters()}
    assert epoch_loss == pytest.approx(reference.forward_backward(X[:10], y[:10])[0], rel=1e-12)
    trained = {name: p for name, p, _ in net.parameters()}
    for name, _, g in reference.parameters():
        np.testing.assert_allclose(trained[name], start[name] - 0.1 * g, rtol=1e-12)
    # A batch whose weights are all zero makes no update: one of the four batches has the only weight.
    steps: list[float] = []
    trainer = Trainer(build_mlp(3, (), 2, rng), SGD(0.1), 5, np.random.default_rng(2))
    trainer.on_batch = lambda t, record: steps.append(record["batch"])
    trainer.train_epoch(X, y, np.eye(20)[3])
    assert len(steps) == 1


def test_early_stopping_on_r2_is_higher_is_better() -> None:
    stopper = EarlyStopping("val_r2", patience=1)
    assert stopper.higher_is_better and stopper.improved(0.5) and not EarlyStopping("val_loss").higher_is_better


def test_early_stopping_reads_the_score_names_from_the_registered_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new head with a score of its own needs no edit of EarlyStopping: its ``score_name`` is higher-is-better."""
    monkeypatch.setattr(Loss, "registry", Registry("loss"))  # the head below is registered there only

    class Hinge(SoftmaxCrossEntropy):
        name = "hinge_for_this_test"
        score_name = "margin"

    assert Loss.registry.lookup("hinge_for_this_test") is Hinge
    assert EarlyStopping("val_margin").higher_is_better
    assert not EarlyStopping("val_acc").higher_is_better  # no registered head scores "acc" here
    monkeypatch.undo()
    assert "hinge_for_this_test" not in Loss.registry
    assert EarlyStopping("val_acc").higher_is_better and EarlyStopping("val_r2").higher_is_better
    assert not EarlyStopping("val_margin").higher_is_better and not EarlyStopping("val_loss").higher_is_better
