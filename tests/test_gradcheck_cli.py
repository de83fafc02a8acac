"""``ml-math-nn gradcheck``: backprop against finite differences on the networks the CLI builds.

Correct gradients must pass on every kind of architecture; a gradient broken on purpose,
even slightly, must fail with exit status 1 and name the tensors it broke.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn import gradcheck
from ml_math_nn.layers import Dense, Tanh
from ml_math_nn.runs import builders
from ml_math_nn.runs.cli import main

ARCHITECTURES = [
    ["--hidden", ""],  # softmax regression: no hidden layer
    ["--hidden", "12"],
    ["--hidden", "10,8", "--activation", "tanh"],
    ["--hidden", "10,8,6", "--activation", "elu,leaky_relu,sigmoid", "--l2", "0.1"],
    ["--hidden", "10,8", "--activation", "gelu", "--batch-norm"],
    ["--hidden", "10,8", "--activation", "gelu_tanh,relu"],
    ["--hidden", "12", "--dropout", "0.5"],
    ["--hidden", "10,8", "--batch-norm", "--dropout", "0.3", "--l2", "0.01", "--dtype", "float32", "--seed", "4"],
]


def gradcheck_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, list[str]], str]:
    """Exit code, the table's rows by tensor name (``[shape, error, verdict]``) and the last line."""
    code = main(["gradcheck", "--samples", "6", *args])
    lines = capsys.readouterr().out.splitlines()
    header, *rows, verdict = lines[1:]
    assert header.split() == ["tensor", "shape", "max", "rel", "error", "ok"]
    table = {}
    for row in rows:
        name, rest = row.split(maxsplit=1)
        shape, error, ok = rest.rsplit(maxsplit=2)
        table[name] = [shape, error, ok]
    return code, table, verdict


@pytest.mark.parametrize("args", ARCHITECTURES, ids=" ".join)
def test_correct_gradients_pass(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, table, verdict = gradcheck_cli(args, capsys)
    assert code == 0, table
    assert all(ok == "ok" and float(error) <= gradcheck.DEFAULT_TOL for _, error, ok in table.values())
    assert verdict.startswith(f"all {len(table)} tensors within tol 1e-05")


def test_table_lists_every_parameter_tensor_and_the_input(capsys: pytest.CaptureFixture[str]) -> None:
    """Dense (no bias before batch norm) -> BatchNorm -> ReLU -> Dropout -> Dense."""
    code, table, _ = gradcheck_cli(["--hidden", "12", "--batch-norm", "--dropout", "0.5"], capsys)
    assert code == 0
    assert {name: shape for name, (shape, _, _) in table.items()} == {
        "0.W": "(64, 12)",
        "1.gamma": "(12,)",
        "1.beta": "(12,)",
        "4.W": "(12, 10)",
        "4.b": "(10,)",
        "input": "(6, 64)",
    }


def test_noise_in_a_weight_gradient_fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Noise of 1e-4 of the gradient's scale in every dW: exit 1, the W rows fail, the others pass."""
    backward, rng = Dense.backward, np.random.default_rng(0)

    def noisy(self: Dense, grad: np.ndarray) -> np.ndarray:
        out = backward(self, grad)
        dW = self.grads["W"]
        dW += 1e-4 * np.abs(dW).max() * rng.normal(size=dW.shape)
        return out

    monkeypatch.setattr(Dense, "backward", noisy)
    code, table, verdict = gradcheck_cli(["--hidden", "10,8"], capsys)
    assert code == 1
    assert {name for name, (_, _, ok) in table.items() if ok == "FAIL"} == {"0.W", "2.W", "4.W"}
    assert verdict.startswith("3 of 7 tensors above tol 1e-05")


def test_slightly_wrong_activation_derivative_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """tanh' off by a factor 1 + 1e-3 breaks every gradient below the activation, not above."""
    derivative = Tanh.derivative
    monkeypatch.setattr(Tanh, "derivative", lambda self, z, a: derivative(self, z, a) * (1 + 1e-3))
    code, table, _ = gradcheck_cli(["--hidden", "10", "--activation", "tanh"], capsys)
    assert code == 1
    assert {name: ok for name, (_, _, ok) in table.items()} == {
        "0.W": "FAIL",
        "0.b": "FAIL",
        "2.W": "ok",
        "2.b": "ok",
        "input": "FAIL",
    }


def test_dropout_needs_its_fixed_mask(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without fixed masks every loss evaluation draws new ones, and the check fails."""
    monkeypatch.setattr(builders, "fix_dropout_masks", lambda network, m, rng: None)
    code, _, _ = gradcheck_cli(["--hidden", "12", "--dropout", "0.5"], capsys)
    assert code == 1


def test_format_report_fails_on_nan() -> None:
    text, ok = gradcheck.format_report({"0.W": ((2, 3), 1e-9), "0.b": ((3,), float("nan"))})
    assert not ok
    assert text.splitlines()[2].split() == ["0.b", "(3,)", "nan", "FAIL"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--samples", "0"], "--samples must be >= 1, got 0"),
        (["--step", "0"], "--step must be > 0, got 0.0"),
        (["--tol", "-1"], "--tol must be > 0, got -1.0"),
        (["--dropout", "1.5"], "dropout"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gradcheck", "--hidden", "4", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


def test_help_lists_the_network_and_data_options_not_the_training_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    shown = capsys.readouterr().out
    for flag in ("--hidden", "--activation", "--dropout", "--batch-norm", "--l2", "--dtype", "--seed", "--dataset"):
        assert f"  {flag}" in shown, flag
    for flag in ("--lr", "--optimizer", "--momentum", "--schedule", "--epochs", "--batch-size", "--early-stopping"):
        assert f"  {flag}" not in shown, f"{flag} is a training option"
    with pytest.raises(SystemExit) as exit_:
        main(["gradcheck", "--hidden", "4", "--lr", "0.1"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --lr 0.1" in capsys.readouterr().err
