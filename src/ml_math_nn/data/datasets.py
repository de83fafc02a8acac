"""Datasets, train/test splits and feature scaling.

Nothing here downloads.  :func:`load_dataset` is the one entry point: scikit-learn's
digits, MNIST and Fashion-MNIST from their IDX files, or any table from a CSV or NPZ
file.  Relative paths are looked up as given, then under the data folder (``data/``
of the working directory unless ``data_dir`` says otherwise).  Every file is checked
as it is read (see :mod:`ml_math_nn.data.readers`); any problem is a :class:`DataError`
with a one-line message naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._types import Array, Labels
from .readers import (
    DataError,
    csv_columns,
    is_numpy_file,
    label_column_names,
    read_csv,
    read_csv_features,
    read_idx,
    read_npz,
    read_npz_features,
)

__all__ = [
    "DataError",
    "Dataset",
    "Standardizer",
    "detect_task",
    "diabetes",
    "digits",
    "friedman1",
    "load_dataset",
    "load_features",
    "split",
    "stratified_subset",
]

DATA_DIR = Path("data")
"""Where user data is looked for by default, relative to the working directory."""

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
"""The four files of an MNIST-style dataset, in the order train images, train labels, test images, test labels."""

TASKS = ("classification", "regression", "multilabel")
"""What a dataset's targets are: a class per sample, real values, or 0/1 labels per sample."""

MAX_DETECTED_CLASSES = 20
"""Whole-number labels are told to be classes (see :func:`detect_task`) unless there are more
distinct values than this and they are not the class indices ``0..K-1`` or ``1..K``."""

FRIEDMAN1_SAMPLES, FRIEDMAN1_NOISE = 2000, 1.0
"""Size and noise of the ``friedman1`` example dataset (:func:`friedman1`)."""


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset may already be installed, and how a user gets it otherwise."""

    classes: list[str]
    system_dirs: tuple[Path, ...]
    how_to_get: str


IDX_SOURCES = {
    "fashion-mnist": IdxSource(
        FASHION_MNIST_CLASSES,
        # Where Debian's package puts them (`dpkg -L dataset-fashion-mnist`).
        (Path("/usr/share/datasets/fashion-mnist"),),
        "install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or download them from "
        "https://github.com/zalandoresearch/fashion-mnist into data/fashion-mnist/ or --data-dir",
    ),
    "mnist": IdxSource(
        [str(d) for d in range(10)],
        (),
        "download them (e.g. from https://yann.lecun.com/exdb/mnist/) into data/mnist/ or --data-dir",
    ),
}


@dataclass
class Dataset:
    """A train/test pair of features and targets, and the names of the outputs.

    ``X_*`` hold one sample per row, as uint8 (images, scaled later) or floats.  The
    targets depend on ``task`` (:data:`TASKS`): integer labels ``0..K-1`` and the names
    of the K classes (classification); real values, (m,) for one output or (m, K) for
    several (regression); 0/1 indicators (m, K) as int8 (multilabel).  ``class_names``
    names the K outputs (classes, target columns or labels).
    ``image_shape`` is set for image data (e.g. ``(28, 28)``) so plots can show samples.
    ``extra`` records provenance, e.g. ``{"files": [...]}`` for data read from files, and
    ``task_detected``, the sentence saying how an ``auto`` task was told from the data.
    """

    name: str
    X_train: NDArray[Any]
    y_train: NDArray[Any]
    X_test: NDArray[Any]
    y_test: NDArray[Any]
    class_names: list[str]
    image_shape: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Standardizer:
    r"""Scaling :math:`x' = (x - \mu) / \sigma` with :math:`\mu, \sigma` fitted on the
    training split only.

    ``per_feature=True`` fits one :math:`(\mu_j, \sigma_j)` per column (tabular data);
    ``per_feature=False`` fits one pair over all values, which suits images: every pixel
    keeps its scale, and a pixel that is almost always blank is not blown up to
    dozens of standard deviations.  A zero :math:`\sigma` becomes 1.
    """

    mean: Array
    scale: Array

    @classmethod
    def fit(
        cls, x: NDArray[Any], dtype: np.dtype[Any] | type = np.float32, per_feature: bool = True, rows: int = 4096
    ) -> Standardizer:
        r"""Fit :math:`\mu, \sigma` (population standard deviation) in float64, ``rows`` rows at a time.

        Chunks are merged with Chan et al.'s update: for counts :math:`n_a, n_b`, means
        :math:`\mu_a, \mu_b` and sums of squared deviations :math:`M_a, M_b`,

        .. math:: \delta = \mu_b - \mu_a,\quad \mu = \mu_a + \delta\,\frac{n_b}{n},\quad
                  M = M_a + M_b + \delta^2\,\frac{n_a n_b}{n},\quad \sigma = \sqrt{M / n},

        so a large uint8 image set is never copied whole to float64.
        """
        mapped = x if isinstance(x, np.memmap) else None  # np.asarray would hide it
        x = np.asarray(x)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"cannot fit scaling on an array of shape {x.shape}: expected (samples, features)")
        axis = 0 if per_feature else None
        shape = x.shape[1:] if per_feature else ()
        count, mean, m2 = 0, np.zeros(shape), np.zeros(shape)
        buffer = np.empty((min(rows, len(x)), x.shape[1]))  # the one float64 chunk, reused
        for start in range(0, len(x), rows):
            chunk = buffer[: len(x) - start]
            chunk[...] = x[start : start + rows]
            if mapped is not None:  # the pages read from a mapped file go back to the system
                from .rows import release_pages  # (rows builds on this module)

                release_pages(mapped)
            n = len(chunk) if per_feature else chunk.size
            chunk_mean = chunk.mean(axis=axis)
            chunk -= chunk_mean
            np.square(chunk, out=chunk)  # in place: one float64 chunk is all the memory this takes
            delta = chunk_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + chunk.sum(axis=axis) + delta**2 * (count * n / total)
            count = total
        std = np.broadcast_to(np.sqrt(m2 / count), x.shape[1:]).copy()
        std[std == 0] = 1.0
        return cls(np.broadcast_to(mean, x.shape[1:]).astype(dtype), std.astype(dtype))

    def transform(self, x: NDArray[Any]) -> Array:
        """Scaled copy of ``x`` in the fitted dtype, made in one allocation (``x`` may be uint8)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} features per row, got shape {x.shape}")
        out = np.subtract(x, self.mean, dtype=self.mean.dtype)
        out /= self.scale
        return out


def split(
    X: NDArray[Any], y: NDArray[Any], test_size: float | None, seed: int, stratify: bool = True
) -> tuple[Array, Array, NDArray[Any], NDArray[Any]]:
    """Train/test split, reproducible from ``seed``, stratified by the labels unless
    ``stratify`` is False (real-valued or multi-label targets); ``test_size=None`` makes
    every sample a test sample (data for evaluating a saved model)."""
    if test_size is None:
        return X[:0], X, y[:0], y
    if not 0 < test_size < 1:
        raise ValueError(f"test size must be strictly between 0 and 1, got {test_size}")
    from sklearn.model_selection import train_test_split  # here: importing scikit-learn takes ~90 MB

    parts = train_test_split(X, y, test_size=test_size, stratify=y if stratify else None, random_state=seed)
    return parts[0], parts[1], parts[2], parts[3]


def stratified_subset(y: Labels, n: int, seed: int) -> NDArray[np.intp]:
    r"""Sorted indices of ``n`` samples drawn without replacement, classes in proportion.

    A seeded permutation ranks the samples of each class; the sample of rank :math:`r`
    in class :math:`c` (of :math:`m_c` samples) gets the key :math:`(r + \tfrac12) / m_c`
    and the ``n`` smallest keys are taken, so each class gets :math:`n\, m_c / m`
    samples up to rounding, and a rare class is not left out by chance.
    """
    if n < 1:
        raise ValueError(f"subset must be >= 1, got {n}")
    perm = np.random.default_rng(seed).permutation(len(y))
    ys = y[perm]
    order = np.argsort(ys, kind="stable")
    counts = np.bincount(ys)
    rank = np.empty(len(ys))
    rank[order] = np.arange(len(ys)) - (np.cumsum(counts) - counts)[ys[order]]
    keys = (rank + 0.5) / counts[ys]
    return np.sort(perm[np.argsort(keys, kind="stable")[:n]])


def digits(test_size: float | None = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, pixel values 0..16)."""
    from sklearn.datasets import load_digits  # here: importing scikit-learn takes ~90 MB

    bunch = load_digits()
    X_train, X_test, y_train, y_test = split(bunch.data, bunch.target.astype(np.intp), test_size, seed)
    return Dataset("digits", X_train, y_train, X_test, y_test, [str(c) for c in range(10)], (8, 8))


def diabetes(test_size: float | None = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's diabetes data (442 patients, 10 features as ``load_diabetes`` gives them):
    regression of a disease progression score one year on (25 to 346), a random ``test_size`` split."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    X_train, X_test, y_train, y_test = split(bunch.data, bunch.target.astype(np.float64), test_size, seed, False)
    return Dataset("diabetes", X_train, y_train, X_test, y_test, ["progression"], task="regression")


def friedman1(test_size: float | None = 0.2, seed: int = 0) -> Dataset:
    r"""Friedman's regression problem 1, generated by scikit-learn's ``make_friedman1`` from ``seed``.

    :data:`FRIEDMAN1_SAMPLES` (2,000) samples of 10 features uniform on [0, 1], of which
    the first five matter:
    :math:`y = 10 \sin(\pi x_1 x_2) + 20 (x_3 - 0.5)^2 + 10 x_4 + 5 x_5 + \varepsilon`,
    :math:`\varepsilon \sim N(0, 1)` (:data:`FRIEDMAN1_NOISE`); a random ``test_size`` split.
    """
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=FRIEDMAN1_SAMPLES, noise=FRIEDMAN1_NOISE, random_state=seed)
    X_train, X_test, y_train, y_test = split(X, y, test_size, seed, False)
    return Dataset("friedman1", X_train, y_train, X_test, y_test, ["y"], task="regression")


EXAMPLES = {
    "digits": ("classification", digits),
    "diabetes": ("regression", diabetes),
    "friedman1": ("regression", friedman1),
}
"""The example datasets that come with scikit-learn (nothing to download): their task and loader."""


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` raw or gzipped, also spelled ``train-images.idx3-ubyte`` as some mirrors do."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_pair(
    images_path: Path, labels_path: Path, n_classes: int
) -> tuple[NDArray[np.uint8], Labels, tuple[int, int]]:
    """Images flattened to rows (still uint8, no copy), their labels and the image shape, checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or 0 in images.shape:
        raise DataError(f"{images_path}: expected uint8 images (count, rows, cols), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels (count,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path.name}")
    if labels.max() >= n_classes:
        raise DataError(f"{labels_path}: label {labels.max()} out of range 0..{n_classes - 1}")
    return images.reshape(len(images), -1), labels.astype(np.intp), (images.shape[1], images.shape[2])


def _idx_dataset(name: str, data_dir: str | Path | None) -> Dataset:
    """MNIST-style data: the four IDX files from the first folder holding all of them."""
    source = IDX_SOURCES[name]
    base = Path(data_dir) if data_dir is not None else DATA_DIR
    folders = [base / name, base, *(source.system_dirs if data_dir is None else ())]
    looked: list[str] = []
    for folder in folders:
        found = [_idx_file(folder, stem) for stem in IDX_FILES]
        if all(p is not None for p in found):
            break
        lacking = ", ".join(f"{stem}[.gz]" for stem, p in zip(IDX_FILES, found, strict=True) if p is None)
        looked.append(f"{folder} ({'lacks ' + lacking if folder.is_dir() else 'no such folder'})")
    else:
        needs = ", ".join(IDX_FILES)
        raise DataError(
            f"{name}: IDX files not found (needs {needs}, each raw or .gz), looked in {'; '.join(looked)}; "
            f"{source.how_to_get}"
        )
    files = [p for p in found if p is not None]
    X_train, y_train, shape = _idx_pair(files[0], files[1], len(source.classes))
    X_test, y_test, test_shape = _idx_pair(files[2], files[3], len(source.classes))
    if test_shape != shape:
        raise DataError(f"{files[2]}: {test_shape} images but the training images are {shape}")
    return Dataset(
        name, X_train, y_train, X_test, y_test, list(source.classes), shape, {"files": [str(p) for p in files]}
    )


def _find_file(name: str | Path, data_dir: str | Path | None) -> Path:
    """``name`` as given, else under the data folder."""
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [path, Path(data_dir if data_dir is not None else DATA_DIR) / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if candidates[0].is_dir():
        raise DataError(f"{name}: is a directory, expected a file")
    raise DataError(f"{name}: file not found (looked for {' and '.join(str(c) for c in candidates)})")


def _class_name(value: Any) -> str:
    """``3.0`` reads as ``3``; everything else as ``str`` writes it."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _encode_labels(path: Path, raw: NDArray[Any], classes: NDArray[Any] | None = None) -> tuple[NDArray[Any], Labels]:
    """Map labels of any type onto ``0..K-1`` in sorted order of ``classes`` (default: the distinct ``raw``)."""
    if raw.dtype.kind == "f" and np.isnan(raw).any():
        raise DataError(f"{path}: label NaN at sample {int(np.argmax(np.isnan(raw)))}")
    if classes is None:
        classes, y = np.unique(raw, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{path}: a single class ({_class_name(classes[0])}); classification needs at least 2")
        return classes, y.astype(np.intp)
    if (raw.dtype.kind in "US") != (classes.dtype.kind in "US"):
        kind = "text" if raw.dtype.kind in "US" else "numbers"
        raise DataError(f"{path}: labels are {kind}, unlike those of the training data")
    y = np.searchsorted(classes, raw)
    known = classes[np.minimum(y, len(classes) - 1)] == raw
    if not known.all():
        unknown = _class_name(raw[np.argmin(known)].item())
        raise DataError(f"{path}: label {unknown} does not occur in the training data")
    return classes, y.astype(np.intp)


def detect_task(raw: NDArray[Any]) -> tuple[str, str]:
    """The task of targets ``raw`` as read from a file, and why, in words.

    Several label columns (shape (m, K)) are multi-label when every value is 0 or 1, else
    regression.  One column: text labels are classes; numbers are regression when one is
    not a whole number, or when there are more than :data:`MAX_DETECTED_CLASSES` distinct
    whole numbers that are not the class indices ``0..K-1`` or ``1..K`` (a count or a
    score, say); otherwise classes.
    """
    if raw.dtype.kind in "US":
        return "classification", "the labels are text"
    values = np.unique(raw)
    if raw.ndim == 2:
        if np.isin(values, (0, 1)).all():
            return "multilabel", f"{raw.shape[1]} label columns of 0/1 values"
        return "regression", f"{raw.shape[1]} label columns of numbers that are not all 0/1"
    fractional = values[values != np.round(values)]
    if len(fractional):
        return "regression", f"the labels are numbers, some not whole, e.g. {fractional[0]:g}"
    k = len(values)
    indices = k > 0 and values[0] in (0, 1) and values[-1] == values[0] + k - 1
    if k > MAX_DETECTED_CLASSES and not indices:
        return "regression", (
            f"the labels are {k} distinct whole numbers from {values[0]:g} to {values[-1]:g}, not class indices"
        )
    return "classification", f"the labels are {k} distinct whole numbers"


def _targets(
    path: Path, raw: NDArray[Any], task: str, classes: NDArray[Any] | None = None
) -> tuple[NDArray[Any] | None, NDArray[Any]]:
    """The targets of ``task`` from the labels ``raw`` as read (for classification, the
    classes too, see :func:`_encode_labels`); a :class:`DataError` naming the file when
    they do not fit the task."""
    if task == "classification":
        if raw.ndim == 2:
            raise DataError(
                f"{path}: {raw.shape[1]} label columns, but classification takes one; several columns are "
                "a multilabel (0/1 values) or regression task (--task)"
            )
        return _encode_labels(path, raw, classes)
    if raw.dtype.kind in "US":
        text = raw.flat[int(np.argmax([not _is_number_text(v) for v in raw.flat]))]
        raise DataError(f"{path}: --task {task} needs numeric labels, got text ({str(text)!r})")
    y = np.asarray(raw, dtype=np.float64)
    if not np.isfinite(y).all():
        raise DataError(f"{path}: --task {task} needs finite labels, got {y[~np.isfinite(y)][0]}")
    if task == "multilabel":
        y = y.reshape(len(y), -1)
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise DataError(f"{path}: --task multilabel needs 0/1 labels, got {y[bad][0]:g}")
        return None, y.astype(np.int8)
    return None, y


def _is_number_text(value: Any) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _features(path: Path, X: NDArray[Any]) -> tuple[NDArray[Any], tuple[int, int] | None]:
    """Rows of uint8 or float32 features; (m, h, w) images are flattened and keep their shape."""
    image_shape = (int(X.shape[1]), int(X.shape[2])) if X.ndim == 3 else None
    X = X.reshape(len(X), -1)
    if X.dtype not in (np.uint8, np.float32):
        with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
            X = X.astype(np.float32)
        if not np.isfinite(X).all():
            raise DataError(f"{path}: values too large for float32")
    return X, image_shape


def _table_dataset(
    kind: str,
    name: str,
    data_dir: str | Path | None,
    test_file: str | Path | None,
    test_size: float | None,
    seed: int,
    label_column: str | int | None,
    header: bool | None,
    task: str = "auto",
) -> Dataset:
    """A CSV or NPZ table, with a test split (stratified for classes) or a separate test file
    of the same format; ``task`` ``"auto"`` is told from the training file's labels
    (:func:`detect_task`)."""

    def read(path: Path) -> tuple[NDArray[Any], tuple[int, int] | None, NDArray[Any]]:
        if kind == "csv":
            X, raw = read_csv(path, label_column, header)
        elif label_column is not None or header is not None:
            raise DataError(f"{path}: label column and header options apply to CSV files only")
        else:
            X, raw = read_npz(path)
        return *_features(path, X), raw

    path = _find_file(name, data_dir)
    X, image_shape, raw = read(path)
    extra: dict[str, Any] = {}
    if task == "auto":
        task, why = detect_task(raw)
        extra["task_detected"] = f"task: {task} ({why}; --task says otherwise)"
    classes, y = _targets(path, raw, task)
    files = [path]
    if test_file is None:
        try:
            X_train, X_test, y_train, y_test = split(X, y, test_size, seed, stratify=task == "classification")
        except ValueError as e:
            how = "a stratified" if task == "classification" else "a"
            raise DataError(f"{path}: cannot split off {how} test set of {test_size:g}: {e}") from None
    else:
        test_path = _find_file(test_file, data_dir)
        X_test, test_shape, raw_test = read(test_path)
        if X_test.shape[1] != X.shape[1] or test_shape != image_shape:
            raise DataError(f"{test_path}: {X_test.shape[1]} features per sample, the training file has {X.shape[1]}")
        if raw_test.shape[1:] != raw.shape[1:]:
            shapes = f"{raw_test.shape[1:]}, the training file's are {raw.shape[1:]}"
            raise DataError(f"{test_path}: labels of shape {shapes}")
        _, y_test = _targets(test_path, raw_test, task, classes)
        X_train, y_train = X, y
        files.append(test_path)
    if classes is not None:
        names = [_class_name(c.item()) for c in classes]
    elif kind == "csv":
        names = label_column_names(path, label_column, header)
    else:
        names = ["y"] if raw.ndim == 1 else [f"y{k}" for k in range(raw.shape[1])]
    extra["files"] = [str(p) for p in files]
    return Dataset(path.stem, X_train, y_train, X_test, y_test, names, image_shape, extra, task)


def load_dataset(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    test_file: str | Path | None = None,
    test_size: float | None = 0.2,
    seed: int = 0,
    label_column: str | int | None = None,
    header: bool | None = None,
    subset: int | None = None,
    task: str = "auto",
) -> Dataset:
    """The dataset named by ``spec``.

    Parameters
    ----------
    spec : str
        ``digits``; ``fashion-mnist`` or ``mnist`` (the four IDX files, raw or gzipped,
        from ``data_dir`` or ``data/<name>/`` or ``data/``, and for Fashion-MNIST also
        where Debian's ``dataset-fashion-mnist`` installs them), with their official
        test sets; ``diabetes`` and ``friedman1`` (regression, see :func:`diabetes` and
        :func:`friedman1`); ``csv:PATH`` or ``npz:PATH`` (arrays ``X`` and ``y``) for any table.
    data_dir : str or Path, optional
        Folder to read IDX files from, and to look in for CSV/NPZ paths not found as given.
    test_file : str or Path, optional
        A CSV/NPZ test set in the same format; otherwise a stratified ``test_size``
        split of the file (IDX datasets always use their official test set).
        ``test_size=None`` makes all of a CSV/NPZ file or of digits the test set.
    seed : int
        Seed of the test split and of the subset.
    label_column, header
        For CSV files, see :func:`ml_math_nn.data.readers.read_csv`.
    subset : int, optional
        Keep only this many training samples (a seeded draw, stratified for classes, see
        :func:`stratified_subset`); the test set is kept whole.
    task : str
        ``classification``, ``regression``, ``multilabel`` (see :class:`Dataset`), or
        ``auto``: a file's is told from its labels (:func:`detect_task`, the sentence in
        ``extra["task_detected"]``), a named dataset's is its own.

    Class labels of any type become ``0..K-1`` in sorted order; ``class_names`` keeps the originals.

    Raises
    ------
    DataError
        Unknown spec, missing or malformed file (the message names it).
    """
    if task != "auto" and task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose auto, {', '.join(TASKS)}")
    kind, sep, arg = spec.partition(":")
    if kind == "npy" and arg:
        from .rows import npy_dataset  # (rows builds on this module)

        dataset = npy_dataset(arg)
    elif kind in ("csv", "npz") and arg:
        dataset = _table_dataset(kind, arg, data_dir, test_file, test_size, seed, label_column, header, task)
    elif sep or kind not in (*EXAMPLES, *IDX_SOURCES):
        raise DataError(
            f"unknown dataset {spec!r}; choose {', '.join([*EXAMPLES, *IDX_SOURCES])}, csv:PATH or npz:PATH"
        )
    elif test_file is not None or label_column is not None or header is not None:
        raise DataError(f"{spec}: test file, label column and header options apply to csv:/npz: datasets only")
    else:
        own = EXAMPLES[kind][0] if kind in EXAMPLES else "classification"
        if task not in ("auto", own):
            raise DataError(f"{spec}: a {own} dataset, so --task {task} does not apply")
        dataset = EXAMPLES[kind][1](test_size, seed) if kind in EXAMPLES else _idx_dataset(kind, data_dir)
    if subset is not None and subset < len(dataset.y_train):
        if dataset.task == "classification":
            keep = stratified_subset(dataset.y_train, subset, seed)
        else:  # nothing to stratify by: a seeded draw of rows
            keep = np.sort(np.random.default_rng(seed).permutation(len(dataset.y_train))[:subset])
        dataset.X_train, dataset.y_train = dataset.X_train[keep], dataset.y_train[keep]
    return dataset


def load_features(
    path: str | Path,
    header: bool | None = None,
    n_features: int | None = None,
    label_column: str | int | None = None,
) -> Array:
    """Feature rows without labels, to predict on: a CSV file (every column a feature) or
    an NPZ archive with an array ``X`` (images are flattened).  Returned as float32.

    A labelled CSV file (the format a model is trained on) is read too: when it has exactly
    one column more than the model's ``n_features`` and that column is the label column,
    it is dropped.  The label column is ``label_column`` (by name or index, as in
    :func:`read_csv_table`; the training config's) or, when that is ``None``, a header
    column named ``label``; otherwise every column is a feature.

    Raises
    ------
    DataError
        Missing, empty or malformed file; non-numeric or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'is a directory, expected a file' if path.is_dir() else 'no such file'}")
    if is_numpy_file(path):
        X = read_npz_features(path)
    elif path.suffix.lower() == ".npz":
        raise DataError(f"{path}: not a readable NPZ archive")
    else:
        label = _extra_label_column(path, header, n_features, label_column) if n_features is not None else None
        X = read_csv_features(path, header) if label is None else read_csv(path, label, header)[0]
    return _features(path, X)[0].astype(np.float32, copy=False)


def _extra_label_column(
    path: Path, header: bool | None, n_features: int, label_column: str | int | None
) -> str | int | None:
    """The label column of a CSV file that has one column more than ``n_features`` (see
    :func:`load_features`), or ``None`` when the file is not so labelled.  Several label
    columns (``"a,b,c"``, a multi-label or multi-output model's) are all given back when the
    file has that many columns more and they are all header names."""
    names, n_cols = csv_columns(path, header)
    if isinstance(label_column, str) and "," in label_column and (names is None or label_column not in names):
        parts = [part.strip() for part in label_column.split(",")]
        fits = n_cols == n_features + len(parts) and names is not None and all(p in names for p in parts)
        return label_column if fits else None
    if n_cols != n_features + 1:
        return None
    if label_column is None:
        return "label" if names is not None and "label" in names else None
    if isinstance(label_column, str) and names is not None and label_column in names:
        return label_column
    try:  # "0" or "-1" from a command line is an index unless the header has such a name
        index = int(label_column)
    except ValueError:
        return None
    return index if -n_cols <= index < n_cols else None
