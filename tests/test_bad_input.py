"""Bad input at every entry point: the command line and the estimator.

On the command line, input and usage errors exit with 2, a failure during a run with 1;
either way stderr gets one line saying what is wrong and where (the file with its line
and column, the option with its value), never a traceback or a warning.  ``--debug``
shows the traceback instead.  The estimator raises ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.integrations.estimator import MLPClassifier
from ml_math_nn.network import Network
from ml_math_nn.runs.cli import main
from ml_math_nn.runs.persistence import load_model
from ml_math_nn.train import Trainer
from test_data import idx_bytes, write_idx_set
from test_readers import write

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
ROWS = 40


def table(n_features: int = 3, labels: tuple[str, ...] = ("cat", "dog")) -> str:
    """CSV text: a header, then ``ROWS`` rows of random features with the labels in turn."""
    X = np.random.default_rng(0).normal(size=(ROWS, n_features)).round(3)
    header = ",".join([*(f"x{j}" for j in range(n_features)), "label"])
    rows = (",".join([*map(str, x), labels[i % len(labels)]]) for i, x in enumerate(X))
    return "\n".join([header, *rows]) + "\n"


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int | str | None, str]:
    """Exit code of ``ml-math-nn argv`` (argparse exits through SystemExit) and its one stderr line;
    no warning either, which a real process would print on stderr too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code: int | str | None = main(list(argv))
        except SystemExit as e:
            code = e.code
    assert not caught, [str(w.message) for w in caught]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return code, err.strip()


def at(path: Path) -> str:
    """``path`` as a regular expression that matches it literally."""
    return re.escape(str(path))


def assert_input_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """Exit 2 with exactly ``ml-math-nn: error: <message>`` (a regular expression)."""
    code, err = cli_error(capsys, *argv)
    assert code == 2
    assert re.fullmatch(f"ml-math-nn: error: {message}", err), err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained for one epoch on three features and the classes cat and dog."""
    folder = tmp_path_factory.mktemp("bad-input")
    data = write(folder / "train.csv", table())
    out = folder / "run"
    argv = ["train", "--dataset", f"csv:{data}", "--epochs", "1", "--hidden", "4", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    return out


# -- data files ----------------------------------------------------------------------
HEAD = "x0,x1,label\n"
CSV_CASES = [
    ("nan.csv", HEAD + "1,2,cat\n1,nan,dog\n", r"line 3, column 2 \('x1'\): non-finite value 'nan'"),
    ("inf.csv", HEAD + "1,2,cat\n-inf,0,dog\n", r"line 3, column 1 \('x0'\): non-finite value '-inf'"),
    ("empty.csv", "", r"empty file \(no rows\)"),
    ("header.csv", HEAD, "a header row but no data rows"),
    ("text.csv", HEAD + "1,2,cat\n3,four,dog\n", r"line 3, column 2 \('x1'\): non-numeric cell 'four'"),
    ("ragged.csv", HEAD + "1,2,cat\n3,dog\n", "line 3 has 2 cells, expected 3 like line 1"),
    ("single.csv", HEAD + "1,2,cat\n3,4,cat\n", r"a single class \(cat\); classification needs at least 2"),
    ("image.png", PNG, r"not UTF-8 text \(byte 0\)"),
]


@pytest.mark.parametrize(("name", "content", "message"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_csv_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | bytes, message: str
) -> None:
    path = write(tmp_path / name, content)
    argv = ["train", "--dataset", f"csv:{path}", "--out", str(tmp_path / "run")]
    assert_input_error(capsys, argv, f"{at(path)}: {message}")
    assert not (tmp_path / "run").exists()


def npz_bytes(tmp_path: Path, **arrays: object) -> bytes:
    np.savez(tmp_path / "scratch.npz", **arrays)  # type: ignore[arg-type]
    return (tmp_path / "scratch.npz").read_bytes()


NPZ_CASES = [
    ("nan", {"X": np.array([[1.0, np.nan], [0, 1]]), "y": [0, 1]}, r"X holds non-finite values \(NaN or infinity\)"),
    ("single", {"X": np.eye(3), "y": [4, 4, 4]}, r"a single class \(4\); classification needs at least 2"),
    ("huge", {"X": np.array([[1e300, 0], [0, 1]]), "y": [0, 1]}, "values too large for float32"),
    ("empty", {"X": np.zeros((0, 3)), "y": np.zeros(0, int)}, r"X is empty \(no samples\), shape \(0, 3\)"),
    ("no-features", {"X": np.zeros((3, 0)), "y": [0, 1, 0]}, r"X must be \(samples, features\) .*got shape \(3, 0\)"),
    ("no-y", {"X": np.eye(3)}, r"missing array 'y' \(has: X\)"),
    ("count", {"X": np.eye(3), "y": [0, 1]}, "3 samples in X but 2 labels in y"),
    ("pickle", {"X": np.array([[{"a": 1}]], dtype=object), "y": [0]}, r"not a readable NPZ archive \(.*pickle.*\)"),
    ("png", PNG, r"not a readable NPZ archive \(neither a zip archive nor a \.npy array\)"),
    ("csv", HEAD + "1,2,cat\n", r"not a readable NPZ archive \(neither a zip archive nor a \.npy array\)"),
]


@pytest.mark.parametrize(("name", "content", "message"), NPZ_CASES, ids=[c[0] for c in NPZ_CASES])
def test_bad_npz_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: object, message: str
) -> None:
    raw = npz_bytes(tmp_path, **content) if isinstance(content, dict) else content
    assert isinstance(raw, (str, bytes))
    path = write(tmp_path / f"{name}.npz", raw)
    argv = ["train", "--dataset", f"npz:{path}", "--out", str(tmp_path / "run")]
    assert_input_error(capsys, argv, f"{at(path)}: {message}")


def test_idx_label_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_idx_set(tmp_path, np.random.default_rng(1))
    labels = write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.array([*range(10)] * 2 + [10] * 10)))
    argv = ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]
    assert_input_error(capsys, argv, f"{at(labels)}: label 10 out of range 0..9")


@pytest.mark.parametrize(
    ("test_text", "message"),
    [
        (table(n_features=2), "2 features per sample, the training file has 3"),
        (table(labels=("cat", "cow")), "label cow does not occur in the training data"),
    ],
    ids=["features", "labels"],
)
def test_test_file_unlike_the_training_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_text: str, message: str
) -> None:
    train, test = write(tmp_path / "train.csv", table()), write(tmp_path / "test.csv", test_text)
    argv = ["train", "--dataset", f"csv:{train}", "--test-file", str(test), "--out", str(tmp_path / "run")]
    assert_input_error(capsys, argv, f"{at(test)}: {message}")


def test_dataset_spec_and_label_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    assert_input_error(capsys, ["train", "--dataset", "imagenet", *out], "unknown dataset 'imagenet'; choose .*")
    missing = tmp_path / "nowhere.csv"
    assert_input_error(capsys, ["train", "--dataset", f"csv:{missing}", *out], f"{at(missing)}: file not found .*")
    argv = ["train", "--dataset", f"npz:{tmp_path}", *out]
    assert_input_error(capsys, argv, f"{at(tmp_path)}: is a directory, expected a file")
    path = write(tmp_path / "t.csv", table())
    argv = ["train", "--dataset", f"csv:{path}", "--label-column", "species", *out]
    assert_input_error(capsys, argv, rf"{at(path)}: no column named 'species' \(columns: x0, x1, x2, label\)")


def test_validation_split_too_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "t.csv", table(labels=("a", "b", "c", "d")))  # 32 training rows after the test split
    argv = ["train", "--dataset", f"csv:{path}", "--val-size", "0.05", "--out", str(tmp_path / "run")]
    message = "val_size 0.05: cannot split a validation set off 32 samples: The test_size = 2 should be greater .*"
    assert_input_error(capsys, argv, message)


# -- options and config files -----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0"], "lr: SGD: learning rate must be a finite number > 0, got 0.0"),
        (["--lr", "-0.5"], "lr: SGD: learning rate must be a finite number > 0, got -0.5"),
        (["--lr", "nan"], "lr must be a finite number, got nan"),
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--batch-size", "0"], "batch size must be >= 1, got 0"),
        (["--batch-norm", "--batch-size", "1"], r"batch norm needs a batch size >= 2 \(batch statistics\), got 1"),
        (["--epochs", "-1"], "epochs must be >= 0, got -1"),
        (["--dropout", "1"], r"dropout must be in \[0, 1\), got 1.0"),
        (["--dropout", "-0.1"], r"dropout must be in \[0, 1\), got -0.1"),
        (["--activation", "swish"], "unknown activation 'swish'; choose from relu, .*"),
        (["--activation", "relu,tanh"], "activation lists 2 names for 1 hidden layers"),
        (["--init", "zeros"], "unknown init 'zeros'; choose from he_normal, .*"),
        (["--momentum", "-1"], r"momentum: SGD momentum must be in \[0, 1\), got -1.0"),
        (["--momentum", "1"], r"momentum: SGD momentum must be in \[0, 1\), got 1.0"),
        (["--val-size", "1"], r"validation size must be in \[0, 1\), got 1.0"),
        (["--early-stopping"], r"early stopping needs a validation split \(val_size > 0\).*"),
        (["--subset", "1"], "subset must be >= 2, got 1"),
        (["--checkpoint-every", "-1"], "checkpoint every must be >= 0, got -1"),
    ],
)
def test_invalid_hyperparameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert_input_error(capsys, ["train", "--out", str(tmp_path / "run"), *args], f"command line: {message}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_a_width_too_large_to_allocate_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # 16 x 10**13 float64 weights are 1.1 PiB, more than a 64-bit process can even map.
    out = ["--out", str(tmp_path / "run")] if command == "train" else []
    size = "1,937,151.0 GiB as float64" if command == "gradcheck" else "968,575.5 GiB as float32"
    message = (
        rf"--hidden 16,10000000000000: the weight matrices hold 260,000,000,001,024 numbers \({size}\), "
        "more than memory can hold"
    )
    assert_input_error(capsys, [command, "--hidden", "16,10000000000000", *out], message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "prog", "message"),
    [
        (["train", "--bogus"], "ml-math-nn", "unrecognized arguments: --bogus"),
        (["train", "--optimizer", "adamax"], "ml-math-nn train", "argument --optimizer: invalid choice: 'adamax'"),
        (["train", "--schedule", "linear"], "ml-math-nn train", "argument --schedule: invalid choice: 'linear'"),
        (["train", "--dtype", "float16"], "ml-math-nn train", "argument --dtype: invalid choice: 'float16'"),
        (["train", "--lr", "fast"], "ml-math-nn train", "argument --lr: invalid float value: 'fast'"),
        (["train", "--epochs", "2.5"], "ml-math-nn train", "argument --epochs: invalid int value: '2.5'"),
        (["train", "--hidden", "12,,3"], "ml-math-nn train", "argument --hidden: hidden must be comma-separated"),
        (["train", "--hidden", "a"], "ml-math-nn train", "argument --hidden: hidden must be comma-separated"),
        (["train", "--hidden", "0"], "ml-math-nn train", "argument --hidden: hidden widths must be >= 1, got '0'"),
        (["train", "--hidden", "8,-2"], "ml-math-nn train", "argument --hidden: hidden widths must be >= 1"),
        (["fit"], "ml-math-nn", "argument COMMAND: invalid choice: 'fit'"),
        ([], "ml-math-nn", "the following arguments are required: COMMAND"),
        (["evaluate"], "ml-math-nn evaluate", "the following arguments are required: --model"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], prog: str, message: str) -> None:
    code, err = cli_error(capsys, *args)
    assert code == 2
    assert err.startswith(f"{prog}: error: {message}") and err.endswith(f" (see {prog} --help)"), err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden = [64\n", r"not valid TOML \(.*\)"),
        ("lr = 'fast'\n", "option 'lr' must be a number, got 'fast'"),
        ("learning_rate = 0.1\n", "unknown option 'learning_rate'; known options: .*"),
        ("batch_size = 0\n", "batch size must be >= 1, got 0"),
        ("hidden = '12,,3'\n", "hidden must be comma-separated positive integers like 256,128, got '12,,3'"),
        ("hidden = [64, 0]\n", r"hidden widths must be >= 1, got \(64, 0\)"),
        (PNG, r"not valid TOML \(.*\)"),
    ],
    ids=["syntax", "type", "unknown", "value", "hidden-text", "hidden-width", "binary"],
)
def test_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes, message: str) -> None:
    path = write(tmp_path / "options.toml", text)
    argv = ["train", "--config", str(path), "--out", str(tmp_path / "run")]
    assert_input_error(capsys, argv, f"{at(path)}: {message}")


def test_config_that_is_not_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    assert_input_error(capsys, ["train", "--config", str(tmp_path), *out], f"{at(tmp_path)}: is a directory, .*")
    missing = tmp_path / "none.toml"
    assert_input_error(capsys, ["train", "--config", str(missing), *out], f"{at(missing)}: config file not found")


# -- output directories -------------------------------------------------------------
def test_out_is_a_file_or_under_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "notes.txt", "keep me")
    assert_input_error(capsys, ["train", "--out", str(f)], f"--out {at(f)}: exists and is not a directory")
    assert_input_error(capsys, ["train", "--out", str(f / "run")], f"--out {at(f / 'run')}: cannot create .*")
    assert f.read_text() == "keep me"


def test_empty_out_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert_input_error(capsys, ["train", "--out", ""], "--out: empty path")


def refuses_writes(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return True
    (folder / ".probe").unlink()
    return False


def test_out_not_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if not refuses_writes(locked):  # root may write into a read-only folder, not into sysfs
            locked = Path("/sys")
            if not (locked.is_dir() and refuses_writes(locked)):
                pytest.skip("needs a folder this user cannot write into: chmod 555 and /sys both let it write")
        assert_input_error(capsys, ["train", "--out", str(locked)], rf"--out {at(locked)}: not writable \(.*\)")
        run = locked / "run"
        assert_input_error(capsys, ["train", "--out", str(run)], rf"--out {at(run)}: cannot create \(.*\)")
    finally:
        (tmp_path / "locked").chmod(0o755)


# -- saved models -------------------------------------------------------------------
def tamper(run: Path) -> None:
    """Change one weight and save the arrays again with the old metadata (and checksum)."""
    with np.load(run / "model.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["0.W"][0, 0] += 1
    np.savez(run / "model.npz", **arrays)  # type: ignore[arg-type]


def test_model_directory_errors(tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_input_error(capsys, ["evaluate", "--model", str(tmp_path)], f"{at(tmp_path / 'model.npz')}: no such file")
    f = write(tmp_path / "model.csv", table())
    assert_input_error(capsys, ["evaluate", "--model", str(f)], f"{at(f / 'model.npz')}: no such file")
    bad = tmp_path / "bad"
    bad.mkdir()
    write(bad / "model.npz", PNG)
    message = rf"{at(bad / 'model.npz')}: unreadable \(not an NPZ archive\)"
    assert_input_error(capsys, ["evaluate", "--model", str(bad)], message)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    write(tampered / "model.npz", (run_dir / "model.npz").read_bytes())
    tamper(tampered)
    message = rf"{at(tampered / 'model.npz')}: checksum mismatch \(file corrupted or tampered with\)"
    assert_input_error(capsys, ["evaluate", "--model", str(tampered)], message)


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--input", "rows.csv"]])
def test_a_model_of_an_interrupted_run_says_how_to_resume(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write(tmp_path / "train.csv", table())
    out = tmp_path / "run"
    original = Trainer.train_epoch

    def train_epoch(self: Trainer, X: np.ndarray, y: np.ndarray) -> float:
        self.interrupted = self.stop = True  # what the SIGINT handler does
        return original(self, X, y)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    assert main(["train", "--dataset", f"csv:{data}", "--epochs", "3", "--quiet", "--out", str(out)]) == 130
    assert (out / "checkpoint.npz").is_file() and not (out / "model.npz").exists()
    capsys.readouterr()
    message = (
        f"{at(out / 'model.npz')}: no such file: the run in {at(out)} was interrupted before it finished "
        rf"\(it has a checkpoint\); resume it with: ml-math-nn train --resume {at(out)}"
    )
    assert_input_error(capsys, [command[0], "--model", str(out), *command[1:]], message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (table(n_features=2), r"the model expects 3 features per row, got data of shape \(40, 2\)"),
        (table(labels=("cat", "cow")), r"classes \['cat', 'cow'\] do not match the model's \['cat', 'dog'\]"),
    ],
    ids=["features", "classes"],
)
def test_evaluate_on_unlike_data(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path / "other.csv", text)
    argv = ["evaluate", "--model", str(run_dir), "--dataset", f"csv:{path}"]
    assert_input_error(capsys, argv, f"csv:{at(path)}: {message}")


PREDICT_CASES = [
    ("narrow.csv", "1,2\n4,5\n", r"the model expects 3 features per row, got data of shape \(2, 2\)"),
    ("nan.csv", "1,nan,3\n", "line 1, column 2: non-finite value 'nan'"),
    ("empty.csv", "", r"empty file \(no rows\)"),
    ("ragged.csv", "1,2,3\n1,2\n", "line 2 has 2 cells, expected 3 like line 1"),
    ("image.png", PNG, r"not UTF-8 text \(byte 0\)"),
    ("narrow.npz", {"X": np.ones((2, 2))}, r"the model expects 3 features per row, got data of shape \(2, 2\)"),
    # One column too many is a label column only where the header names it so (see the test below).
    ("wide.csv", "1,2,3,4\n5,6,7,8\n", r"the model expects 3 features per row, got data of shape \(2, 4\)"),
    ("named.csv", "a,b,c,d\n1,2,3,4\n", r"the model expects 3 features per row, got data of shape \(1, 4\)"),
    ("other.npz", {"Y": np.ones((2, 3))}, r"missing array 'X' \(has: Y\)"),
    ("empty.npz", {"X": np.ones((0, 3))}, r"X is empty \(no samples\), shape \(0, 3\)"),
    ("folder.csv", None, "is a directory, expected a file"),
]


@pytest.mark.parametrize(("name", "content", "message"), PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_predict_on_bad_input(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str], name: str, content: object, message: str
) -> None:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        write(path, npz_bytes(tmp_path, **content) if isinstance(content, dict) else content)  # type: ignore[arg-type]
    assert_input_error(capsys, ["predict", "--model", str(run_dir), "--input", str(path)], f"{at(path)}: {message}")


def test_predict_drops_the_label_column_of_a_labelled_csv(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file a model was trained on can be given to predict: its label column (named
    ``label`` in the header, or the training config's ``label_column``) is left out."""
    labelled = write(tmp_path / "labelled.csv", table())
    rows = [line.rsplit(",", 1)[0] for line in table().splitlines()]
    features = write(tmp_path / "features.csv", "\n".join(rows) + "\n")

    def predicted(model: Path, path: Path) -> str:
        assert main(["predict", "--model", str(model), "--input", str(path)]) == 0
        return capsys.readouterr().out

    expected = predicted(run_dir, features)
    assert expected.count("\n") == ROWS + 1 and predicted(run_dir, labelled) == expected
    # No header: the label is the column the training config names, here the first one.
    first = write(
        tmp_path / "first.csv", "".join(f"{y},{x}\n" for x, y in (r.rsplit(",", 1) for r in table().splitlines()[1:]))
    )
    out = tmp_path / "by-index"
    argv = ["train", "--dataset", f"csv:{first}", "--label-column", "0", "--epochs", "1", "--hidden", "4"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    headless = write(tmp_path / "headless.csv", "".join(f"{r}\n" for r in rows[1:]))
    assert predicted(out, first) == predicted(out, headless)


def test_predict_output_that_cannot_be_written(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = write(tmp_path / "rows.csv", "1,2,3\n4,5,6\n")
    argv = ["predict", "--model", str(run_dir), "--input", str(rows), "--output"]
    assert_input_error(capsys, [*argv, str(tmp_path)], f"{at(tmp_path)}: is a directory, cannot write a file there")
    lost = tmp_path / "nowhere" / "p.csv"
    assert_input_error(capsys, [*argv, str(lost)], rf"{at(lost)}: cannot write \(No such file or directory\)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_resume_needs_a_checkpoint(tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--resume", str(tmp_path)]
    assert_input_error(capsys, argv, f"{at(tmp_path / 'config.toml')}: config file not found")
    assert_input_error(capsys, ["train", "--resume", str(run_dir)], f"{at(run_dir / 'checkpoint.npz')}: no such file")
    argv = ["train", "--resume", str(run_dir), "--out", str(tmp_path)]
    assert_input_error(capsys, argv, "--resume continues RUN_DIR with its own config.toml: drop --out and --config")


# -- the estimator ------------------------------------------------------------------
def test_estimator_bad_input() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with_nan = X.copy()
    with_nan[4, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier(max_iter=1).fit(with_nan, y)
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        MLPClassifier(max_iter=1).fit(X[:0], y[:0])
    assert (MLPClassifier(max_iter=1).fit(X, np.zeros(20)).predict(X) == 0).all()  # one class fits, as scikit-learn's
    fitted = MLPClassifier(max_iter=1, hidden_layer_sizes=4).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but MLPClassifier is expecting 3 features"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="Input X contains infinity"):
        fitted.predict(np.where(X > 1, np.inf, X))
    with pytest.raises(ValueError, match="inhomogeneous shape"):  # ragged rows
        MLPClassifier(max_iter=1).fit([[1.0, 2.0], [3.0], [4.0, 5.0], [6.0, 7.0]], [0, 1, 0, 1])
    with pytest.raises(ValueError, match="could not convert string to float: 'four'"):
        MLPClassifier(max_iter=1).fit([["1", "2"], ["3", "four"]] * 2, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier(max_iter=1).fit(X, X[:, 0])


def test_estimator_divergence_is_scikit_learns_value_error() -> None:
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    model = MLPClassifier(solver="sgd", learning_rate_init=1e100, max_iter=3, random_state=0)
    with pytest.raises(ValueError, match=r"^Solver produced non-finite parameter weights"):
        model.fit(X, y)
    assert not hasattr(model, "network_")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"learning_rate_init": 0.0}, r"'learning_rate_init' parameter of MLPClassifier must be a float in the range"),
        ({"batch_size": 0}, r"'batch_size' parameter of MLPClassifier must be a str among \{'auto'\} or an int"),
        ({"max_iter": None}, r"'max_iter' parameter of MLPClassifier must be an int in the range \[1, inf\).*Got None"),
        ({"batch_size": None}, r"'batch_size' parameter of MLPClassifier must be .* Got None instead"),
        ({"dropout": 1.0}, r"'dropout' parameter of MLPClassifier must be a float in the range \[0(\.0)?, 1(\.0)?\)"),
        ({"activation": "swish"}, r"'activation' parameter of MLPClassifier must be a str among"),
        ({"solver": "adamax"}, r"'solver' parameter of MLPClassifier must be a str among"),
        ({"hidden_layer_sizes": 0}, r"'hidden_layer_sizes' parameter of MLPClassifier must be an array-like or"),
        ({"hidden_layer_sizes": (3, 0)}, r"^hidden_layer_sizes must be > 0, got \[3, 0\]"),
    ],
)
def test_estimator_names_the_invalid_parameter(params: dict[str, object], message: str) -> None:
    """scikit-learn's errors, None included (issue 22: it was silently dropped)."""
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**params).fit(X, y)  # type: ignore[arg-type]


# -- failures during a run, and the real process ----------------------------------------
def run_with_model(out: Path, data: Path) -> Path:
    """A run directory ``out`` holding a completed one-epoch run with its checkpoint, which a
    ``train --resume`` continues (the only way a run goes on where a model already is)."""
    argv = ["train", "--dataset", f"csv:{data}", "--epochs", "1", "--hidden", "4", "--checkpoint-every", "1"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    return out


def test_divergence_exits_1_and_keeps_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write(tmp_path / "train.csv", table())
    argv = ["train", "--dataset", f"csv:{data}", "--lr", "1e30", "--epochs", "3", "--quiet", "--out"]
    code, err = cli_error(capsys, *argv, str(tmp_path / "new"))
    assert code == 1
    pattern = (
        r"ml-math-nn: training diverged: loss became (nan|inf) at epoch \d+, batch \d+; try a smaller learning rate"
    )
    assert re.fullmatch(pattern, err), err
    assert not (tmp_path / "new" / "model.npz").exists()
    # A resumed run that diverges keeps the model of the run it continues.
    out = run_with_model(tmp_path / "run", data)
    before = load_model(out).arrays()
    original = Network.forward_backward
    monkeypatch.setattr(Network, "forward_backward", lambda *a, **k: (float("inf"), original(*a, **k)[1]))
    code, err = cli_error(capsys, "train", "--resume", str(out), "--epochs", "3", "--quiet")
    assert code == 1
    pattern = (
        r"ml-math-nn: training diverged: loss became (nan|inf) at epoch \d+, batch \d+; try a smaller learning rate"
    )
    assert re.fullmatch(pattern, err), err
    after = load_model(out).arrays()
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_a_file_that_cannot_be_written_during_a_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while checkpointing is a failure during the run, not an input error: exit 1,
    the file named, no temporary file left and the model from before untouched."""
    data = write(tmp_path / "train.csv", table())
    out = run_with_model(tmp_path / "run", data)
    before = load_model(out).arrays()
    replace = os.replace

    def full_disk(src: str, dst: str | Path) -> None:
        if Path(dst).name == "checkpoint.npz":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        replace(src, dst)

    monkeypatch.setattr("ml_math_nn.runs.persistence.os.replace", full_disk)
    code, err = cli_error(capsys, "train", "--resume", str(out), "--epochs", "3", "--quiet")
    assert code == 1
    assert err == f"ml-math-nn: failed: {out / 'checkpoint.npz'}: cannot write (No space left on device)"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert '"status": "failed"' in (out / "summary.json").read_text()
    after = load_model(out).arrays()
    assert all(np.array_equal(after[k], before[k]) for k in before)


def python_m(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ml_math_nn", *argv], capture_output=True, text=True, check=False)


def test_real_process_prints_one_line_and_debug_the_traceback(tmp_path: Path, run_dir: Path) -> None:
    bad = write(tmp_path / "bad.csv", HEAD + "1,2,cat\n1,nan,dog\n")
    result = python_m("train", "--dataset", f"csv:{bad}", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"ml-math-nn: error: {bad}: line 3, column 2 ('x1'): non-finite value 'nan'\n"
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    write(tampered / "model.npz", (run_dir / "model.npz").read_bytes())
    tamper(tampered)
    result = python_m("--debug", "evaluate", "--model", str(tampered))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ModelFileError: " in result.stderr and "checksum mismatch" in result.stderr
