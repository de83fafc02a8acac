"""The benchmark's quick mode runs end to end and reports every figure; no time is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import fashion_mnist_missing, load_harness
from ml_math_nn.data.readers import DataError
from ml_math_nn.runs import cli

bench = load_harness()
QUICK = {"quick": True, "threads": 1, "rounds": 2, "epochs": 1}  # one thread: immune to a busy machine


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """Every workload, our library and the naive floor, two rounds of one timed epoch."""
    try:
        return bench.run(**QUICK, contenders=[bench.OURS, bench.NAIVE])
    except DataError as e:  # workloads (b) and (c) train on Fashion-MNIST
        fashion_mnist_missing(e)


def test_report_has_every_workload_and_contender(report: dict[str, Any]) -> None:
    assert [w["workload"] for w in report["workloads"]] == ["a", "b", "c"]
    assert report["quick"] and report["threads"] == 1 and len(report["load_average_1min"]) == 2
    for w in report["workloads"]:
        assert set(w["results"]) == {bench.OURS, bench.NAIVE} and w["notes"] == []
        assert (w["rounds"], w["epochs_per_round"], w["warmup_epochs"]) == (2, 1, bench.WARMUP)
        for r in w["results"].values():
            assert len(r["epoch_times_s"]) == 2 and len(r["warmup_times_s"]) == 2 * bench.WARMUP
            assert r["epoch_s"] == pytest.approx(sum(r["epoch_times_s"]) / 2)  # the median of two
            assert 0 <= r["test_acc"] <= 1 and r["infer_samples_per_s"] > 0
            assert r["peak_rss_bytes"] > 10 * 2**20
        ours = w["results"][bench.OURS]["epoch_s"]
        assert w["ratio_to_ours"] == {bench.NAIVE: pytest.approx(w["results"][bench.NAIVE]["epoch_s"] / ours)}
        assert w["matmul_flops_per_s"] > 0
        assert w["efficiency"] == pytest.approx(w["flops_per_epoch"] / ours / w["matmul_flops_per_s"])


def test_each_contender_trains_in_a_process_of_its_own(report: dict[str, Any]) -> None:
    """One fresh interpreter per contender and round: no library shares a process (or its thread pools)."""
    pids = [report["harness_pid"]]
    for w in report["workloads"]:
        pids += [pid for r in w["results"].values() for pid in r["pids"]] + w["matmul_pids"]
        assert all(len(r["pids"]) == 2 for r in w["results"].values()) and len(w["matmul_pids"]) == 2
    assert len(set(pids)) == len(pids) == 1 + 3 * 3 * 2


def test_the_naive_floor_learns_the_same_task(report: dict[str, Any]) -> None:
    digits = report["workloads"][0]["results"]
    assert digits[bench.NAIVE]["test_acc"] > 0.8 and digits[bench.OURS]["test_acc"] > 0.8


def test_naive_numpy_gradients_match_ours() -> None:
    """The naive transcription computes the same gradients as the library (float64)."""
    import numpy as np

    from ml_math_nn.network import build_mlp

    sys.path.insert(0, str(Path(bench.__file__).parent))
    import naive_numpy

    rng = np.random.default_rng(0)
    net = build_mlp(5, (7, 6), 3, rng, dtype=np.float64)
    x, y = rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    net.forward_backward(x, y)
    params = [layer.params[k] for layer in net.layers[::2] for k in ("W", "b")]
    ours = [layer.grads[k] for layer in net.layers[::2] for k in ("W", "b")]
    for mine, theirs in zip(naive_numpy.gradients(params, x, y), ours, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


def test_work_is_counted_from_the_layer_shapes(report: dict[str, Any]) -> None:
    digits, fashion, deep = report["workloads"]
    assert digits["description"] == "digits 64-128-10, batch 32, sgd lr 0.05"
    # forward, weight gradient and input gradient (2 FLOPs per multiply-add each), but no
    # input gradient for the first layer
    assert digits["flops_per_epoch"] == digits["n_train"] * (4 * 64 * 128 + 6 * 128 * 10)
    assert fashion["n_train"] == bench.QUICK_TRAIN and fashion["n_test"] == bench.QUICK_TEST
    assert fashion["flops_per_epoch"] == bench.QUICK_TRAIN * (4 * 784 * 256 + 6 * 256 * 10)
    assert deep["flops_per_epoch"] == bench.QUICK_TRAIN * (4 * 784 * 512 + 6 * (512 * 256 + 256 * 10))
    assert fashion["train_set_float32_bytes"] == bench.QUICK_TRAIN * 784 * 4


def test_markdown_report_has_a_table_per_workload(report: dict[str, Any]) -> None:
    text = bench.format_report(report)
    header = "| library | epoch time (median) | time / ours | test accuracy | inference (samples/s) | peak RSS |"
    assert text.count(header) == 3 and "Each contender in its own process" in text
    assert f"| {bench.OURS} |" in text and f"| {bench.NAIVE} |" in text and "of the float32 np.matmul rate" in text


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], torch: ModuleType) -> None:
    """All four contenders, one round: scikit-learn and PyTorch run too."""
    out = tmp_path / "bench.json"
    argv = ["--quick", "--workloads", "a", "--threads", "1", "--rounds", "1", "--epochs", "1", "--json", str(out)]
    assert bench.main(argv) == 0
    saved = json.loads(out.read_text())
    assert [w["workload"] for w in saved["workloads"]] == ["a"] and saved["threads"] == 1
    assert set(saved["workloads"][0]["results"]) == set(bench.CONTENDERS)
    assert "Workload (a): digits 64-128-10" in capsys.readouterr().out


def test_ml_math_nn_bench_is_the_same_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--workloads", "a", "--threads", "1", "--rounds", "1", "--epochs", "1"]
    assert cli.main([*argv, "--contenders", bench.OURS, "--json", str(out)]) == 0
    assert [w["workload"] for w in json.loads(out.read_text())["workloads"]] == ["a"]
    assert "Workload (a): digits 64-128-10" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--threads", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "ml-math-nn bench: error: --threads must be >= 1, got 0 (see ml-math-nn bench --help)\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--workloads", "ax"], "unknown workload(s) x; choose from a, b, c"),
        (["--contenders", "ml-math-nn,keras"], "--contenders: choose among ml-math-nn, scikit-learn"),
        (["--rounds", "0"], "--rounds must be >= 1, got 0"),
    ],
)
def test_command_line_rejects_bad_options(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_runs_without_pytorch(tmp_path: Path) -> None:
    """A worker whose ``import torch`` fails reports PyTorch as left out."""
    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    folder = bench.write_data("digits", True, tmp_path)
    env = dict(PYTHONPATH=str(tmp_path))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        result = bench.spawn(bench.TORCH, "a", folder, 1, 1, 0, 0)
    assert result["missing"] == "PyTorch is not installed (pip install torch): left out"
