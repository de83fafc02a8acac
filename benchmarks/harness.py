r"""Speed benchmark: this library against scikit-learn, PyTorch and the naive NumPy floor.

Each workload trains the same architecture on the same float32 data (written once to
``.npy`` files that every contender reads) with the same initial learning rate, batch
size and thread limit, in four implementations: this library; scikit-learn's
``MLPClassifier`` (no momentum, no early stopping, ``tol=0``, no L2 penalty); PyTorch
eager on the CPU (a benchmark-only dependency, left out with a note where it is not
installed); and the seed's math transcribed naively in NumPy (``benchmarks/naive_numpy.py``),
the floor a NumPy framework is measured against.

**Every contender runs in its own fresh interpreter** (``harness.py --worker NAME``), so
no library's thread pool or allocator touches another's: one library's idle BLAS threads
spinning after a product slowed the next by up to 3x when they shared a process.  A
*round* starts one process per contender, in an order that alternates from round to round
(so a load that comes and goes on a shared machine hits them alike); each process trains
``warmup`` epochs that are not timed, then ``epochs`` timed ones.  A contender's epoch time
is the median over all its timed epochs of all rounds; its peak resident memory is the
largest ``ru_maxrss`` of its processes (from ``os.wait4``, taken by the parent).  The
thread limit is set in each child's environment (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) and again inside it (``threadpoolctl``,
``torch.set_num_threads``).

Our efficiency is the floating-point work an epoch needs divided by our per-epoch
time, as a fraction of the float32 matrix-multiply rate that ``np.matmul`` reaches on
large square matrices (measured in a process of its own in every round, same threads).
The work is counted from the layer shapes (each layer's
:meth:`~ml_math_nn.layers.Layer.multiply_adds`): a :class:`~ml_math_nn.layers.Dense`
layer of shape :math:`n_{in} \times n_{out}` needs, per sample,

.. math:: \underbrace{2 n_{in} n_{out}}_{Z = XW} + \underbrace{2 n_{in} n_{out}}_{X^\top G}
          + \underbrace{2 n_{in} n_{out}}_{G W^\top} = 6\, n_{in} n_{out},

except the first layer, whose input gradient :math:`G W^\top` no one needs
(:math:`4\, n_{in} n_{out}`; all four skip it, see
:meth:`~ml_math_nn.network.Network.forward_backward`).  The elementwise work (bias, activations,
loss, optimiser) is not counted either.

Run ``make bench``, ``ml-math-nn bench`` or ``python benchmarks/harness.py`` (``--quick``
for a small run that checks the harness, which CI runs; ``--rounds``, ``--epochs`` to
change the length); ``--json PATH`` also writes the report as JSON.  The harness lives
outside the library: it is the only code that imports scikit-learn's and PyTorch's networks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml_math_nn import __version__
from ml_math_nn.network import Network, build_mlp
from ml_math_nn.runs.cli import Parser

OURS, SKLEARN, TORCH, NAIVE = "ml-math-nn", "scikit-learn", "pytorch", "naive-numpy"
CONTENDERS = (OURS, SKLEARN, TORCH, NAIVE)
MATMUL = "matmul"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Workload:
    """One benchmark case: data, architecture and training settings shared by all contenders."""

    name: str
    dataset: str
    hidden: tuple[int, ...]
    batch_size: int
    optimizer: str
    lr: float

    def describe(self, n_in: int, n_out: int) -> str:
        shape = "-".join(str(w) for w in (n_in, *self.hidden, n_out))
        return f"{self.dataset} {shape}, batch {self.batch_size}, {self.optimizer} lr {self.lr:g}"


WORKLOADS = (
    Workload("a", "digits", (128,), 32, "sgd", 0.05),
    Workload("b", "fashion-mnist", (256,), 128, "sgd", 0.05),
    Workload("c", "fashion-mnist", (512, 256), 128, "adam", 1e-3),
)
ROUNDS, EPOCHS, WARMUP = 3, 3, 1
"""Default length: rounds of one process per contender, each ``WARMUP`` untimed and ``EPOCHS`` timed epochs."""
MATMUL_N, MATMUL_N_QUICK = 2048, 512
"""Size of the square float32 products that measure the machine's matmul rate."""
QUICK_ROUNDS, QUICK_EPOCHS = 2, 2
QUICK_TRAIN, QUICK_TEST = 4000, 1000
"""Quick mode trains on a subset of Fashion-MNIST and tests on part of its test set."""


# -- data: written once, read by every contender ---------------------------------------
def write_data(name: str, quick: bool, folder: Path) -> Path:
    """Float32 standardised ``X_train, y_train, X_test, y_test`` of dataset ``name`` as .npy files.

    The scaling (one mean and deviation over all pixels) is fitted on the training rows.
    Quick mode keeps a stratified subset of the training rows and the first test rows.
    """
    from ml_math_nn.data import datasets as data  # here: a worker need not load scikit-learn

    out = folder / f"{name}{'-quick' if quick else ''}"
    if out.is_dir():  # workloads b and c share the data
        return out
    quick = quick and name != "digits"
    dataset = data.load_dataset(name, subset=QUICK_TRAIN if quick else None)
    X_test, y_test = dataset.X_test, dataset.y_test
    if quick:
        X_test, y_test = X_test[:QUICK_TEST], y_test[:QUICK_TEST]
    scaler = data.Standardizer.fit(dataset.X_train, np.float32, per_feature=False)
    out.mkdir(parents=True)
    arrays = {"X_train": scaler.transform(dataset.X_train), "y_train": dataset.y_train.astype(np.int64),
              "X_test": scaler.transform(X_test), "y_test": y_test.astype(np.int64)}  # fmt: skip
    for key, value in arrays.items():
        np.save(out / f"{key}.npy", value)
    return out


def read_data(folder: Path) -> tuple[Any, Any, Any, Any]:
    return tuple(np.load(folder / f"{key}.npy") for key in ("X_train", "y_train", "X_test", "y_test"))  # type: ignore[return-value]


def initial_network(w: Workload, n_in: int, n_classes: int, seed: int) -> Network:
    """The network ours, PyTorch's and the naive contender start from (the same weights)."""
    init_seq = np.random.SeedSequence(seed).spawn(2)[0]
    return build_mlp(n_in, w.hidden, n_classes, np.random.default_rng(init_seq), dtype=np.float32)


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


# -- the worker: one contender in a fresh interpreter ----------------------------------
def make_contender(name: str, w: Workload, X: Any, y: Any, n_classes: int, seed: int) -> tuple[Any, Any]:
    """``(epoch, predict)`` of contender ``name``: one training epoch per call, and its predictions."""
    if name == OURS:
        from ml_math_nn.optim import SGD, Adam, Optimizer
        from ml_math_nn.train import Trainer

        network = initial_network(w, X.shape[1], n_classes, seed)
        optimizer: Optimizer = SGD(w.lr) if w.optimizer == "sgd" else Adam(w.lr)
        shuffle = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        trainer = Trainer(network, optimizer, w.batch_size, shuffle)
        return (lambda: trainer.train_epoch(X, y)), network.predict
    if name == NAIVE:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import naive_numpy as naive

        network = initial_network(w, X.shape[1], n_classes, seed)
        params = [network.layers[i].params[k].copy() for i in range(0, len(network.layers), 2) for k in ("W", "b")]
        step = naive.sgd(w.lr) if w.optimizer == "sgd" else naive.adam(w.lr)
        rng = np.random.default_rng(seed)
        return (lambda: naive.train_epoch(params, X, y, w.batch_size, rng, step)), (
            lambda Xt: naive.predict(params, Xt)
        )
    if name == SKLEARN:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch per call is the point
        model = MLPClassifier(
            hidden_layer_sizes=w.hidden, solver=w.optimizer, alpha=0.0, batch_size=w.batch_size,
            learning_rate="constant", learning_rate_init=w.lr, momentum=0.0, nesterovs_momentum=False,
            early_stopping=False, tol=0.0, shuffle=True, random_state=seed,
        )  # fmt: skip
        classes = np.arange(n_classes)
        return (lambda: model.partial_fit(X, y, classes=classes)), model.predict
    if name == TORCH:
        return torch_contender(w, X, y, initial_network(w, X.shape[1], n_classes, seed), seed)
    raise ValueError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


def torch_contender(w: Workload, X: Any, y: Any, network: Network, seed: int) -> tuple[Any, Any]:
    """The same model in PyTorch eager, starting from our initial weights."""
    import torch

    modules: list[Any] = []
    for spec, layer in zip(network.config()["layers"], network.layers, strict=True):
        if spec["type"] == "ReLU":
            modules.append(torch.nn.ReLU())
            continue
        linear = torch.nn.Linear(spec["n_in"], spec["n_out"], dtype=torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.params["b"]))
        modules.append(linear)
    model = torch.nn.Sequential(*modules)
    params = model.parameters()
    optimizer = torch.optim.SGD(params, lr=w.lr) if w.optimizer == "sgd" else torch.optim.Adam(params, lr=w.lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)

    def epoch() -> None:
        perm = torch.randperm(len(Xt), generator=generator)
        xs, ys = Xt[perm], yt[perm]
        for start in range(0, len(xs), w.batch_size):
            optimizer.zero_grad(set_to_none=True)
            logits = model(xs[start : start + w.batch_size])
            torch.nn.functional.cross_entropy(logits, ys[start : start + w.batch_size]).backward()
            optimizer.step()

    def predict(Xe: Any) -> Any:
        with torch.inference_mode():
            return model(torch.from_numpy(Xe)).argmax(dim=1).numpy()

    return epoch, predict


def worker(name: str, workload: str, folder: Path, threads: int, epochs: int, warmup: int, seed: int) -> dict[str, Any]:
    """Train contender ``name`` for ``warmup`` + ``epochs`` epochs in this process; its figures."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if name in (TORCH, MATMUL):
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            if name == TORCH:
                return {"pid": os.getpid(), "missing": "PyTorch is not installed (pip install torch): left out"}
    if name == MATMUL:
        n = int(workload)
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        out = np.empty((n, n), dtype=np.float32)
        times = []
        for _ in range(warmup + epochs):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
        return {"pid": os.getpid(), "flops_per_s": 2.0 * n**3 / statistics.median(times[warmup:])}
    w = next(w for w in WORKLOADS if w.name == workload)
    X, y, X_test, y_test = read_data(folder)
    n_classes = int(max(y.max(), y_test.max())) + 1
    epoch, predict = make_contender(name, w, X, y, n_classes, seed)
    times = []
    for _ in range(warmup + epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    infer = []
    for _ in range(3):
        start = time.perf_counter()
        predicted = predict(X_test)
        infer.append(time.perf_counter() - start)
    return {
        "pid": os.getpid(),
        "epoch_times_s": times[warmup:],
        "warmup_times_s": times[:warmup],
        "test_acc": float(np.mean(np.asarray(predicted) == y_test)),
        "infer_samples_per_s": len(X_test) / statistics.median(infer),
    }


def spawn(name: str, workload: str, folder: Path, threads: int, epochs: int, warmup: int, seed: int) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter; its result plus the process's peak RSS."""
    env = os.environ | dict.fromkeys(THREAD_VARIABLES, str(threads))
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--workloads", workload]
    argv += ["--data", str(folder), "--threads", str(threads), "--epochs", str(epochs), "--warmup", str(warmup)]
    argv += ["--seed", str(seed)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"the {name} worker failed ({process.returncode}): {err.read().decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out.read().decode().splitlines()[-1])
    # ru_maxrss: KiB on Linux, bytes on macOS
    result["peak_rss_bytes"] = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return result


# -- the run -------------------------------------------------------------------------
def run_workload(
    w: Workload,
    folder: Path,
    quick: bool,
    threads: int,
    rounds: int,
    epochs: int,
    seed: int,
    contenders: Sequence[str] = CONTENDERS,
) -> dict[str, Any]:
    """Rounds of one process per contender (order alternating) and one matmul probe."""
    X, y, X_test, y_test = read_data(folder)
    n_classes = int(max(y.max(), y_test.max())) + 1
    n = MATMUL_N_QUICK if quick else MATMUL_N
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (*contenders, MATMUL)}
    for r in range(rounds):
        order = [*contenders, MATMUL]
        for name in order if r % 2 == 0 else order[::-1]:
            what = str(n) if name == MATMUL else w.name
            runs[name].append(spawn(name, what, folder, threads, epochs if name != MATMUL else 5, WARMUP, seed))
    notes = sorted({run["missing"] for name in contenders for run in runs[name] if "missing" in run})
    results: dict[str, dict[str, Any]] = {}
    for name in contenders:
        done = [run for run in runs[name] if "missing" not in run]
        if not done:
            continue
        times = [t for run in done for t in run["epoch_times_s"]]
        results[name] = {
            "epoch_s": statistics.median(times),
            "epoch_times_s": times,
            "warmup_times_s": [t for run in done for t in run["warmup_times_s"]],
            "test_acc": statistics.median(run["test_acc"] for run in done),
            "infer_samples_per_s": statistics.median(run["infer_samples_per_s"] for run in done),
            "peak_rss_bytes": max(run["peak_rss_bytes"] for run in done),
            "pids": [run["pid"] for run in done],
        }
    ours_s = results[OURS]["epoch_s"]
    flops = flops_per_epoch(initial_network(w, X.shape[1], n_classes, seed), len(X))
    matmul_rate = statistics.median(run["flops_per_s"] for run in runs[MATMUL])
    return {
        "workload": w.name,
        "description": w.describe(X.shape[1], n_classes),
        "n_train": len(X),
        "n_test": len(X_test),
        "rounds": rounds,
        "epochs_per_round": epochs,
        "warmup_epochs": WARMUP,
        "results": results,
        "ratio_to_ours": {name: r["epoch_s"] / ours_s for name, r in results.items() if name != OURS},
        "flops_per_epoch": flops,
        "ours_flops_per_s": flops / ours_s,
        "matmul_n": n,
        "matmul_flops_per_s": matmul_rate,
        "matmul_pids": [run["pid"] for run in runs[MATMUL]],
        "efficiency": flops / ours_s / matmul_rate,
        "train_set_float32_bytes": int(X.nbytes),
        "notes": notes,
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, library versions and the BLAS numpy uses."""
    from threadpoolctl import threadpool_info

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
    versions: dict[str, Any] = {}
    for module in ("sklearn", "torch"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '?')} ({blas.get('architecture', '?')} kernels)",
        "scikit-learn": versions["sklearn"],
        "torch": versions["torch"],
        "ml_math_nn": __version__,
    }


def run(
    quick: bool = False,
    threads: int | None = None,
    workloads: Sequence[str] = ("a", "b", "c"),
    seed: int = 0,
    rounds: int | None = None,
    epochs: int | None = None,
    contenders: Sequence[str] = CONTENDERS,
) -> dict[str, Any]:
    """The whole benchmark with every library limited to ``threads`` threads; returns the report."""
    threads = threads or len(os.sched_getaffinity(0))
    rounds = rounds or (QUICK_ROUNDS if quick else ROUNDS)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    chosen = [w for w in WORKLOADS if w.name in workloads]
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="ml-math-nn-bench-"))
    try:
        results = [
            run_workload(w, write_data(w.dataset, quick, folder), quick, threads, rounds, epochs, seed, contenders)
            for w in chosen
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "quick": quick,
        "threads": threads,
        "machine": machine(),
        "harness_pid": os.getpid(),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "workloads": results,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown: the machine, then one table per workload."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {report['threads']} threads for every library",
        f"Python {m['python']}, numpy {m['numpy']} ({m['blas']}), scikit-learn {m['scikit-learn']}, "
        f"torch {m['torch']}, ml-math-nn {m['ml_math_nn']}",
        "Each contender in its own process; 1-minute load average at start and end: "
        + ", ".join(f"{x:.2f}" for x in report["load_average_1min"]),
        "",
    ]
    for w in report["workloads"]:
        lines += [
            f"Workload ({w['workload']}): {w['description']}; {w['n_train']} training rows, {w['n_test']} test rows; "
            f"{w['rounds']} rounds x ({w['warmup_epochs']} warm-up + {w['epochs_per_round']} timed epochs)",
            "",
            "| library | epoch time (median) | time / ours | test accuracy | inference (samples/s) | peak RSS |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in w["results"].items():
            ratio = 1.0 if name == OURS else w["ratio_to_ours"][name]
            lines.append(
                f"| {name} | {r['epoch_s'] * 1e3:.1f} ms | {ratio:.2f} | {r['test_acc']:.4f} "
                f"| {r['infer_samples_per_s']:,.0f} | {r['peak_rss_bytes'] / 2**20:.0f} MiB |"
            )
        lines += [
            "",
            f"ours: {w['flops_per_epoch'] / 1e9:.2f} GFLOP per epoch at {w['ours_flops_per_s'] / 1e9:.1f} GFLOP/s"
            f" = {w['efficiency']:.0%} of the float32 np.matmul rate ({w['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s"
            f" at n={w['matmul_n']}, in its own process each round)",
            *(f"note: {n}" for n in w["notes"]),
            "",
        ]
    return "\n".join(lines)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (``python benchmarks/harness.py`` and ``ml-math-nn bench``)."""
    parser.add_argument("--quick", action="store_true", help="small data and few epochs: checks the harness in seconds")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads for every library (default: all CPUs)")
    parser.add_argument("--workloads", default="abc", help="which workloads to run, e.g. 'ab' (default: abc)")
    parser.add_argument("--rounds", type=int, help=f"processes per contender, order alternating (default {ROUNDS})")
    parser.add_argument("--epochs", type=int, help=f"timed epochs per process (default {EPOCHS})")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"comma-separated (default: {','.join(CONTENDERS)})"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one contender in this process
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=WARMUP, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)


def run_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options of :func:`add_options`, run, print the report and write the JSON."""
    if args.worker:
        result = worker(args.worker, args.workloads, Path(args.data), args.threads, args.epochs, args.warmup, args.seed)
        print(json.dumps(result))
        return 0
    unknown = set(args.workloads) - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose from a, b, c")
    contenders = [c for c in args.contenders.split(",") if c]
    strangers = [c for c in contenders if c not in CONTENDERS]
    if strangers or OURS not in contenders:
        parser.error(f"--contenders: choose among {', '.join(CONTENDERS)}, {OURS} included; got {args.contenders}")
    for option in ("threads", "rounds", "epochs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be >= 1, got {value}")
    report = run(args.quick, args.threads, list(args.workloads), rounds=args.rounds, epochs=args.epochs,
                 contenders=contenders)  # fmt: skip
    print(format_report(report))
    if args.json:
        from ml_math_nn.runs.persistence import write_text  # here: it loads scikit-learn, which a worker need not

        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python benchmarks/harness.py") -> int:
    """The benchmark's command line; ``ml-math-nn bench ARGS`` calls this with its ARGS."""
    parser = Parser(prog=prog, description=__doc__.splitlines()[0])
    add_options(parser)
    return run_from_args(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
