"""Our MLPClassifier against scikit-learn's on digits: test accuracy and fit time, side by side.

Five stratified 80/20 splits of scikit-learn's digits (seeds 0..4, the splits of
``ml-math-nn train --dataset digits --seed S``), each standardised by a ``StandardScaler``
fitted on its training rows.  Every estimator gets the same scaled rows and the same
architecture, one hidden layer of 128 ReLU units, with ``random_state`` set to the
split's seed: scikit-learn's ``MLPClassifier`` with its defaults (Adam, up to 200 epochs
with its own stopping rule), ours with its defaults (the CLI's: plain SGD, 30 epochs)
and ours with the settings of :data:`TUNED`.  Fit times are wall times of ``fit``.

Run ``python benchmarks/estimator_vs_sklearn.py`` (``--help`` for the options);
``tests/test_estimator.py`` checks that :data:`TUNED` is at least as accurate as
scikit-learn on these splits.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml_math_nn import MLPClassifier, __version__
from ml_math_nn.data import datasets as data

HIDDEN = (128,)
TUNED: dict[str, Any] = {"optimizer": "adam", "learning_rate_init": 1e-3, "max_iter": 50, "alpha": 1e-3}
"""Our settings for the comparison: Adam, 50 epochs and an L2 penalty (our ``alpha`` is
not divided by the batch size, so 1e-3 here is much stronger than scikit-learn's 1e-4)."""
OURS: dict[str, dict[str, Any]] = {"ours (defaults)": {}, "ours (adam, alpha 1e-3)": TUNED}


def compare(
    ours: Mapping[str, Mapping[str, Any]] = OURS, seeds: Iterable[int] = range(5), dtype: str = "float64"
) -> dict[str, list[dict[str, float]]]:
    """Per contender (each of ``ours``, our estimator with those parameters, then
    ``"sklearn"``), one row per split: ``seed``, ``acc`` (test accuracy), ``fit_s``, ``epochs``."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in [*ours, "sklearn"]}
    for seed in seeds:
        ds = data.digits(test_size=0.2, seed=seed)
        scaler = StandardScaler().fit(ds.X_train)
        X_train, X_test = (scaler.transform(X).astype(dtype) for X in (ds.X_train, ds.X_test))
        models = {name: MLPClassifier(HIDDEN, random_state=seed, **params) for name, params in ours.items()}
        models["sklearn"] = SklearnMLP(HIDDEN, random_state=seed)
        for name, model in models.items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # its epoch count is reported instead
                model.fit(X_train, ds.y_train)
            fit_s = time.perf_counter() - start
            acc = float(model.score(X_test, ds.y_test))
            results[name].append({"seed": seed, "acc": acc, "fit_s": fit_s, "epochs": model.n_iter_})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype of the data")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1, for steady timings)")
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads):
        results = compare(dtype=args.dtype)
    print(f"digits, 5 stratified 80/20 splits (seeds 0-4), hidden {HIDDEN} relu, {args.dtype} data, "
          f"{args.threads} BLAS thread(s); ml-math-nn {__version__}, scikit-learn {sklearn.__version__}, "
          f"numpy {np.__version__}")  # fmt: skip
    width = max(map(len, results))
    print(f"{'':<{width}}  test accuracy per split               mean    fit s (mean)  epochs")
    for name, rows in results.items():
        accs = " ".join(f"{r['acc']:.4f}" for r in rows)
        mean_acc, mean_fit = statistics.fmean(r["acc"] for r in rows), statistics.fmean(r["fit_s"] for r in rows)
        epochs = statistics.fmean(r["epochs"] for r in rows)
        print(f"{name:<{width}}  {accs}  {mean_acc:.4f}  {mean_fit:12.3f}  {epochs:6.0f}")


if __name__ == "__main__":
    main()
