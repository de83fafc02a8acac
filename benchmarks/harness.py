r"""Speed benchmark: this library against scikit-learn and PyTorch, side by side in one run.

Each workload trains the same architecture on the same float32 data with the same
initial learning rate, batch size and number of epochs in three implementations:
this library, scikit-learn's ``MLPClassifier`` (no momentum, no early stopping,
``tol=0``, no L2 penalty) and PyTorch eager on the CPU (a benchmark-only dependency,
left out with a note where it is not installed).  The three train in turns, one epoch
each, so a load that comes and goes on a shared machine hits them alike; a
contender's per-epoch time is the median over its epochs.

Our efficiency is the floating-point work an epoch needs divided by our per-epoch
time, as a fraction of the float32 matrix-multiply rate that ``np.matmul`` reaches on
large square matrices (sampled once per round, between the epochs).  The work is
counted from the layer shapes (each layer's
:meth:`~ml_math_nn.layers.Layer.multiply_adds`): a :class:`~ml_math_nn.layers.Dense`
layer of shape :math:`n_{in} \times n_{out}` needs, per sample,

.. math:: \underbrace{2 n_{in} n_{out}}_{Z = XW} + \underbrace{2 n_{in} n_{out}}_{X^\top G}
          + \underbrace{2 n_{in} n_{out}}_{G W^\top} = 6\, n_{in} n_{out},

except the first layer, whose input gradient :math:`G W^\top` no one needs
(:math:`4\, n_{in} n_{out}`; all three skip it, see
:meth:`~ml_math_nn.network.Network.forward_backward`).  The elementwise work (bias, activations,
loss, optimiser) is not counted either.

Run ``make bench``, ``ml-math-nn bench`` or ``python benchmarks/harness.py`` (``--quick``
for a small run that checks the harness, which CI runs); ``--json PATH`` also writes the
report as JSON.  The harness lives outside the library: it is the only code that imports
scikit-learn's and PyTorch's networks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from ml_math_nn import __version__
from ml_math_nn._types import Array, Labels
from ml_math_nn.data import datasets as data
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.optim import SGD, Adam, Optimizer
from ml_math_nn.runs.cli import Parser
from ml_math_nn.runs.persistence import write_text
from ml_math_nn.train import Trainer

OURS, SKLEARN, TORCH = "ml-math-nn", "scikit-learn", "pytorch"


@dataclass(frozen=True)
class Workload:
    """One benchmark case: data, architecture and training settings shared by all contenders."""

    name: str
    dataset: str
    hidden: tuple[int, ...]
    batch_size: int
    optimizer: str
    lr: float
    epochs: int

    def describe(self, n_in: int, n_out: int) -> str:
        shape = "-".join(str(w) for w in (n_in, *self.hidden, n_out))
        return f"{self.dataset} {shape}, batch {self.batch_size}, {self.optimizer} lr {self.lr:g}"


WORKLOADS = (
    Workload("a", "digits", (128,), 32, "sgd", 0.05, 30),
    Workload("b", "fashion-mnist", (256,), 128, "sgd", 0.05, 10),
    Workload("c", "fashion-mnist", (512, 256), 128, "adam", 1e-3, 10),
)
MATMUL_N, MATMUL_N_QUICK = 2048, 512
"""Size of the square float32 products that measure the machine's matmul rate."""
QUICK_EPOCHS = 3
QUICK_TRAIN, QUICK_TEST = 4000, 1000
"""Quick mode trains on a subset of Fashion-MNIST and tests on part of its test set."""


# -- data ----------------------------------------------------------------------------
@lru_cache(maxsize=2)  # workloads b and c share the data
def load(name: str, quick: bool) -> tuple[Array, Labels, Array, Labels]:
    """Float32 standardised ``X_train, y_train, X_test, y_test`` of dataset ``name``.

    The scaling (one mean and deviation over all pixels) is fitted on the training rows.
    Quick mode keeps a stratified subset of the training rows and the first test rows.
    """
    quick = quick and name != "digits"
    dataset = data.load_dataset(name, subset=QUICK_TRAIN if quick else None)
    X_test, y_test = dataset.X_test, dataset.y_test
    if quick:
        X_test, y_test = X_test[:QUICK_TEST], y_test[:QUICK_TEST]
    scaler = data.Standardizer.fit(dataset.X_train, np.float32, per_feature=False)
    return scaler.transform(dataset.X_train), dataset.y_train, scaler.transform(X_test), y_test


# -- measurements --------------------------------------------------------------------
def matmul_probe(n: int) -> Callable[[], object]:
    """One float32 ``np.matmul`` of two ``n x n`` matrices (:math:`2n^3` FLOPs) per call."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: first-touch pages, BLAS thread start
    return partial(np.matmul, a, b, out=out)


def flops_per_epoch(network: Network, n_samples: int) -> int:
    r"""Matrix-product work one training epoch needs,

    .. math:: m \Big(6 \sum_\ell n_{in}^{(\ell)} n_{out}^{(\ell)} - 2\, n_{in}^{(1)} n_{out}^{(1)}\Big):

    forward, weight gradient and input gradient of every layer built on a matrix product
    (its :meth:`~ml_math_nn.layers.Layer.multiply_adds` :math:`n_{in} n_{out}` per sample
    for a dense layer, each pass as much), less the input gradient of the first layer
    (the data needs no gradient).
    """
    macs = [layer.multiply_adds(shape) for layer, (shape, _) in zip(network.layers, network.shapes(), strict=True)]
    return n_samples * (6 * sum(macs) - 2 * macs[0])


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_training_memory(make: Callable[[], Trainer], X: Array, y: Labels, X_test: Array, y_test: Labels) -> int:
    """Peak bytes allocated (``tracemalloc``) while a fresh trainer runs one epoch and evaluates.

    The data already exists before the run and is not counted; the trainer's shuffle
    buffer, activations, gradients and optimiser state are.  Traced separately from
    the timed epochs, since tracing slows allocation down.
    """
    tracemalloc.start()
    try:
        make().fit(X, y, 1, eval_sets={"test": (X_test, y_test)})
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- contenders: each trains one epoch per call, predicts, and scores ------------------
class Contender:
    name = ""

    def epoch(self) -> None:
        raise NotImplementedError

    def predict(self, X: Array) -> np.ndarray[Any, Any]:
        raise NotImplementedError


class Ours(Contender):
    name = OURS

    def __init__(self, w: Workload, X: Array, y: Labels, n_classes: int, seed: int) -> None:
        self.w, self.X, self.y, self.n_classes, self.seed = w, X, y, n_classes, seed
        self.trainer = self.fresh_trainer()

    def fresh_trainer(self) -> Trainer:
        """A trainer of a newly initialised network (the same one every time)."""
        init_seq, shuffle_seq = np.random.SeedSequence(self.seed).spawn(2)
        hidden, n_in = self.w.hidden, self.X.shape[1]
        network = build_mlp(n_in, hidden, self.n_classes, np.random.default_rng(init_seq), dtype=np.float32)
        optimizer: Optimizer = SGD(self.w.lr) if self.w.optimizer == "sgd" else Adam(self.w.lr)
        return Trainer(network, optimizer, self.w.batch_size, np.random.default_rng(shuffle_seq))

    def epoch(self) -> None:
        self.trainer.train_epoch(self.X, self.y)

    def predict(self, X: Array) -> np.ndarray[Any, Any]:
        return self.trainer.network.predict(X)


class SkLearn(Contender):
    name = SKLEARN

    def __init__(self, w: Workload, X: Array, y: Labels, n_classes: int, seed: int) -> None:
        self.X, self.y, self.classes = X, y, np.arange(n_classes)
        self.model = MLPClassifier(
            hidden_layer_sizes=w.hidden,
            solver=w.optimizer,
            alpha=0.0,
            batch_size=w.batch_size,
            learning_rate="constant",
            learning_rate_init=w.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            early_stopping=False,
            tol=0.0,
            shuffle=True,
            random_state=seed,
        )

    def epoch(self) -> None:
        self.model.partial_fit(self.X, self.y, classes=self.classes)

    def predict(self, X: Array) -> np.ndarray[Any, Any]:
        return np.asarray(self.model.predict(X))


class Torch(Contender):
    """The same model in PyTorch eager, starting from our initial weights."""

    name = TORCH

    def __init__(self, w: Workload, X: Array, y: Labels, network: Network, seed: int) -> None:
        import torch

        self.torch = torch
        modules: list[Any] = []
        # Translated from the layers' configs (a benchmark MLP: dense layers and ReLUs).
        for layer, spec in zip(network.layers, network.config()["layers"], strict=True):
            if spec["type"] == "ReLU":
                modules.append(torch.nn.ReLU())
                continue
            if spec["type"] != "Dense":
                raise ValueError(f"the PyTorch contender has no counterpart of {layer!r}")
            linear = torch.nn.Linear(spec["n_in"], spec["n_out"], dtype=torch.float32)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.params["b"]))
            modules.append(linear)
        self.model = torch.nn.Sequential(*modules)
        params = self.model.parameters()
        self.optimizer = torch.optim.SGD(params, lr=w.lr) if w.optimizer == "sgd" else torch.optim.Adam(params, lr=w.lr)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
        self.batch_size = w.batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> None:
        torch = self.torch
        perm = torch.randperm(len(self.X), generator=self.generator)
        xs, ys = self.X[perm], self.y[perm]
        for start in range(0, len(xs), self.batch_size):
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(xs[start : start + self.batch_size])
            torch.nn.functional.cross_entropy(logits, ys[start : start + self.batch_size]).backward()
            self.optimizer.step()

    def predict(self, X: Array) -> np.ndarray[Any, Any]:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).argmax(dim=1).numpy()


# -- the run -------------------------------------------------------------------------
def run_workload(w: Workload, quick: bool, seed: int, infer_repeats: int) -> dict[str, Any]:
    """Train every contender in turns for ``w.epochs`` epochs; times, accuracy, throughput, memory."""
    X, y, X_test, y_test = load(w.dataset, quick)
    n_classes = int(max(y.max(), y_test.max())) + 1
    epochs = QUICK_EPOCHS if quick else w.epochs
    ours = Ours(w, X, y, n_classes, seed)
    contenders: list[Contender] = [ours, SkLearn(w, X, y, n_classes, seed)]
    notes = []
    try:
        contenders.append(Torch(w, X, y, ours.trainer.network, seed))
    except ImportError:
        notes.append("PyTorch is not installed (pip install torch): left out")
    # The matmul rate is sampled in the same rounds, so all four see the same load.
    n = MATMUL_N_QUICK if quick else MATMUL_N
    rounds: dict[str, Callable[[], object]] = {c.name: c.epoch for c in contenders} | {"matmul": matmul_probe(n)}
    times: dict[str, list[float]] = {name: [] for name in rounds}
    for _ in range(epochs):
        for name, step in rounds.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    results: dict[str, dict[str, Any]] = {}
    for c in contenders:
        predict = partial(c.predict, X_test)
        results[c.name] = {
            "epoch_s": statistics.median(times[c.name]),
            "epoch_times_s": times[c.name],
            "test_acc": float(np.mean(c.predict(X_test) == y_test)),
            "infer_samples_per_s": len(X_test) / _median_time(predict, infer_repeats),
        }
    ours_s = results[OURS]["epoch_s"]
    flops = flops_per_epoch(ours.trainer.network, len(X))
    matmul_rate = 2.0 * n**3 / statistics.median(times["matmul"])
    train_bytes = X.size * np.dtype(np.float32).itemsize
    peak = peak_training_memory(ours.fresh_trainer, X, y, X_test, y_test)
    return {
        "workload": w.name,
        "description": w.describe(X.shape[1], n_classes),
        "n_train": len(X),
        "n_test": len(X_test),
        "epochs": epochs,
        "results": results,
        "ratio_to_ours": {name: r["epoch_s"] / ours_s for name, r in results.items() if name != OURS},
        "flops_per_epoch": flops,
        "ours_flops_per_s": flops / ours_s,
        "matmul_n": n,
        "matmul_flops_per_s": matmul_rate,
        "efficiency": flops / ours_s / matmul_rate,
        "peak_train_memory_bytes": peak,
        "train_set_float32_bytes": train_bytes,
        "notes": notes,
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, library versions and the BLAS numpy uses."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas: dict[str, Any] = next(
        (p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]), {}
    )
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '?')} ({blas.get('architecture', '?')} kernels)",
        "scikit-learn": sklearn.__version__,
        "torch": torch_version,
        "ml_math_nn": __version__,
    }


def run(
    quick: bool = False, threads: int | None = None, workloads: Sequence[str] = ("a", "b", "c"), seed: int = 0
) -> dict[str, Any]:
    """The whole benchmark with every library limited to ``threads`` threads; returns the report."""
    threads = threads or len(os.sched_getaffinity(0))
    chosen = [w for w in WORKLOADS if w.name in workloads]
    load_before = os.getloadavg()[0]
    with threadpool_limits(limits=threads), _torch_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch per call is the point
        results = [run_workload(w, quick, seed, 2 if quick else 10) for w in chosen]
    return {
        "quick": quick,
        "threads": threads,
        "machine": machine(),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "workloads": results,
    }


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``n`` for a block (nothing to do without PyTorch)."""
    try:
        import torch
    except ImportError:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown: the machine, then one table per workload."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {report['threads']} threads for every library",
        f"Python {m['python']}, numpy {m['numpy']} ({m['blas']}), scikit-learn {m['scikit-learn']}, "
        f"torch {m['torch']}, ml-math-nn {m['ml_math_nn']}",
        "1-minute load average at start and end (the run itself adds up to its thread count): "
        + ", ".join(f"{x:.2f}" for x in report["load_average_1min"]),
        "",
    ]
    for w in report["workloads"]:
        lines += [
            f"Workload ({w['workload']}): {w['description']}; {w['n_train']} training rows, "
            f"{w['n_test']} test rows, {w['epochs']} epochs",
            "",
            "| library | epoch time (median) | time / ours | test accuracy | inference (samples/s) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in w["results"].items():
            ratio = 1.0 if name == OURS else w["ratio_to_ours"][name]
            lines.append(
                f"| {name} | {r['epoch_s'] * 1e3:.1f} ms | {ratio:.2f} | {r['test_acc']:.4f} "
                f"| {r['infer_samples_per_s']:,.0f} |"
            )
        peak, size = w["peak_train_memory_bytes"], w["train_set_float32_bytes"]
        lines += [
            "",
            f"ours: {w['flops_per_epoch'] / 1e9:.2f} GFLOP per epoch at {w['ours_flops_per_s'] / 1e9:.1f} GFLOP/s"
            f" = {w['efficiency']:.0%} of the float32 np.matmul rate ({w['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s"
            f" at n={w['matmul_n']}, sampled in the same rounds); peak training memory "
            f"{peak / 2**20:.1f} MiB = {peak / size:.2f} x the float32 training set ({size / 2**20:.1f} MiB)",
            *(f"note: {n}" for n in w["notes"]),
            "",
        ]
    return "\n".join(lines)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (``python benchmarks/harness.py`` and ``ml-math-nn bench``)."""
    parser.add_argument("--quick", action="store_true", help="small data and few epochs: checks the harness in seconds")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads for every library (default: all CPUs)")
    parser.add_argument("--workloads", default="abc", help="which workloads to run, e.g. 'ab' (default: abc)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")


def run_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options of :func:`add_options`, run, print the report and write the JSON."""
    unknown = set(args.workloads) - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose from a, b, c")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    report = run(args.quick, args.threads, list(args.workloads))
    print(format_report(report))
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python benchmarks/harness.py") -> int:
    """The benchmark's command line; ``ml-math-nn bench ARGS`` calls this with its ARGS."""
    parser = Parser(prog=prog, description=__doc__.splitlines()[0])
    add_options(parser)
    return run_from_args(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
