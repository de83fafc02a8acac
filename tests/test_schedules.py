"""Learning-rate schedules: torch.optim.lr_scheduler epoch by epoch, saved state, settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ml_math_nn.optim import SGD, make_optimizer
from ml_math_nn.schedules import (
    SCHEDULES,
    Cosine,
    ReduceOnPlateau,
    Schedule,
    StepLR,
    Warmup,
    make_schedule,
    schedule_from_config,
)

EPOCHS = 100
LR = 0.1


def metrics() -> list[float]:
    """A validation loss that falls, then wanders on plateaus, with some noise."""
    rng = np.random.default_rng(3)
    trend = 1.0 / (1.0 + 0.2 * np.arange(EPOCHS)) + 0.3 * (np.arange(EPOCHS) > 60)
    return [float(x) for x in trend * np.exp(rng.normal(scale=0.02, size=EPOCHS))]


def our_lrs(schedule: Schedule, values: list[float] | None = None, first: int = 0, epochs: int = EPOCHS) -> list[float]:
    """``optimizer.lr`` before the first epoch and after each ``step(metric)``."""
    values = metrics() if values is None else values
    lrs = [schedule.optimizer.lr] if first == 0 else []
    for e in range(first, epochs):
        schedule.step(values[e])
        lrs.append(schedule.optimizer.lr)
    return lrs


def torch_lrs(torch: ModuleType, build: Callable[[Any], Any], values: list[float] | None = None) -> list[float]:
    """The same with a torch scheduler; ``values`` given means it takes the metric (plateau)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = build(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for value in metrics() if values is None else values:
        opt.step()  # no gradients, so nothing moves; torch warns if a scheduler steps first
        if values is None:
            scheduler.step()
        else:
            scheduler.step(value)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


# (our name, our options, torch scheduler builder); warm-ups map to LinearLR + SequentialLR.
def sequential(torch: ModuleType, opt: Any, warmup: int, factor: float, inner: Any) -> Any:
    linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=factor, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(opt, [linear, inner], milestones=[warmup])


CASES: list[tuple[str, dict[str, Any], Callable[[ModuleType, Any], Any]]] = [
    ("constant", {}, lambda t, o: t.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    ("step", {"step_size": 7, "gamma": 0.5}, lambda t, o: t.optim.lr_scheduler.StepLR(o, 7, gamma=0.5)),
    ("exponential", {"gamma": 0.95}, lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, 0.95)),
    ("cosine", {"t_max": 100}, lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 100)),
    # past t_max the cosine comes back up, in both
    ("cosine", {"t_max": 30, "eta_min": 1e-3}, lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 30, 1e-3)),
    (
        "constant",
        {"warmup_epochs": 5},
        lambda t, o: sequential(t, o, 5, 1 / 3, t.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    ),
    (
        "step",
        {"step_size": 10, "gamma": 0.3, "warmup_epochs": 4, "start_factor": 0.1},
        lambda t, o: sequential(t, o, 4, 0.1, t.optim.lr_scheduler.StepLR(o, 10, 0.3)),
    ),
    (
        "exponential",
        {"gamma": 0.9, "warmup_epochs": 1, "start_factor": 0.5},
        lambda t, o: sequential(t, o, 1, 0.5, t.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ),
    (
        "cosine",
        {"t_max": 40, "eta_min": 1e-4, "warmup_epochs": 10, "start_factor": 0.01},
        lambda t, o: sequential(t, o, 10, 0.01, t.optim.lr_scheduler.CosineAnnealingLR(o, 40, 1e-4)),
    ),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items()) or 'defaults'}" for name, options, _ in CASES]


@pytest.mark.parametrize(("name", "options", "build"), CASES, ids=IDS)
def test_matches_torch_lr_scheduler(
    name: str, options: dict[str, Any], build: Callable[[ModuleType, Any], Any], torch: ModuleType
) -> None:
    """The rate of each of 100 epochs agrees with torch's to a relative error <= 1e-10."""
    ours = our_lrs(make_schedule(name, SGD(LR), **options))
    theirs = torch_lrs(torch, lambda opt: build(torch, opt))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)
    assert len(set(ours)) > (1 if name != "constant" else 0)


PLATEAUS: list[dict[str, Any]] = [
    {},
    {"patience": 3, "factor": 0.5, "threshold": 1e-2, "min_lr": 0.01},
    {"patience": 0, "factor": 0.7, "threshold": 0.0},
    {"mode": "max", "patience": 2, "factor": 0.5},
]


@pytest.mark.parametrize("options", PLATEAUS, ids=[str(o) for o in PLATEAUS])
def test_plateau_matches_torch(options: dict[str, Any], torch: ModuleType) -> None:
    # in "max" mode the metric is accuracy-like: rising, with the same plateaus
    values = [1 - v for v in metrics()] if options.get("mode") == "max" else metrics()
    ours = our_lrs(make_schedule("plateau", SGD(LR), **options), values)
    theirs = torch_lrs(torch, lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **options), values)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)
    assert min(ours) < LR, "the metric sequence must trigger at least one reduction"


def test_warmup_then_plateau_matches_torch_by_hand(torch: ModuleType) -> None:
    """torch's SequentialLR refuses ReduceLROnPlateau: LinearLR for W epochs, then the plateau."""
    warmup, options = 5, {"patience": 2, "factor": 0.5}
    ours = our_lrs(make_schedule("plateau", SGD(LR), warmup_epochs=warmup, start_factor=0.2, **options))

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=warmup)
    theirs = [opt.param_groups[0]["lr"]]
    for _ in range(warmup):
        opt.step()
        linear.step()
        theirs.append(opt.param_groups[0]["lr"])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
    for value in metrics()[warmup:]:
        opt.step()
        plateau.step(value)
        theirs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


def test_the_closed_forms() -> None:
    """Spot values of each docstring formula, computed by hand."""
    step = StepLR(SGD(1.0), step_size=3, gamma=0.5)
    assert [step.lr_at(e) for e in (0, 2, 3, 5, 6)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    cosine = Cosine(SGD(1.0), t_max=4, eta_min=0.2)
    assert [cosine.lr_at(e) for e in (0, 2, 4, 8)] == pytest.approx([1.0, 0.6, 0.2, 1.0])
    warm = Warmup(make_schedule("constant", SGD(1.0)), warmup_epochs=4, start_factor=0.2)
    assert our_lrs(warm, epochs=5) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


# -- saving and restoring ------------------------------------------------------------
ALL = [(name, options) for name, options, _ in CASES] + [("plateau", o) for o in PLATEAUS]
ALL.append(("plateau", {"warmup_epochs": 3, "patience": 1}))


@pytest.mark.parametrize(("name", "options"), ALL, ids=[f"{n}-{o}" for n, o in ALL])
def test_saved_state_resumes_exactly(name: str, options: dict[str, Any]) -> None:
    """40 epochs, state and config through JSON into a new optimiser and schedule, 60 more."""
    straight = our_lrs(make_schedule(name, SGD(LR), **options))

    first = make_schedule(name, SGD(LR), **options)
    head = our_lrs(first, epochs=40)
    config, state = json.loads(json.dumps(first.config())), json.loads(json.dumps(first.state_dict()))
    optimizer = SGD(LR)
    optimizer.lr = 123.0  # whatever the optimiser holds, the loaded state sets the rate
    second = schedule_from_config(config, optimizer)
    second.load_state_dict(state)
    assert optimizer.lr == head[-1]
    assert head + our_lrs(second, first=40) == straight


def test_plateau_state_before_any_metric_is_json_clean() -> None:
    state = make_schedule("plateau", SGD(LR)).state_dict()
    assert state["best"] is None
    assert json.loads(json.dumps(state, allow_nan=False)) == state


# -- construction ------------------------------------------------------------------
@pytest.mark.parametrize(("name", "options"), ALL, ids=[f"{n}-{o}" for n, o in ALL])
def test_config_rebuilds_the_schedule(name: str, options: dict[str, Any]) -> None:
    schedule = make_schedule(name, SGD(LR), **options)
    config = schedule.config()
    assert config["type"] == name
    assert schedule_from_config(config, SGD(LR)).config() == config
    assert type(schedule).__name__ in repr(schedule)


def test_warmup_only_wraps_plain_schedules() -> None:
    inner = Warmup(make_schedule("constant", SGD(LR)), warmup_epochs=2)
    with pytest.raises(ValueError, match="Warmup cannot wrap another Warmup"):
        Warmup(inner, warmup_epochs=2)


def test_plateau_needs_the_metric() -> None:
    schedule = ReduceOnPlateau(SGD(LR))
    with pytest.raises(ValueError, match=r"ReduceOnPlateau.step needs the monitored metric"):
        schedule.step()


def test_every_name_builds() -> None:
    required = {"step": {"step_size": 2}, "exponential": {"gamma": 0.9}, "cosine": {"t_max": 5}}
    for name in SCHEDULES:
        opt = make_optimizer("adam", 0.01)
        schedule = make_schedule(name, opt, **required.get(name, {}))
        assert schedule.lr == 0.01 and schedule.config()["type"] == name


def test_a_schedule_registers_itself_by_name() -> None:
    """The registry is read-only and lists the named classes; Warmup, a wrapper, has no name."""
    assert list(SCHEDULES) == ["constant", "step", "exponential", "cosine", "plateau"]
    assert "warmup" not in SCHEDULES and not Warmup.name
    with pytest.raises(TypeError):
        SCHEDULES["warmup"] = Warmup  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'; choose one of: constant, step,"):
        make_schedule("linear", SGD(LR))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("linear", {}, "unknown learning-rate schedule 'linear'; choose one of: constant, step, exponential, cosine"),
        ("step", {}, "schedule 'step' needs option.s. step_size"),
        ("step", {"step_size": 0}, "StepLR step_size must be an integer >= 1, got 0"),
        ("step", {"step_size": 2.5}, "StepLR step_size must be an integer >= 1, got 2.5"),
        ("step", {"step_size": 2, "gamma": 0}, "StepLR gamma must be a finite number > 0, got 0"),
        (
            "step",
            {"step_size": 2, "t_max": 3},
            "unknown option.s. t_max for schedule 'step'; it takes step_size, gamma",
        ),
        ("exponential", {"gamma": -0.5}, "Exponential gamma must be a finite number > 0"),
        ("cosine", {"t_max": 0}, "Cosine t_max must be an integer >= 1, got 0"),
        ("cosine", {"t_max": 5, "eta_min": -1.0}, "Cosine eta_min must be >= 0, got -1.0"),
        ("plateau", {"mode": "best"}, "ReduceOnPlateau mode must be 'min' or 'max', got 'best'"),
        ("plateau", {"factor": 1.0}, r"ReduceOnPlateau factor must be in \(0, 1\), got 1.0"),
        ("plateau", {"patience": -1}, "ReduceOnPlateau patience must be an integer >= 0, got -1"),
        ("plateau", {"threshold": 1.0}, r"ReduceOnPlateau threshold must be in \[0, 1\), got 1.0"),
        ("plateau", {"min_lr": -1e-3}, "ReduceOnPlateau min_lr must be >= 0"),
        ("constant", {"warmup_epochs": -1}, "Warmup warmup_epochs must be an integer >= 1, got -1"),
        ("constant", {"warmup_epochs": 2, "start_factor": 0.0}, r"Warmup start_factor must be in \(0, 1\], got 0.0"),
        ("constant", {"start_factor": 0.5}, "start_factor only applies with warmup_epochs > 0"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_schedule(name, SGD(LR), **options)
