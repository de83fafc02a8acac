"""Each option stated once: the config, the TOML file, the CLI flags and the estimator's
parameters all come from the one declaration, agree with each other, and every registered
optimiser and schedule builds from the options."""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_math_nn.integrations.estimator import MLPClassifier
from ml_math_nn.layers import Dense, Dropout
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import OPTIMIZERS, SGD
from ml_math_nn.runs.builders import build_network, build_optimizer, build_schedule, run_generators
from ml_math_nn.runs.cli import add_train_options, build_parser, config_from_args, main, train_options
from ml_math_nn.runs.options import OPTIONS, TrainConfig, load_config, option
from ml_math_nn.schedules import SCHEDULES
from ml_math_nn.train import EarlyStopping, ScheduleStep, Trainer


def test_every_option_has_a_flag_a_toml_key_an_estimator_parameter_and_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = {name: (flag, kwargs) for flag, name, kwargs in train_options()}
    assert list(flags) == list(OPTIONS)
    keys = set(TrainConfig().to_dict()) | {name for name, opt in OPTIONS.items() if opt.optional}
    assert keys == set(OPTIONS)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for name in OPTIONS:
        flag, kwargs = flags[name]
        assert flag == "--" + name.replace("_", "-") and kwargs["help"]
        assert flag in help_text and f"{kwargs['help']}" in " ".join(help_text.split())


@pytest.mark.parametrize(
    ("option", "value", "param", "message"),
    [
        ("lr", 0.0, "learning_rate_init", "lr: SGD: learning rate must be a finite number > 0, got 0.0"),
        ("dropout", 1.0, "dropout", r"dropout must be in [0, 1), got 1.0"),
        ("batch_size", 0, "batch_size", "batch size must be >= 1, got 0"),
        ("momentum", 1.5, "momentum", "momentum: SGD momentum must be in [0, 1), got 1.5"),
    ],
)
def test_an_invalid_value_says_the_same_everywhere(
    option: str, value: Any, param: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"{option} = {value!r}\n")
    with pytest.raises(ValueError) as from_file:
        load_config(path)
    assert str(from_file.value) == f"{path}: {message}"
    assert main(["train", OPTIONS[option].flag, str(value), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == f"ml-math-nn: error: command line: {message}"


def test_unknown_option_names_are_refused_everywhere(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option 'learning_rate'; known options: dataset, "):
        TrainConfig.from_mapping({"learning_rate": 0.1})
    with pytest.raises(SystemExit):
        build_parser("train").parse_args(["train", "--learning-rate", "0.1"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'lr'"):
        MLPClassifier(lr=0.1)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_the_config_accepts_exactly_what_the_schedule_accepts(schedule: str, gamma: float) -> None:
    """Options that go to a schedule are checked by it alone: the two cannot disagree."""
    values = {"schedule": schedule, "gamma": gamma, "val_size": 0.2}
    cls = SCHEDULES[schedule]
    params = inspect.signature(cls).parameters
    optimizer = build_optimizer(TrainConfig())
    try:
        kwargs = {"gamma": gamma} if "gamma" in params else {"factor": gamma} if "factor" in params else {}
        kwargs |= {"t_max": 30} if "t_max" in params else {}
        kwargs |= {"step_size": 10} if "step_size" in params else {}
        cls(optimizer, **kwargs)
        builds = True
    except ValueError:
        builds = False
    try:
        TrainConfig(**values)  # type: ignore[arg-type]
        valid = True
    except ValueError as e:
        assert str(e).startswith("gamma: ")
        valid = False
    assert valid == builds


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_builds_from_the_options(name: str, tmp_path: Path) -> None:
    config = TrainConfig(optimizer=name, lr=0.01)
    optimizer = build_optimizer(config)
    assert type(optimizer) is OPTIMIZERS[name] and optimizer.lr == 0.01
    argv = ["train", "--optimizer", name, "--lr", "0.01", "--epochs", "1", "--subset", "200", "--hidden", "8"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "run")]) == 0
    X, y = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2
    assert MLPClassifier(hidden_layer_sizes=(8,), solver=name, max_iter=1, random_state=0).fit(X, y).n_iter_ == 1


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_registered_schedule_builds_from_the_options(name: str, tmp_path: Path) -> None:
    config = TrainConfig(schedule=name, val_size=0.2, warmup_epochs=1)
    assert type(build_schedule(config, build_optimizer(config)).inner) is SCHEDULES[name]  # type: ignore[attr-defined]
    argv = ["train", "--schedule", name, "--val-size", "0.2", "--epochs", "1", "--subset", "200", "--hidden", "8"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "run")]) == 0


def test_the_epochs_learning_rate_is_recorded_by_the_trainer(tmp_path: Path) -> None:
    config = TrainConfig(hidden=(4,), schedule="step", step_size=1, gamma=0.5, epochs=3)
    rngs = run_generators(config.seed)
    optimizer = build_optimizer(config)
    trainer = Trainer(build_network(config, 3, 2, rngs["dropout"]), optimizer, config.batch_size, rngs["shuffle"])
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    trainer.fit(X, y, 3, {}, [ScheduleStep(build_schedule(config, optimizer), "train_loss")], eval_train=False)
    assert [r["lr"] for r in trainer.history] == [0.05, 0.025, 0.0125]
    assert list(trainer.history[0])[-1] == "lr"


def test_a_new_option_shows_up_everywhere() -> None:
    @dataclass
    class Extended(TrainConfig):
        fake: int = option(3, "a fake option", check=lambda n: n >= 1, rule=">= 1")

    assert ("--fake", "fake") in [(flag, name) for flag, name, _ in train_options(Extended)]
    parser = argparse.ArgumentParser()
    add_train_options(parser, Extended)
    config = config_from_args(parser.parse_args(["--fake", "5"]), Extended)
    assert isinstance(config, Extended) and config.fake == 5
    assert "fake = 5" in config.to_toml()
    with pytest.raises(ValueError, match="fake must be >= 1, got 0"):
        Extended.from_mapping({"fake": 0})


def _accepts(build: Callable[..., object], *args: Any, **kwargs: Any) -> bool:
    try:
        build(*args, **kwargs)
    except ValueError:
        return False
    return True


def _trainer(batch_size: int = 2) -> Trainer:
    return Trainer(build_mlp(2, (), 2, np.random.default_rng(0)), SGD(0.1), batch_size, np.random.default_rng(0))


REPEATED_CHECKS: dict[str, tuple[list[Any], list[Callable[[Any], object]]]] = {
    "dropout": (
        [-0.1, 0.0, 0.5, 0.999, 1.0, 1.5],
        [Dropout, lambda v: build_mlp(2, (2,), 2, np.random.default_rng(0), dropout=v)],
    ),
    "l2": ([-1.0, 0.0, 1e-4, 3.0, math.inf, math.nan], [lambda v: Network([Dense(2, 2)], l2=v)]),
    "batch_size": ([-1, 0, 1, 2, 64], [_trainer]),
    "patience": ([-1, 0, 1, 5], [lambda v: EarlyStopping(patience=v)]),
    "epochs": ([-1, 0, 1], [lambda v: _trainer().fit(np.eye(4, 2), np.arange(4) % 2, v)]),
    "hidden": ([(0,), (1,), (3, 0), (3, 2)], [lambda v: build_mlp(2, v, 2, np.random.default_rng(0))]),
}
"""Options the config checks itself whose value a component also checks (it goes to no
constructor that :attr:`Option.goes_to` could name): values on both sides of each bound,
and the components that take them."""


@pytest.mark.parametrize("name", list(REPEATED_CHECKS))
def test_the_config_and_the_component_agree_where_a_check_is_repeated(name: str) -> None:
    """The config cannot pass a value that the network or the trainer then refuses, nor refuse
    one they would take."""
    values, components = REPEATED_CHECKS[name]
    for value in values:
        valid = _accepts(TrainConfig, **{name: value})
        for component in components:
            assert _accepts(component, value) == valid, f"{name}={value!r}: the config says {valid}"
