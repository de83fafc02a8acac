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


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    try:
        return bench.run(quick=True, threads=1)  # one thread: immune to a busy machine
    except DataError as e:  # workloads (b) and (c) train on Fashion-MNIST
        fashion_mnist_missing(e)


def test_report_has_every_workload_and_contender(report: dict[str, Any], torch: ModuleType) -> None:
    assert [w["workload"] for w in report["workloads"]] == ["a", "b", "c"]
    assert report["quick"] and report["threads"] == 1 and len(report["load_average_1min"]) == 2
    for w in report["workloads"]:
        assert set(w["results"]) == {bench.OURS, bench.SKLEARN, bench.TORCH}
        assert w["epochs"] == bench.QUICK_EPOCHS and w["notes"] == []
        for r in w["results"].values():
            assert len(r["epoch_times_s"]) == bench.QUICK_EPOCHS
            assert r["epoch_s"] == sorted(r["epoch_times_s"])[bench.QUICK_EPOCHS // 2]
            assert 0 <= r["test_acc"] <= 1 and r["infer_samples_per_s"] > 0
        ours = w["results"][bench.OURS]["epoch_s"]
        for name, ratio in w["ratio_to_ours"].items():
            assert ratio == pytest.approx(w["results"][name]["epoch_s"] / ours)
        assert w["matmul_flops_per_s"] > 0
        assert w["efficiency"] == pytest.approx(w["flops_per_epoch"] / ours / w["matmul_flops_per_s"])
        assert w["peak_train_memory_bytes"] > 0


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
    assert text.count("| library | epoch time (median) | time / ours | test accuracy | inference (samples/s) |") == 3
    assert f"| {bench.OURS} |" in text and "of the float32 np.matmul rate" in text and "peak training memory" in text


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--workloads", "a", "--threads", "1", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [w["workload"] for w in saved["workloads"]] == ["a"] and saved["threads"] == 1
    assert "Workload (a): digits 64-128-10" in capsys.readouterr().out


def test_ml_math_nn_bench_is_the_same_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--workloads", "a", "--threads", "1", "--json", str(out)]) == 0
    assert [w["workload"] for w in json.loads(out.read_text())["workloads"]] == ["a"]
    assert "Workload (a): digits 64-128-10" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--threads", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "ml-math-nn bench: error: --threads must be >= 1, got 0 (see ml-math-nn bench --help)\n"


def test_command_line_rejects_unknown_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--workloads", "ax"])
    assert exit_info.value.code == 2
    assert "unknown workload(s) x; choose from a, b, c" in capsys.readouterr().err


def test_runs_without_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    report = bench.run(quick=True, threads=1, workloads=["a"])
    (digits,) = report["workloads"]
    assert set(digits["results"]) == {bench.OURS, bench.SKLEARN}
    assert digits["notes"] == ["PyTorch is not installed (pip install torch): left out"]
    assert report["machine"]["torch"] is None
    assert "note: PyTorch is not installed" in bench.format_report(report)
