"""Progress bars and logging: shown on a terminal, silent when quiet or when output is kept."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from ml_math_nn.network import build_mlp
from ml_math_nn.optim import SGD
from ml_math_nn.runs.progress import (
    BATCH_FORMAT,
    EPOCH_FORMAT,
    LONG_EPOCH_BATCHES,
    EpochProgress,
    _TqdmHandler,
    end_summary,
    progress_enabled,
    running_postfix,
    setup_logging,
)
from ml_math_nn.train import Trainer

TRAIN = ["-m", "ml_math_nn", "train", "--epochs", "2", "--hidden", "8", "--batch-size", "128"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def records(n: int) -> list[dict[str, float]]:
    return [
        {"epoch": float(e), "train_loss": 1.0 / e, "train_acc": 0.5 + e / 100, "test_loss": 2.0 / e, "test_acc": 0.4}
        for e in range(1, n + 1)
    ]


def test_progress_needs_a_terminal_on_both_streams_and_no_quiet() -> None:
    tty, pipe = Terminal(), io.StringIO()
    assert progress_enabled(False, tty, tty)
    assert not progress_enabled(True, tty, tty)
    assert not progress_enabled(False, pipe, tty), "stdout redirected: keep the log clean"
    assert not progress_enabled(False, tty, pipe), "stderr redirected"


def test_epoch_bar_counts_epochs_and_leaves_the_metrics_to_the_epoch_line() -> None:
    out = io.StringIO()
    progress = EpochProgress(3, enabled=True, file=out)
    for record in records(3):
        progress(None, record)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "3.0/3 epochs" in text
    assert "loss" not in text and "acc" not in text, "each epoch's metrics are printed once, as its line"
    assert progress.epochs is None, "the bar closes itself after the last epoch"


def test_epoch_bar_moves_during_an_epoch() -> None:
    progress = EpochProgress(3, enabled=True, file=io.StringIO())
    for batch in range(1, 6):
        progress.on_batch(None, {"batch": batch, "batches": 10, "loss": 1.0, "acc": 0.5})  # type: ignore[arg-type]
    assert progress.epochs is not None and progress.epochs.n == pytest.approx(0.5)
    assert "0.5/3 epochs" in str(progress.epochs)
    progress(None, records(1)[0])  # type: ignore[arg-type]
    progress.on_batch(None, {"batch": 2, "batches": 10, "loss": 1.0, "acc": 0.5})  # type: ignore[arg-type]
    assert progress.epochs.n == pytest.approx(1.2)
    progress.close()


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_bars_fit_the_terminal_with_room_for_the_bar(columns: int) -> None:
    postfix = running_postfix(0.123456, 0.987654)
    for fmt, prefix, total, unit in (
        (EPOCH_FORMAT, "training", 30, "epoch"),
        (BATCH_FORMAT, "epoch 12", 1875, "batch"),
    ):
        line = tqdm.format_meter(
            total // 3,
            total,
            754.0,
            ncols=columns,
            prefix=prefix,
            unit=unit,
            bar_format=fmt,
            postfix=postfix if fmt == BATCH_FORMAT else None,
        )
        assert len(line) <= columns, line
        bar = line.split("|")[1]
        assert len(bar) >= 10, f"the bar keeps at least 10 columns: {line!r}"
    assert postfix == "running train-mode loss 0.1235 acc 0.9877"


def test_a_resumed_run_starts_the_bar_at_its_epoch() -> None:
    out = io.StringIO()
    progress = EpochProgress(5, enabled=True, file=out)
    progress(None, records(4)[-1])  # type: ignore[arg-type]
    assert progress.epochs is not None and progress.epochs.n == 4
    progress(None, records(5)[-1])  # type: ignore[arg-type]
    assert "5.0/5" in out.getvalue() and progress.epochs is None


def test_disabled_progress_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    with EpochProgress(3, enabled=False, file=out) as progress:
        for record in records(2):
            progress(None, record)  # type: ignore[arg-type]
        progress.on_batch(None, {"batch": 1, "batches": 500, "loss": 1.0, "acc": 0.5})  # type: ignore[arg-type]
    assert out.getvalue() == ""
    assert capsys.readouterr() == ("", "")


def test_batch_bar_only_for_long_epochs_with_running_means() -> None:
    out = io.StringIO()
    progress = EpochProgress(2, enabled=True, file=out)
    for batch in range(1, 11):
        progress.on_batch(None, {"batch": batch, "batches": 10, "loss": 1.0, "acc": 1.0})  # type: ignore[arg-type]
    assert progress.batches is None and "batch" not in out.getvalue(), "a short epoch gets no batch bar"
    n = LONG_EPOCH_BATCHES
    for batch in range(1, n):
        record = {"batch": batch, "batches": n, "loss": float(batch), "acc": float(batch % 2)}
        progress.on_batch(None, record)  # type: ignore[arg-type]
    assert progress.batches is not None
    line = str(progress.batches)  # the bar as it is drawn now (drawing itself is rate-limited)
    assert line.startswith("epoch 1 ") and f"{n - 1}/{n}" in line
    assert f"running train-mode loss {n / 2:.4f} acc {(n // 2) / (n - 1):.4f}" in line
    progress.on_batch(None, {"batch": n, "batches": n, "loss": 1.0, "acc": 1.0})  # type: ignore[arg-type]
    assert progress.batches is None, "the batch bar goes away at the end of its epoch"
    progress.close()


def test_progress_is_a_trainer_callback(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, size=40)
    trainer = Trainer(build_mlp(3, (4,), 2, rng, dtype=np.float64), SGD(0.1), 8, np.random.default_rng(0))
    out = io.StringIO()
    with EpochProgress(2, enabled=True, file=out) as progress:
        trainer.fit(X, y, 2, callbacks=[progress])
    assert "2.0/2 epochs" in out.getvalue()


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("ml_math_nn")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_setup_logging_levels_and_no_duplicate_handlers(
    package_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    child = logging.getLogger("ml_math_nn.runs.training")
    # A CLI test earlier in the session may have set logging up already: count the others.
    before = sum(not isinstance(h, _TqdmHandler) for h in package_logger.handlers)
    setup_logging()
    setup_logging()
    child.info("wrote run")
    child.debug("detail")
    assert capsys.readouterr() == ("", "wrote run\n"), "INFO by default, once, on stderr"

    setup_logging(verbose=True)
    child.debug("detail")
    assert capsys.readouterr().err == "DEBUG ml_math_nn.runs.training: detail\n"

    setup_logging(quiet=True)
    child.info("wrote run")
    child.warning("careful")
    assert capsys.readouterr().err == "careful\n"
    assert len(package_logger.handlers) == before + 1, "each call replaces its own handler"


def test_cli_keeps_redirected_output_free_of_bars(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *TRAIN, "--out", str(tmp_path / "run")], capture_output=True, text=True, check=True
    )
    for stream in (result.stdout, result.stderr):
        assert "\r" not in stream and "it/s" not in stream and "epoch/s" not in stream and "%|" not in stream


def run_in_terminal(args: list[str]) -> str:
    """Run ``python args`` with stdout and stderr on a pseudo-terminal; returns what it showed."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    # A new pseudo-terminal is 0 x 0; give it the size of a real one (rows, columns).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode(errors="replace")


def test_cli_train_shows_a_bar_and_epoch_lines_on_a_terminal(tmp_path: Path) -> None:
    shown = run_in_terminal([*TRAIN, "--out", str(tmp_path / "run")])
    assert "100%|" in shown and "2.0/2 epochs" in shown and "test_acc" in shown, shown
    assert shown.count("epoch 2/2") == 1, "the epoch line is written once, above the bar"
    assert shown.count("test_acc") == 2, "each epoch's metrics once (the bar does not repeat them)"
    assert "done: 2 epochs (" in shown and "kept the weights of the last epoch, 2" in shown
    assert f"run written to {tmp_path / 'run'}" in shown


def test_cli_quiet_shows_no_bar_even_on_a_terminal(tmp_path: Path) -> None:
    shown = run_in_terminal([*TRAIN, "--quiet", "--out", str(tmp_path / "run")])
    assert "%|" not in shown and "epoch/s" not in shown and "\r" not in shown.replace("\r\n", "\n")


SHOW_TWO_EPOCHS = (
    "from ml_math_nn.runs.progress import EpochProgress, progress_enabled\n"
    "progress = EpochProgress(2, progress_enabled(quiet=False))\n"
    "for epoch in (1.0, 2.0):\n"
    "    progress(None, {'epoch': epoch, 'train_loss': 0.5})\n"
)


def test_a_real_terminal_shows_the_bar() -> None:
    shown = run_in_terminal(["-c", SHOW_TWO_EPOCHS])
    assert "2.0/2 epochs" in shown and "train_loss" not in shown


def test_cli_verbose_adds_debug_messages(tmp_path: Path) -> None:
    def stderr(*extra: str) -> str:
        argv = [sys.executable, *TRAIN, "--out", str(tmp_path / "run"), "--overwrite", *extra]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stderr

    assert "DEBUG ml_math_nn.runs.training: wrote run to" in stderr("--verbose")
    assert "DEBUG" not in stderr()


def test_end_summary_says_time_kept_epoch_and_where() -> None:
    summary = {
        "epochs_run": 12,
        "best_epoch": 9,
        "train_time_s": 3.21,
        "wall_time_s": 4.56,
        "config": {"early_stopping": True, "monitor": "val_loss"},
        "final": {"train_loss": 0.1, "val_loss": 0.2, "test_loss": 0.25, "test_acc": 0.9512},
    }
    lines = end_summary(summary, Path("runs/x"), Path("runs/x/report.html"))
    assert lines == [
        "done: 12 epochs (3.2 s training, 4.6 s in all); kept the weights of epoch 9, the best val_loss (0.2000)",
        "test accuracy 0.9512  test loss 0.2500",
        "run written to runs/x",
        "report written to runs/x/report.html",
    ]
    plain = end_summary({**summary, "config": {}}, Path("runs/x"))
    assert plain[0].endswith("kept the weights of the last epoch, 9")
    assert plain[-1] == "see it as one page: ml-math-nn report runs/x"
