"""Training options: validation, TOML round trip, precedence of defaults < file < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_math_nn.runs.cli import build_parser, config_from_args
from ml_math_nn.runs.options import TrainConfig, config_options, load_config


def test_toml_round_trip_is_exact(tmp_path: Path) -> None:
    config = TrainConfig(
        hidden=(256, 128),
        activation="relu,tanh",
        optimizer="adam",
        lr=1e-3,
        dropout=0.25,
        clip_norm=5.0,
        val_size=0.1,
        early_stopping=True,
        subset=500,
        label_column="target",
    )
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


def test_toml_names_every_option_and_writes_unset_ones_as_comments(tmp_path: Path) -> None:
    config = TrainConfig(clip_norm=1.5)  # init, subset, data_dir, ... stay None (unset)
    text = config.to_toml()
    names = [line.lstrip("# ").split(" =")[0] for line in text.splitlines() if " = " in line]
    assert names == list(config_options()), "every option, in order"
    assert "clip_norm = 1.5" in text.splitlines()
    unset = [line for line in text.splitlines() if line.startswith("# ") and " = (unset" in line]
    assert [line.split()[1] for line in unset] == [k for k, v in vars(config).items() if v is None]
    assert "# init = (unset: " in text and "per activation" in text, "says what applies instead"
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == config, "unset stays unset"
    path.write_text(text.replace("# subset = (unset: train on N samples of the training set)", "subset = 100"))
    assert load_config(path) == TrainConfig(clip_norm=1.5, subset=100), "uncommenting with a value sets it"


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("hidden = [32, 16]\nlr = 0.2\nepochs = 7\n")
    args = build_parser().parse_args(["train", "--config", str(path), "--lr", "0.01"])
    config = config_from_args(args)
    assert config.hidden == (32, 16) and config.epochs == 7 and config.lr == 0.01
    assert config.batch_size == TrainConfig().batch_size


@pytest.mark.parametrize(
    "text,message",
    [
        ("hiden = [3]\n", "unknown option 'hiden'"),
        ("lr = 'fast'\n", "option 'lr' must be a number"),
        ("epochs = 2.5\n", "option 'epochs' must be an integer"),
        ("batch_norm = 1\n", "option 'batch_norm' must be true or false"),
        ("hidden = [3, 'x']\n", "option 'hidden' must be a list of positive integers"),
        ("lr = -1.0\n", "lr: SGD: learning rate must be a finite number > 0, got -1.0"),
        ("lr = \n", "not valid TOML"),
        ("optimizer = 'adamax'\n", "unknown optimizer 'adamax'"),
    ],
)
def test_bad_config_files_name_the_problem(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as exc:
        load_config(path)
    assert "\n" not in str(exc.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dropout": 1.0}, "dropout must be in"),
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"hidden": (8, 8), "activation": "relu,tanh,elu"}, "3 names for 2 hidden layers"),
        ({"early_stopping": True}, "early stopping needs a validation split"),
        ({"nesterov": True}, "nesterov: SGD with nesterov=True needs momentum > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"monitor": "test_acc"}, "monitor must be one of"),
    ],
)
def test_invalid_combinations(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_per_layer_activations() -> None:
    assert TrainConfig(hidden=(4, 4, 4), activation="relu").activations == ["relu"] * 3
    assert TrainConfig(hidden=(4, 4), activation="tanh,gelu").activations == ["tanh", "gelu"]
