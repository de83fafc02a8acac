"""Our MLPClassifier and MLPRegressor against scikit-learn's, both on their defaults: score and fit time.

Three tasks, five seeds each (0..4), every estimator with ``random_state`` set to the seed:

* ``digits``: scikit-learn's digits, pixels / 16, a stratified 80/20 split per seed; test accuracy.
* ``diabetes``: ``load_diabetes``, an 80/20 split per seed; test R².
* ``friedman1``: ``make_friedman1(n_samples=2000, noise=1.0, random_state=seed)``, an 80/20 split; test R².

Each library runs in its own process (``--worker``), one process per library and task, in
alternating order over ``--rounds`` rounds, with one BLAS thread; the fit times quoted are the
median over rounds of each split's ``fit`` wall time, then the mean over the splits.

Run ``python benchmarks/estimator_vs_sklearn.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np

TASKS = ("digits", "diabetes", "friedman1")
LIBRARIES = ("ml-math-nn", "scikit-learn")


def split(task: str, seed: int) -> tuple[Any, Any, Any, Any]:
    """The train and test rows of ``task`` for ``seed``."""
    from sklearn.datasets import load_diabetes, load_digits, make_friedman1
    from sklearn.model_selection import train_test_split

    if task == "digits":
        X, y = load_digits(return_X_y=True)
        return train_test_split(X / 16, y, test_size=0.2, stratify=y, random_state=seed)
    if task == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    else:
        X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=seed)
    return train_test_split(X, y, test_size=0.2, random_state=seed)


def worker(library: str, task: str, seeds: list[int]) -> list[dict[str, float]]:
    """Fit the library's estimator on its defaults on each split: seed, score, fit seconds, epochs."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    if library == "ml-math-nn":
        from ml_math_nn.integrations.estimator import MLPClassifier, MLPRegressor
    else:
        from sklearn.neural_network import MLPClassifier, MLPRegressor  # type: ignore[no-redef]
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # both stop at max_iter on some splits
        for seed in seeds:
            X_train, X_test, y_train, y_test = split(task, seed)
            model = (MLPClassifier if task == "digits" else MLPRegressor)(random_state=seed)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            fit_s = time.perf_counter() - start
            rows.append({"seed": seed, "score": float(model.score(X_test, y_test)), "fit_s": fit_s,
                         "epochs": model.n_iter_})  # fmt: skip
    return rows


def compare(rounds: int, seeds: list[int]) -> dict[str, dict[str, list[list[dict[str, float]]]]]:
    """Per task and library, one list of rows per round, each from a process of its own."""
    results: dict[str, dict[str, list[list[dict[str, float]]]]] = {t: {lib: [] for lib in LIBRARIES} for t in TASKS}
    for r in range(rounds):
        for task in TASKS:
            for library in LIBRARIES if r % 2 == 0 else LIBRARIES[::-1]:
                argv = [sys.executable, __file__, "--worker", library, task, ",".join(map(str, seeds))]
                out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
                results[task][library].append(json.loads(out))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--seeds", type=int, default=5, help="splits: seeds 0..N-1 (default 5)")
    parser.add_argument("--worker", nargs=3, metavar=("LIBRARY", "TASK", "SEEDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        library, task, seeds = args.worker
        print(json.dumps(worker(library, task, [int(s) for s in seeds.split(",")])))
        return
    import sklearn

    from ml_math_nn import __version__

    results = compare(args.rounds, list(range(args.seeds)))
    print(f"defaults against defaults, seeds 0-{args.seeds - 1}, {args.rounds} alternating rounds, one process per "
          f"library and task, 1 BLAS thread; ml-math-nn {__version__}, scikit-learn {sklearn.__version__}, "
          f"numpy {np.__version__}")  # fmt: skip
    print(f"{'task':<10} {'library':<13} {'score per split':<44} {'mean':>7} {'fit s':>7} {'epochs':>7}")
    for task, by_library in results.items():
        for library, runs in by_library.items():
            scores = [row["score"] for row in runs[0]]
            fit = statistics.fmean(statistics.median(run[i]["fit_s"] for run in runs) for i in range(len(runs[0])))
            epochs = statistics.fmean(row["epochs"] for row in runs[0])
            per_split = " ".join(f"{s:.4f}" for s in scores)
            print(f"{task:<10} {library:<13} {per_split:<44} {statistics.fmean(scores):7.4f} {fit:7.3f} {epochs:7.1f}")
        ours, theirs = (by_library[lib] for lib in LIBRARIES)
        ratios = [o[i]["fit_s"] / t[i]["fit_s"] for o, t in zip(ours, theirs, strict=True) for i in range(len(o))]
        print(f"{task:<10} fit time ours / scikit-learn's, median over splits and rounds: "
              f"{statistics.median(ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
