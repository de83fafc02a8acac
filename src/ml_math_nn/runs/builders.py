"""What a training run is made of, built from its options: the data split and scaled, the
network, the optimiser, the learning-rate schedule, and the random generators.

The CLI (:mod:`ml_math_nn.runs.training`), the gradient check and the scikit-learn
estimator build from these same functions, so one set of options means one model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._types import Array
from ..data import datasets as data
from ..data.rows import ScaledRows
from ..gradcheck import Results, check_network, fix_dropout_masks
from ..losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy, Target
from ..network import Network, build_from_spec, build_mlp
from .options import TrainConfig
from .options import build_optimizer as build_optimizer  # the optimiser and schedule are built where
from .options import build_schedule as build_schedule  # the options say where they go (light imports)


@dataclass
class PreparedData:
    """A dataset split into train / validation / test and scaled for the network.

    Training images stored as uint8 stay so and are scaled a batch at a time
    (:class:`~ml_math_nn.data.rows.ScaledRows`); other features are scaled once, whole.
    """

    dataset: data.Dataset
    scaler: data.Standardizer
    X_train: Array | ScaledRows
    y_train: Target
    X_test: Array
    y_test: Target
    X_val: Array | None = None
    y_val: Target | None = None
    target_scaler: data.Standardizer | None = None
    """Regression only: the targets' mean and standard deviation per output on the training
    split; every ``y_*`` here is standardised by it (the dataset keeps the originals)."""

    def eval_sets(self) -> dict[str, tuple[Array, Target]]:
        sets = {"test": (self.X_test, self.y_test)}
        if self.X_val is not None and self.y_val is not None:
            sets = {"val": (self.X_val, self.y_val), **sets}
        return sets


TASK_HEADS: dict[str, type[Loss]] = {
    "classification": SoftmaxCrossEntropy,
    "regression": MeanSquaredError,
    "multilabel": SigmoidCrossEntropy,
}
"""The loss head of each task (:data:`ml_math_nn.data.datasets.TASKS`)."""


def task_of(network: Network) -> str:
    """The task a network's head serves (see :data:`TASK_HEADS`); the head is saved with the model."""
    for task, head in TASK_HEADS.items():
        if isinstance(network.loss, head):
            return task
    raise ValueError(f"no task has the {network.loss.name} head")


def scale_targets(scaler: data.Standardizer, y: NDArray[Any]) -> Array:
    r"""Real-valued targets (m,) or (m, K) standardised by ``scaler``, :math:`(y - \mu) / \sigma`, as (m, K)."""
    return scaler.transform(np.asarray(y).reshape(len(y), -1))


def unscale_targets(scaler: data.Standardizer | None, values: Array) -> NDArray[np.float64]:
    r"""Standardised values (m, K) back in the targets' units, :math:`v \sigma + \mu`, in float64."""
    out: NDArray[np.float64] = np.asarray(values, dtype=np.float64)
    return out if scaler is None else out * scaler.scale.astype(np.float64) + scaler.mean.astype(np.float64)


def derived_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent streams from the one user seed: each use of randomness gets its own."""
    return dict(zip(("val_split", "init", "shuffle", "dropout"), np.random.SeedSequence(seed).spawn(4), strict=True))


def load_configured_dataset(config: TrainConfig) -> data.Dataset:
    """The dataset named by ``config.dataset`` (digits, fashion-mnist, mnist, csv:PATH, npz:PATH)."""
    return data.load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        test_file=config.test_file,
        test_size=config.test_size,
        seed=config.seed,
        label_column=config.label_column,
        subset=config.subset,
        task=config.task,
    )


def validation_split(
    X: Array, y: Target, val_size: float, seed: int, stratify: bool = True
) -> tuple[Array, Array, Target, Target]:
    """``(X_train, X_val, y_train, y_val)``, stratified by the labels unless ``stratify`` is
    False (real values, several labels), drawn from the seed's ``val_split`` stream."""
    split_seed: int = derived_seeds(seed)["val_split"].generate_state(1).tolist()[0]
    try:
        return data.split(X, y, val_size, split_seed, stratify)
    except ValueError as e:  # scikit-learn's message alone would not say which split
        raise ValueError(f"val_size {val_size:g}: cannot split a validation set off {len(y)} samples: {e}") from None


def prepare_data(config: TrainConfig, dataset: data.Dataset | None = None) -> PreparedData:
    """Load (unless given), carve the validation split, fit the scaling on training rows only."""
    dataset = dataset if dataset is not None else load_configured_dataset(config)
    dtype = np.dtype(config.dtype)
    X_train, y_train, X_val, y_val = dataset.X_train, dataset.y_train, None, None
    if config.val_size > 0:
        stratify = dataset.task == "classification"
        X_train, X_val, y_train, y_val = validation_split(X_train, y_train, config.val_size, config.seed, stratify)
    scaler = data.Standardizer.fit(X_train, dtype, per_feature=dataset.image_shape is None)
    # uint8 images are a quarter of their float32 copy, and a memory-mapped file is read as
    # needed: both stay as they are and are scaled a batch at a time.
    lazy = X_train.dtype == np.uint8 or isinstance(X_train, np.memmap)
    train = ScaledRows(X_train, scaler) if lazy else scaler.transform(X_train)
    X_test = scaler.transform(dataset.X_test)
    X_val = None if X_val is None else scaler.transform(X_val)
    y_test, target_scaler = dataset.y_test, None
    if dataset.task == "regression":  # standardised targets: one learning rate suits any units
        target_scaler = data.Standardizer.fit(np.asarray(y_train).reshape(len(y_train), -1), dtype)
        y_train, y_test = scale_targets(target_scaler, y_train), scale_targets(target_scaler, y_test)
        y_val = None if y_val is None else scale_targets(target_scaler, y_val)
    # The run keeps the data once: the raw arrays (e.g. 60,000 uint8 images) are dropped
    # from the dataset here, those still needed live on in ScaledRows.  Empty copies keep
    # the feature count and dtype (an empty slice would be a view that keeps the whole
    # raw array alive).
    empty = {name: np.empty_like(getattr(dataset, name)[:0]) for name in ("X_train", "X_test")}
    raw_free = dataclasses.replace(dataset, **empty)
    return PreparedData(raw_free, scaler, train, y_train, X_test, y_test, X_val, y_val, target_scaler)


def run_generators(seed: int) -> dict[str, np.random.Generator]:
    """The generators a training run draws from while it trains (saved in checkpoints)."""
    seeds = derived_seeds(seed)
    return {"shuffle": np.random.default_rng(seeds["shuffle"]), "dropout": np.random.default_rng(seeds["dropout"])}


def sample_shape(dataset: data.Dataset) -> tuple[int, ...]:
    """One sample's shape: ``(1, H, W)`` for a dataset of (grey) images, ``(n_features,)`` otherwise."""
    return (1, *dataset.image_shape) if dataset.image_shape is not None else (dataset.n_features,)


def build_network(
    config: TrainConfig,
    n_features: int,
    n_classes: int,
    dropout_rng: np.random.Generator | None = None,
    task: str = "classification",
    sample_shape: Sequence[int] | None = None,
) -> Network:
    """The network ``config`` describes, initialised from the seed's ``init`` stream.

    ``n_classes`` is the number of outputs, and ``task`` picks their head (:data:`TASK_HEADS`).

    ``config.layers``, when given, is the whole network (:func:`~ml_math_nn.network.build_from_spec`;
    images have ``sample_shape``, :func:`sample_shape` of the dataset, default ``(n_features,)``);
    otherwise ``config.hidden`` and the options of :func:`~ml_math_nn.network.build_mlp` make an MLP.
    Its dropout layers (if any) draw from ``dropout_rng`` (default: the seed's own stream).
    Widths too large to allocate raise ``ValueError`` naming ``--hidden``: an input error.
    """
    seeds = derived_seeds(config.seed)
    dtype = np.dtype(config.dtype)
    if config.layers:
        shape = tuple(sample_shape) if sample_shape is not None else (n_features,)
        rng = np.random.default_rng(seeds["init"])
        network = build_from_spec(
            config.layers, shape, n_classes, rng, dtype, init=config.init, l2=config.l2, loss=TASK_HEADS[task]()
        )
        network.set_rng(dropout_rng or run_generators(config.seed)["dropout"])
        return network
    try:
        network = build_mlp(
            n_features,
            config.hidden,
            n_classes,
            np.random.default_rng(seeds["init"]),
            config.activations,
            dtype,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
            init=config.init,
            l2=config.l2,
            loss=TASK_HEADS[task](),
        )
    except MemoryError:
        widths = [n_features, *config.hidden, n_classes]
        weights = sum(a * b for a, b in pairwise(widths))
        raise ValueError(
            f"--hidden {','.join(map(str, config.hidden))}: the weight matrices hold {weights:,} numbers "
            f"({weights * dtype.itemsize / 2**30:,.1f} GiB as {dtype}), more than memory can hold"
        ) from None
    network.set_rng(dropout_rng or run_generators(config.seed)["dropout"])
    return network


def check_config(config: TrainConfig, samples: int = 8, h: float = 1e-6) -> Results:
    """:func:`check_network` on the network that ``ml-math-nn train`` builds from ``config``.

    The network is built from ``config`` (architecture, initialiser, seed, L2) but in
    float64 whatever ``config.dtype``: float32 rounding of the loss (about 1e-7 of it),
    divided by :math:`2h`, would swamp the differences being measured.  The batch is the first ``samples`` rows of the
    scaled training split; dropout masks are fixed, drawn from the seed's dropout stream.
    """
    if samples < 1:
        raise ValueError(f"--samples must be >= 1, got {samples}")
    if not h > 0:
        raise ValueError(f"--step must be > 0, got {h}")
    config = config.merged({"dtype": "float64"}, "gradcheck")
    data = prepare_data(config)
    x, y = data.X_train[:samples], data.y_train[:samples]
    shape = sample_shape(data.dataset)
    network = build_network(
        config, data.dataset.n_features, data.dataset.n_classes, task=data.dataset.task, sample_shape=shape
    )
    fix_dropout_masks(network, len(x), run_generators(config.seed)["dropout"])
    return check_network(network, x, y, h)
