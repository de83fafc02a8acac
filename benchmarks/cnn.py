"""A convolutional workload: our Fashion-MNIST CNN against the same network in PyTorch eager, on the CPU.

The network is ``configs/fashion-mnist-cnn.toml``'s (its ``layers``), trained with Adam at
that config's rate and batch size on the first ``--samples`` training images of
Fashion-MNIST, scaled the same way.  Each library trains in a fresh process of its own
(never two in one process: an idle thread pool of one slows the other), with the same
number of threads, in rounds that alternate between the two so that a load that comes and
goes on a shared machine hits both alike.  Reported: the median epoch time of each, their
ratio, and our share of the machine's matmul rate (the multiply-adds of a training epoch,
three products per layer, over the epoch time, against a large float32 product measured in
our process).  Run::

    python benchmarks/cnn.py [--samples 6000] [--epochs 2] [--rounds 3] [--threads 2]

(``make bench`` runs it.)  Needs PyTorch (the test extra) and Fashion-MNIST installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fashion-mnist-cnn.toml"


def load(samples: int) -> tuple[Any, Any, Any]:
    """The config, and the first ``samples`` scaled training rows and labels (float32)."""
    from ml_math_nn.data import datasets
    from ml_math_nn.runs.options import load_config

    config = load_config(CONFIG)
    data = datasets.load_dataset(config.dataset, subset=samples)
    scaler = datasets.Standardizer.fit(data.X_train, "float32", per_feature=False)
    return config, scaler.transform(data.X_train), data.y_train


def ours(config: Any, X: Any, y: Any, epochs: int) -> list[float]:
    import numpy as np

    from ml_math_nn.runs.builders import build_network, build_optimizer
    from ml_math_nn.train import Trainer

    net = build_network(config, X.shape[1], 10, sample_shape=(1, 28, 28))
    trainer = Trainer(net, build_optimizer(config), config.batch_size, np.random.default_rng(0))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch(X, y)
        times.append(time.perf_counter() - start)
    return times


def torch_twin(config: Any, X: Any, y: Any, epochs: int) -> list[float]:
    """The same layers as torch modules (from our network's own config), trained the same way."""
    import numpy as np
    import torch

    from ml_math_nn.runs.builders import build_network

    nn = torch.nn
    modules: list[Any] = []
    for layer in build_network(config, X.shape[1], 10, sample_shape=(1, 28, 28)).config()["layers"]:
        kind = layer["type"]
        if kind == "Reshape":
            modules.append(nn.Unflatten(1, tuple(layer["shape"])))
        elif kind == "Conv2D":
            args = (layer["in_channels"], layer["out_channels"], tuple(layer["kernel_size"]))
            modules.append(nn.Conv2d(*args, stride=tuple(layer["stride"]), padding=tuple(layer["padding"])))
        elif kind == "MaxPool2D":
            modules.append(nn.MaxPool2d(tuple(layer["kernel_size"]), tuple(layer["stride"]), tuple(layer["padding"])))
        elif kind == "Dense":
            modules.append(nn.Linear(layer["n_in"], layer["n_out"]))
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "Flatten":
            modules.append(nn.Flatten())
        elif kind == "Dropout":
            modules.append(nn.Dropout(layer["rate"]))
        else:
            raise ValueError(f"no torch module for {kind}")
    model = nn.Sequential(*modules)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    X_t, y_t = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.asarray(y, dtype=np.int64))
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X_t), generator=generator)
        for i in range(0, len(X_t), config.batch_size):
            batch = order[i : i + config.batch_size]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X_t[batch]), y_t[batch]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def child(library: str, samples: int, epochs: int) -> None:
    config, X, y = load(samples)
    if library == "torch":
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        times = torch_twin(config, X, y, epochs)
    else:
        times = ours(config, X, y, epochs)
    print(json.dumps({"library": library, "epoch_seconds": times}))


def matmul_rate(threads: int) -> float:
    """Multiply-adds per second of a 2048 x 2048 float32 product, best of 5, in a fresh process."""
    code = (
        "import numpy as np, time\n"
        "a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32); b = a.copy(); a @ b\n"
        "best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))\n"
        "print(2048 ** 3 / best)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(threads), capture_output=True, text=True, check=True)
    return float(out.stdout)


def _env(threads: int) -> dict[str, str]:
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {**os.environ, **{n: str(threads) for n in names}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per process (the first is counted too)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per library, alternating")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of each library")
    parser.add_argument("--child", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.samples, args.epochs)
        return 0
    times: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(args.rounds):
        for library in times:
            command = [sys.executable, __file__, "--child", library, "--samples", str(args.samples)]
            command += ["--epochs", str(args.epochs)]
            out = subprocess.run(command, env=_env(args.threads), capture_output=True, text=True, check=True)
            times[library] += json.loads(out.stdout.splitlines()[-1])["epoch_seconds"]
    from ml_math_nn.runs.builders import build_network
    from ml_math_nn.runs.options import load_config

    net = build_network(load_config(CONFIG), 784, 10, sample_shape=(1, 28, 28))
    # forward, and the backward's two products (the first layer's input gradient is skipped: counted anyway)
    macs = (
        3
        * args.samples
        * sum(layer.multiply_adds(s_in) for layer, (s_in, _) in zip(net.layers, net.shapes(), strict=True))
    )
    rate = matmul_rate(args.threads)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"CNN of {CONFIG.name}, {args.samples} Fashion-MNIST images an epoch, {args.threads} threads,")
    print(f"{args.rounds} alternating rounds of {args.epochs} epochs in separate processes (median epoch):")
    for name, median in medians.items():
        share = macs / median / rate
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        print(f"  {name:5s} {median:7.2f} s/epoch (range {spread})  {macs / median / 1e9:6.1f} G multiply-adds/s")
        if name == "ours":
            print(f"        our share of the machine's matmul rate ({rate / 1e9:.1f} G/s): {share:.0%}")
    print(f"  ours / torch epoch time: {medians['ours'] / medians['torch']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
