"""Peak memory of a training run against the size of its training set (issue 17).

Writes Fashion-MNIST ten times over (the 60,000 training images and nine copies shifted
by one or two pixels, 600,000 images) once as a ``npy:`` folder, then trains the same
configuration on the 60,000 images and on the 600,000, each in its own process
(``ml-math-nn train``), and prints the peak resident memory each run's ``summary.json``
records.  Run from the repository root::

    python benchmarks/memory.py --folder DIR [--epochs 1] [--config configs/fashion-mnist.toml] [--hidden 64]

The folder (about 480 MB) is kept for the next run; remove it when done.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ml_math_nn.data import datasets as data

SHIFTS = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (2, 0), (0, -2), (-2, 2)]
"""(rows, columns) by which each copy of the training images is shifted; blank pixels come in."""


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images`` (m, h, w) moved by ``dy`` rows and ``dx`` columns, zeros filling in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def write_tenfold(folder: Path) -> Path:
    """Fashion-MNIST with its shifted copies as a ``npy:`` folder (written once, chunk by chunk)."""
    if (folder / "y_test.npy").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ds = data.load_dataset("fashion-mnist")
    assert ds.image_shape is not None
    images = ds.X_train.reshape(-1, *ds.image_shape)
    m = len(images)
    X = np.lib.format.open_memmap(folder / "X_train.npy", "w+", np.uint8, (m * len(SHIFTS), *ds.image_shape))
    for k, (dy, dx) in enumerate(SHIFTS):
        X[k * m : (k + 1) * m] = shifted(images, dy, dx)
    X.flush()
    del X
    np.save(folder / "y_train.npy", np.tile(ds.y_train, len(SHIFTS)))
    np.save(folder / "X_test.npy", ds.X_test.reshape(-1, *ds.image_shape))
    np.save(folder / "y_test.npy", ds.y_test)
    return folder


def train(dataset: str, config: str, epochs: int, options: list[str]) -> dict[str, object]:
    """One ``ml-math-nn train`` run in its own process; the figures of its summary.json."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "ml_math_nn", "train", "--quiet", "--config", config, "--dataset", dataset]
        subprocess.run([*argv, *options, "--epochs", str(epochs), "--out", f"{out}/run"], check=True)
        summary = json.loads(Path(out, "run", "summary.json").read_text())
    keys = ("peak_memory_mb", "epoch_time_s", "train_time_s")
    return {"dataset": dataset, "n_train": summary["dataset"]["n_train"], **{k: summary[k] for k in keys}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="where the 600,000-image npy: folder is (or is written)")
    parser.add_argument("--config", default="configs/fashion-mnist.toml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", help="hidden widths instead of the config's (a smaller model trains faster)")
    args = parser.parse_args()
    options = ["--hidden", args.hidden] if args.hidden else []
    folder = write_tenfold(Path(args.folder))
    runs = [train(name, args.config, args.epochs, options) for name in ("fashion-mnist", f"npy:{folder}")]
    for run in runs:
        print(json.dumps(run))
    ratio = float(runs[1]["peak_memory_mb"]) / float(runs[0]["peak_memory_mb"])  # type: ignore[arg-type]
    print(f"peak memory, 600,000 against 60,000 training images: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
