"""The command line end to end, in a temporary directory."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.runs.cli import main
from ml_math_nn.runs.options import config_options
from ml_math_nn.runs.persistence import load_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_train_writes_every_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--epochs",
            "3",
            "--hidden",
            "16",
            "--batch-size",
            "64",
            "--lr",
            "0.1",
            "--seed",
            "3",
            "--test-size",
            "0.25",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch")]
    assert len(epoch_lines) == 3
    assert all(k in epoch_lines[0] for k in ("train_loss", "test_loss", "train_acc", "test_acc"))

    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert list(rows[0])[:5] == ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]
    assert [float(r["lr"]) for r in rows] == [0.1, 0.1, 0.1]
    assert all(0 <= float(r["test_acc"]) <= 1 for r in rows)

    summary = json.loads((out / "summary.json").read_text())
    expected = {
        "dataset": "digits",
        "hidden": [16],
        "activation": "relu",
        "epochs": 3,
        "batch_size": 64,
        "lr": 0.1,
        "seed": 3,
        "test_size": 0.25,
        "dtype": "float32",
        "optimizer": "sgd",
    }
    assert {k: summary["config"][k] for k in expected} == expected
    toml = (out / "config.toml").read_text().splitlines()
    assert len([line for line in toml if not line.startswith("#")]) == len(summary["config"]), "set options"
    assert len([line for line in toml if " = " in line]) == len(config_options()), "and the unset ones, commented"
    assert summary["seed"] == 3 and summary["wall_time_s"] > 0
    assert summary["final"]["test_acc"] == pytest.approx(float(rows[-1]["test_acc"]))
    assert summary["dataset"]["n_test"] == 450

    config = json.loads((out / "model.json").read_text())
    assert config["network"]["layers"][0] == {"type": "Dense", "n_in": 64, "n_out": 16, "init": "he_normal"}
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        assert npz["0.W"].shape == (64, 16)
    assert load_model(out).network.n_out == 10

    for name in ("loss.png", "accuracy.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_python_dash_m_is_the_same_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml_math_nn", "train", "--epochs", "1", "--quiet", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "run written to" in result.stdout
    assert (tmp_path / "model.npz").is_file()


def test_default_out_is_a_fresh_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--quiet"]) == 0
    assert main(["train", "--epochs", "1", "--quiet"]) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.csv").is_file() for r in runs)


def test_train_refuses_a_run_directory_holding_a_run_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path)
    assert main(["train", "--epochs", "1", "--hidden", "8", "--quiet", "--checkpoint-every", "1", "--out", out]) == 0
    capsys.readouterr()
    assert main(["train", "--epochs", "2", "--hidden", "16", "--quiet", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ml-math-nn: error: --out {out}: holds a run already (config.toml, metrics.csv, ")
    assert err.endswith(f"give --overwrite to replace it, or --resume {out} to continue it")
    assert len(err.splitlines()) == 1
    assert main(["train", "--resume", out, "--overwrite", "--quiet"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["train", "--epochs", "2", "--hidden", "16", "--quiet", "--overwrite", "--out", out]) == 0
    assert not (tmp_path / "checkpoint.npz").exists()
    assert "overwrite" not in (tmp_path / "config.toml").read_text()
    assert main(["train", "--resume", out, "--quiet"]) == 2  # nothing left of the old run to resume
    assert "checkpoint.npz: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lr", "0"], "lr: SGD: learning rate must be a finite number > 0"),
        (["--batch-size", "0"], "batch size must be >= 1"),
        (["--epochs", "-2"], "epochs must be >= 0"),
        (["--test-size", "1.5"], "test size must be strictly between 0 and 1"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_gelu_tanh_trains_and_is_saved_as_the_approximation(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert (
        main(["train", "--hidden", "32", "--activation", "gelu_tanh", "--epochs", "5", "--quiet", "--out", str(out)])
        == 0
    )
    layers = load_model(out).network.layers
    assert [layer.config() for layer in layers if layer.config()["type"] == "GELU"] == [
        {"type": "GELU", "approximate": "tanh"}
    ]
    assert json.loads((out / "summary.json").read_text())["final"]["test_acc"] > 0.9


def test_malformed_hidden_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--hidden", "12,x"])
    assert exc.value.code == 2
    assert "--hidden" in capsys.readouterr().err


def test_out_that_is_a_file_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("keep me")
    assert main(["train", "--epochs", "1", "--out", str(f)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert f.read_text() == "keep me"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "--epochs", "3", "--quiet", "--out", str(out)]) == 0
    return out


def test_evaluate_reproduces_the_runs_test_accuracy(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((trained / "summary.json").read_text())
    assert "digits test split: 360 samples" in out
    assert f"accuracy {summary['final']['test_acc']:.4f}" in out


def test_evaluate_on_another_file_scores_all_of_it(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data[:200], digits.target[:200]
    np.savez(tmp_path / "more.npz", X=X, y=y)
    model = load_model(trained)
    expected = float(np.mean(model.network.predict(model.transform(X)) == y))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--dataset", f"npz:{tmp_path / 'more.npz'}"]) == 0
    out = capsys.readouterr().out
    assert "200 samples" in out and f"accuracy {expected:.4f}" in out


def test_predict_csv_and_npz_give_the_models_probabilities(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import load_digits

    X = load_digits().data[:7]
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.savez(tmp_path / "x.npz", X=X.reshape(7, 8, 8))
    model = load_model(trained)
    expected = model.network.predict_proba(model.transform(X))
    capsys.readouterr()
    assert main(["predict", "--model", str(trained), "--input", str(tmp_path / "x.csv")]) == 0
    from_stdout = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert (
        main(
            [
                "predict",
                "--model",
                str(trained),
                "--input",
                str(tmp_path / "x.npz"),
                "--output",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    with open(tmp_path / "p.csv", newline="") as f:
        from_file = list(csv.DictReader(f))
    assert from_stdout == from_file and len(from_file) == 7
    assert list(from_file[0]) == ["row", "class", *(f"p_{c}" for c in range(10))]
    for row, p in zip(from_file, expected, strict=True):
        assert row["class"] == str(int(np.argmax(p)))
        np.testing.assert_allclose([float(row[f"p_{c}"]) for c in range(10)], p, rtol=1e-5, atol=1e-7)
