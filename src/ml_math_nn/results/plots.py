"""Figures and tables of a training run, written as PNG and CSV files.

matplotlib is used through its object-oriented API with the non-interactive Agg
canvas, so plotting never needs a display and never touches global pyplot state.

Every figure has a fixed size in inches, listed in :data:`FIGURE_SIZES`, and is saved at
:data:`DPI` (150, sharp on high-resolution screens; the PNG records it) without tight
cropping, so each PNG has a known pixel size; only ``misclassified.png`` is shorter when
it shows fewer rows of mistakes.  :func:`write_run_figures` writes the whole set for a run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .._types import Array, Labels
from ..data.datasets import Dataset
from ..network import Network
from ..runs.persistence import Model, atomic_write, write_text
from ..train import EpochRecord

SET_STYLES = {"train": "-", "val": "--", "test": ":"}
DPI = 150
FIGURE_SIZES: dict[str, tuple[float, float]] = {
    "loss.png": (6.4, 4.0),
    "accuracy.png": (6.4, 4.0),
    "learning_rate.png": (6.4, 2.4),
    "confusion_matrix.png": (12.0, 5.4),
    "misclassified.png": (12.0, 7.0),
    "first_layer_weights.png": (12.0, 6.4),
    "conv_filters.png": (12.0, 6.4),
    "feature_maps.png": (12.0, 6.4),
    "samples.png": (9.0, 8.0),
}
"""Size in inches of each figure of a run; times :data:`DPI` gives its size in pixels
(for ``misclassified.png``, the size with all :data:`GRID_ROWS` rows of images)."""

GRID_COLUMNS = 8
MAX_GRID_IMAGES = 32
GRID_ROWS = MAX_GRID_IMAGES // GRID_COLUMNS
SAMPLES_PER_CLASS = 10
MAX_SAMPLE_CLASSES = 10
MAX_ANNOTATED_CLASSES = 20  # beyond this, numbers in the confusion-matrix cells are unreadable
IMAGE_CMAP = "gray_r"  # ink dark on white, as on paper
BORDER_COLOR = "#8c8c8c"  # between the images of a grid: neither the background (white) nor ink (black)


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """``fig`` rendered as PNG bytes (at ``dpi``, uncropped: pixel size = inches x ``dpi``;
    the PNG's ``pHYs`` chunk records ``dpi``)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> None:
    """Render ``fig`` to PNG and write it atomically to ``path``."""
    png = figure_png(fig, dpi)
    atomic_write(path, lambda f: f.write(png))


SPLIT_LEGENDS = {
    "train": "train",
    "val": "validation (guided the choices)",
    "test": "test (held out, only measured)",
}
"""What each split's curve is, in a single run's legend: the validation split is the one
early stopping, a plateau schedule or a person tuning options may look at; the test split
is never looked at by the run."""
MARKED_EPOCHS = 30
"""Curves of at most this many epochs mark each epoch's point."""


def _plot_curves(
    ax: Axes, history: Sequence[EpochRecord], metric: str, label: str = "", color: Any = None
) -> list[str]:
    """Draw ``<split>_<metric>`` against the epoch for each split present, one line style per
    split; returns the splits drawn."""
    epochs = [r["epoch"] for r in history]
    drawn = []
    marker = "o" if len(history) <= MARKED_EPOCHS else None
    for split, style in SET_STYLES.items():
        key = f"{split}_{metric}"
        if history and key in history[0]:
            name = f"{label} {split}" if label else SPLIT_LEGENDS[split]
            ax.plot(epochs, [r[key] for r in history], style, marker=marker, markersize=3, label=name, color=color)
            drawn.append(split)
    return drawn


def _epoch_ticks(ax: Axes, last: float) -> None:
    """Integer epoch ticks that always include the first and the last epoch."""
    ticks = [t for t in MaxNLocator(nbins=8, integer=True).tick_values(1, last) if 1 <= t <= last]
    if ticks and last - ticks[-1] < 0.08 * last:  # too close to the last one to keep both legible
        ticks.pop()
    ax.set_xticks(sorted({1.0, *ticks, float(last)}))
    ax.set_xlim(0.5, last + 0.5)


def _finish_curves(fig: Figure, ax: Axes, title: str, ylabel: str, last: float | None = None) -> Figure:
    ax.set_title(title)
    ax.set_xlabel("epoch (passes over the training set)")
    if last:
        _epoch_ticks(ax, last)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def kept_epoch(history: Sequence[EpochRecord], best_epoch: int | None = None) -> int | None:
    """The epoch whose weights the run kept: ``best_epoch`` (early stopping's) if given, else the last."""
    if not history:
        return None
    return int(best_epoch) if best_epoch else int(history[-1]["epoch"])


def curves_figure(
    history: Sequence[EpochRecord], metric: str, title: str, ylabel: str, best_epoch: int | None = None
) -> Figure:
    """One line per data split (train, val, test) of ``<split>_<metric>`` against the epoch,
    with the epoch whose weights were kept (``best_epoch``, else the last) marked."""
    fig = Figure(figsize=FIGURE_SIZES["loss.png"], layout="constrained")
    ax = fig.add_subplot()
    drawn = _plot_curves(ax, history, metric)
    kept = kept_epoch(history, best_epoch)
    if kept is not None and drawn:
        guide = "val" if "val" in drawn else drawn[-1]
        record = next((r for r in history if int(r["epoch"]) == kept), history[-1])
        ax.axvline(kept, color="0.4", linewidth=0.8, linestyle="-.", zorder=0)
        ax.plot(
            [kept],
            [record[f"{guide}_{metric}"]],
            "*",
            color="black",
            markersize=11,
            label=f"kept: epoch {kept} ({record[f'{guide}_{metric}']:.4f})",
            zorder=5,
        )
    return _finish_curves(fig, ax, title, ylabel, float(history[-1]["epoch"]) if history else None)


def learning_rate_figure(history: Sequence[EpochRecord]) -> Figure:
    """The learning rate each epoch's updates used (the ``lr`` of each record), against the epoch."""
    fig = Figure(figsize=FIGURE_SIZES["learning_rate.png"], layout="constrained")
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history if "lr" in r]
    rates = [r["lr"] for r in history if "lr" in r]
    marker = "o" if len(epochs) <= MARKED_EPOCHS else None
    ax.plot(epochs, rates, "-", marker=marker, markersize=3, color="C2")
    if rates and min(rates) == max(rates):
        ax.set_title(f"Learning rate per epoch: constant {rates[0]:g}")
    else:
        ax.set_title("Learning rate per epoch (the schedule)")
    ax.set_ylabel("learning rate")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_xlabel("epoch")
    if epochs:
        _epoch_ticks(ax, epochs[-1])
    return fig


def comparison_curves_figure(
    histories: Mapping[str, Sequence[EpochRecord]], metric: str, title: str, ylabel: str
) -> Figure:
    """The curves of several runs overlaid: one colour per run, one line style per split."""
    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (label, history) in enumerate(histories.items()):
        _plot_curves(ax, history, metric, label, f"C{i % 10}")
    return _finish_curves(fig, ax, title, ylabel)


LOSS_LABELS = ("Cross-entropy loss per epoch", "mean cross-entropy (nats)")
ACC_LABELS = ("Accuracy per epoch", "accuracy (fraction correct)")


def plot_history(history: Sequence[EpochRecord], out_dir: str | Path, best_epoch: int | None = None) -> list[Path]:
    """Write ``loss.png``, ``accuracy.png`` and (when the records hold the rate)
    ``learning_rate.png`` into ``out_dir``; returns their paths.  ``best_epoch`` is the
    epoch whose weights were kept (default: the last)."""
    out_dir = Path(out_dir)
    figures = {
        "loss.png": curves_figure(history, "loss", *LOSS_LABELS, best_epoch=best_epoch),
        "accuracy.png": curves_figure(history, "acc", *ACC_LABELS, best_epoch=best_epoch),
    }
    if history and "lr" in history[0]:
        figures["learning_rate.png"] = learning_rate_figure(history)
    for name, fig in figures.items():
        save_figure(fig, out_dir / name)
    return [out_dir / name for name in figures]


# -- classification tables --------------------------------------------------------
def confusion_counts(y_true: Labels, y_pred: Labels, n_classes: int) -> NDArray[np.int64]:
    r"""Confusion matrix :math:`C_{ij} = \#\{n : y_n = i,\ \hat y_n = j\}` (rows true, columns predicted)."""
    labels = np.arange(n_classes)
    return np.asarray(confusion_matrix(y_true, y_pred, labels=labels), dtype=np.int64)


def per_class_rows(y_true: Labels, y_pred: Labels, class_names: Sequence[str]) -> list[dict[str, Any]]:
    r"""Precision, recall, F1 and support of each class, then their macro and weighted averages.

    For class :math:`k`, with :math:`TP_k, FP_k, FN_k` counted on the predictions:

    .. math::
        P_k = \frac{TP_k}{TP_k + FP_k},\quad R_k = \frac{TP_k}{TP_k + FN_k},\quad
        F_{1,k} = \frac{2 P_k R_k}{P_k + R_k}

    computed by :func:`sklearn.metrics.precision_recall_fscore_support`; a ratio with a zero
    denominator (a class never predicted, or absent from ``y_true``) is reported as 0.
    """
    labels = np.arange(len(class_names))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    rows = [
        {"class": name, "precision": p[k], "recall": r[k], "f1": f[k], "support": int(s[k])}
        for k, name in enumerate(class_names)
    ]
    for average in ("macro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average, zero_division=0)
        rows.append({"class": f"{average} avg", "precision": pa, "recall": ra, "f1": fa, "support": int(s.sum())})
    return rows


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row] for row in rows)
    return buf.getvalue()


def per_class_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`per_class_rows` as CSV with the columns ``class, precision, recall, f1, support``."""
    header = ["class", "precision", "recall", "f1", "support"]
    return _csv_text(header, [[row[k] for k in header] for row in rows])


def confusion_csv(counts: NDArray[np.int64], class_names: Sequence[str]) -> str:
    """The confusion matrix as CSV: one row per true class, one column per predicted class."""
    rows = [[name, *map(int, counts[k])] for k, name in enumerate(class_names)]
    return _csv_text(["true \\ predicted", *class_names], rows)


# -- figures of the predictions ------------------------------------------------------
def _matrix_panel(
    fig: Figure, ax: Axes, values: NDArray[Any], class_names: Sequence[str], fmt: str, title: str
) -> None:
    # The errors set the colour scale: with the diagonal in it (the correct answers, ten
    # times larger) the mistakes that matter would all be pale.  The diagonal is grey.
    errors = values.astype(np.float64)
    np.fill_diagonal(errors, np.nan)
    off = errors[~np.isnan(errors)]
    vmax = max(float(off.max()) if off.size else 0.0, 0.01 if fmt == ".2f" else 1.0)
    cmap = colormaps["Reds"].with_extremes(bad="#e4e4e4")
    image = ax.imshow(errors, cmap=cmap, vmin=0, vmax=vmax)
    what = "fraction of the true class" if fmt == ".2f" else "images"
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"{what} (off the diagonal)")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, list(class_names), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if len(class_names) <= MAX_ANNOTATED_CLASSES:
        # Dark text on light cells, white text on dark ones; no text in an empty cell.
        threshold = vmax / 2
        for (i, j), v in np.ndenumerate(values):
            if v == 0 and i != j:
                continue
            color = "white" if i != j and v > threshold else "black"
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7, color=color)


def confusion_figure(counts: NDArray[np.int64], class_names: Sequence[str]) -> Figure:
    r"""Counts :math:`C_{ij}` beside the row-normalised :math:`C_{ij} / \sum_j C_{ij}` (recall on the diagonal).

    The colour of a cell off the diagonal (a mistake) is scaled to the largest mistake, and
    the diagonal is grey, so the confusions that matter stand out; empty cells have no number.
    """
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig = Figure(figsize=FIGURE_SIZES["confusion_matrix.png"], layout="constrained")
    # Constrained layout's default 3-point margin lets the x label's descenders fall off the
    # bottom edge next to the colour bars (with short class names); 0.1 inch keeps it inside.
    fig.get_layout_engine().set(h_pad=0.1, w_pad=0.1)  # type: ignore[call-arg, union-attr]
    left, right = fig.subplots(1, 2)
    _matrix_panel(fig, left, counts, class_names, "d", f"Counts ({int(counts.sum()):,} test images)")
    _matrix_panel(fig, right, normalised, class_names, ".2f", "Normalised by true class (rows sum to 1)")
    fig.suptitle("Confusion matrix on the test set")
    return fig


def _fit_rows(fig: Figure, rows: int) -> dict[str, float]:
    """Cut ``fig`` from its full height, which holds :data:`GRID_ROWS` rows of images, to ``rows``
    rows; returns the grid's vertical margins and row spacing (for ``gridspec_kw``).

    The row height and the margins keep their size in inches, so images keep one size
    whatever their number.  The margins are fixed (room for a suptitle and two-line titles)
    rather than solved by constrained layout, which costs seconds on 32 axes.
    """
    width, full = fig.get_size_inches()
    # The bottom margin holds the last row's x labels (the predicted class of a mistake).
    top, bottom, hspace = 0.1 * full, 0.045 * full, 0.5  # inches, inches, a fraction of the row height
    row = (full - top - bottom) / (GRID_ROWS + (GRID_ROWS - 1) * hspace)
    height = top + bottom + row * (rows + (rows - 1) * hspace)
    fig.set_size_inches(width, height)
    return {"bottom": bottom / height, "top": 1 - top / height, "hspace": hspace}


def _image_grid(fig: Figure, n: int, rows: int, right: float = 0.99) -> list[Axes]:
    """The first ``n`` cells of ``rows`` rows of :data:`GRID_COLUMNS` framed image axes, without
    ticks, in ``fig`` cut to the height of those rows (see :func:`_fit_rows`)."""
    spacing = {"left": 0.01, "right": right, "wspace": 0.1, **_fit_rows(fig, rows)}
    axes = fig.subplots(rows, GRID_COLUMNS, squeeze=False, gridspec_kw=spacing).ravel()
    for ax in axes[:n]:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    return list(axes[:n])


def misclassified_figure(
    images: Array,
    y_true: Labels,
    y_pred: Labels,
    proba: Array,
    class_names: Sequence[str],
    image_shape: tuple[int, int],
) -> Figure:
    r"""The most confident mistakes first: each image titled with its true class and the
    probability the network gave it, and labelled below with the predicted class and its
    probability :math:`\max_k \operatorname{softmax}(z)_k` (in red: the mistake).

    ``proba`` holds each image's class probabilities, shape ``(n, n_classes)``.

    The figure has as many rows as the mistakes shown need (up to :data:`MAX_GRID_IMAGES`
    images, :data:`GRID_COLUMNS` to a row) and is as tall as those rows; with no mistake
    it is one row tall and says so.
    """
    wrong = np.flatnonzero(y_true != y_pred)
    confidence = proba[np.arange(len(y_pred)), y_pred]
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:MAX_GRID_IMAGES]
    fig = Figure(figsize=FIGURE_SIZES["misclassified.png"])
    if len(shown) == 0:
        fig.suptitle(f"Misclassified test images: none of {len(y_true):,} tested")
        _fit_rows(fig, 1)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "every test image is classified correctly", ha="center", va="center", fontsize=14)
        return fig
    fig.suptitle(
        f"Misclassified test images: {len(shown)} of {len(wrong):,} shown (of {len(y_true):,} tested), "
        "most confident first"
    )
    vmin, vmax = float(images.min()), float(images.max())
    rows = -(-len(shown) // GRID_COLUMNS)
    for ax, n in zip(_image_grid(fig, len(shown), rows), shown, strict=True):
        ax.imshow(images[n].reshape(image_shape), cmap=IMAGE_CMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"true: {class_names[y_true[n]]} ({proba[n, y_true[n]]:.0%})", fontsize=8)
        ax.set_xlabel(f"pred: {class_names[y_pred[n]]} ({confidence[n]:.0%})", fontsize=8, color="firebrick")
    return fig


def first_layer_figure(weights: Array, image_shape: tuple[int, int], names: Sequence[str] | None = None) -> Figure:
    r"""Each column :math:`W_{:,j}` of the first layer's weights (``n_in`` = pixels) drawn as an image.

    ``weights`` is :math:`(n_{in}, n_{out})`, a dense layer's :math:`W`: the transpose of
    :meth:`~ml_math_nn.layers.Layer.unit_weights`, flattened per unit.

    A unit's pre-activation is :math:`z_j = \sum_i x_i W_{ij} + b_j`, so red pixels raise it and
    blue pixels lower it.  Hidden units have no order of their own, so they are shown strongest
    first (largest :math:`\lVert W_{:,j} \rVert_2`, which is in each title); each on its own
    symmetric scale :math:`\pm \max_i |W_{ij}|`, so that a weak unit's pattern is visible too
    rather than washed out by a few strong ones.  Named units (the classes, when there is no
    hidden layer) keep their order.
    """
    n_in, n_out = weights.shape
    if n_in != image_shape[0] * image_shape[1]:
        raise ValueError(f"first layer has {n_in} inputs, which is not an image of shape {image_shape}")
    shown = min(n_out, MAX_GRID_IMAGES)
    norms = np.linalg.norm(weights, axis=0)
    if names is not None:
        labels, order = list(names), np.arange(n_out)
    else:
        labels, order = [f"unit {j}" for j in range(n_out)], np.argsort(-norms, kind="stable")
    fig = Figure(figsize=FIGURE_SIZES["first_layer_weights.png"])
    which = f"{shown} of {n_out} units" if names is not None else f"the {shown} strongest of {n_out} units (norm |w|)"
    fig.suptitle(f"First-layer weights: {which}, each on its own scale; red raises, blue lowers the unit")
    for ax, j in zip(_image_grid(fig, shown, GRID_ROWS), order[:shown], strict=True):
        limit = max(float(np.abs(weights[:, j]).max()), 1e-12)
        ax.imshow(weights[:, j].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"{labels[j]}  |w| {norms[j]:.2f}", fontsize=8)
    return fig


def conv_filters_figure(weights: Array) -> Figure:
    r"""The first convolution's filters :math:`W_{o,c,:,:}` (layout ``(out, in, kh, kw)``) as images.

    Each output channel :math:`o` computes :math:`\sum_{c,p,q} W_{o,c,p,q} X_{c, i+p, j+q}`
    at every position, so red entries of a filter raise its map where the image is bright
    there and blue ones lower it.  Shown strongest first (largest :math:`\lVert W_o \rVert_2`),
    each on its own symmetric scale; for several input channels, channel 0.
    """
    n_out, n_in = weights.shape[:2]
    shown = min(n_out, MAX_GRID_IMAGES)
    norms = np.linalg.norm(weights.reshape(n_out, -1), axis=1)
    order = np.argsort(-norms, kind="stable")
    fig = Figure(figsize=FIGURE_SIZES["conv_filters.png"])
    channel = "" if n_in == 1 else " (input channel 0)"
    kh, kw = weights.shape[2:]
    fig.suptitle(
        f"First convolution's {kh}x{kw} filters{channel}: the strongest {shown} of {n_out}, each on its own scale\n"
        "(red raises, blue lowers the channel's map; |w| is the filter's norm)"
    )
    for ax, o in zip(_image_grid(fig, shown, GRID_ROWS), order[:shown], strict=True):
        limit = max(float(np.abs(weights[o, 0]).max()), 1e-12)
        ax.imshow(weights[o, 0], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"filter {o}  |w| {norms[o]:.2f}", fontsize=8)
    return fig


def feature_maps_figure(network: Network, x: Array, image: Array, label: str) -> Figure:
    """One test image and its feature maps after the first convolution (and the layer after it,
    its activation, when that keeps the shape): what each filter of :func:`conv_filters_figure` finds.

    ``x`` is the image as the network takes it (one scaled row), ``image`` the same unscaled,
    ``label`` its class.  Maps share one colour scale, so weak and strong channels compare.
    """
    out = x
    maps: Array | None = None
    for i, layer in enumerate(network.layers):
        out = layer.forward(out, training=False)
        if maps is not None:
            maps = out if out.shape == maps.shape else maps
            break
        weights = layer.unit_weights()
        if weights is not None and weights.ndim == 4:
            maps = out
            if i + 1 == len(network.layers):
                break
    if maps is None:
        raise ValueError("the network has no convolution")
    maps = np.asarray(maps[0])
    shown = min(len(maps), MAX_GRID_IMAGES - 1)
    fig = Figure(figsize=FIGURE_SIZES["feature_maps.png"])
    fig.suptitle(f"A test image ({label}) and {shown} of its {len(maps)} feature maps after the first convolution")
    axes = _image_grid(fig, shown + 1, GRID_ROWS)
    axes[0].imshow(image, cmap=IMAGE_CMAP, interpolation="nearest")
    axes[0].set_title("input", fontsize=8)
    top = max(float(np.abs(maps[:shown]).max()), 1e-12)
    for k, ax in enumerate(axes[1:]):
        ax.imshow(maps[k], cmap="viridis", vmin=min(0.0, float(maps[:shown].min())), vmax=top, interpolation="nearest")
        ax.set_title(f"channel {k}", fontsize=8)
    return fig


def samples_figure(
    images: Array, labels: Labels, class_names: Sequence[str], image_shape: tuple[int, int], split: str = "test"
) -> Figure:
    """The first :data:`SAMPLES_PER_CLASS` images of each class (up to :data:`MAX_SAMPLE_CLASSES`
    classes), one row per class, labelled with the class name; ``split`` names where the
    images come from in the title.

    The images are tiled into one array drawn by a single ``imshow`` (a hundred axes would
    take seconds to lay out); the gaps between them are NaN, drawn as a grey border
    (:data:`BORDER_COLOR`) so an image whose edge is background still shows its extent.
    """
    h, w = image_shape
    g = max(1, round(max(h, w) / 14))  # border width in image pixels: 2 for 28 x 28
    classes = range(min(len(class_names), MAX_SAMPLE_CLASSES))
    mosaic = np.full((len(classes) * (h + g) + g, SAMPLES_PER_CLASS * (w + g) + g), np.nan)
    for k in classes:
        for i, n in enumerate(np.flatnonzero(labels == k)[:SAMPLES_PER_CLASS]):
            top, left = g + k * (h + g), g + i * (w + g)
            mosaic[top : top + h, left : left + w] = images[n].reshape(image_shape)
    fig = Figure(figsize=FIGURE_SIZES["samples.png"], layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps[IMAGE_CMAP].with_extremes(bad=BORDER_COLOR)
    ax.imshow(mosaic, cmap=cmap, vmin=float(images.min()), vmax=float(images.max()), interpolation="nearest")
    ax.set_yticks([g + k * (h + g) + (h - 1) / 2 for k in classes], [class_names[k] for k in classes])
    ax.set_xticks([])
    ax.tick_params(left=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"Sample {split} images, first {SAMPLES_PER_CLASS} of each class")
    return fig


def write_run_figures(
    out_dir: str | Path,
    model: Model,
    dataset: Dataset,
    X_test_scaled: Array,
    y_test: Labels,
    history: Sequence[EpochRecord],
    best_epoch: int | None = None,
) -> list[Path]:
    r"""Write every figure and table of a run into ``out_dir``; returns the paths written.

    Parameters
    ----------
    out_dir : path
        The run directory (must exist).
    model : Model
        The trained network, its class names and its input scaler.
    dataset : Dataset
        Supplies ``image_shape`` (the images of ``samples.png`` are the unscaled test images).
    X_test_scaled, y_test : arrays
        The test set as the network sees it (already scaled) and its labels.  Images are
        drawn after undoing the scaling, :math:`x = x' \sigma + \mu`.
    history : sequence of EpochRecord
        The per-epoch records (keys ``train_loss``, ``val_loss``, ``test_acc``, ``lr``, ...).
    best_epoch : int, optional
        The epoch whose weights the model has (early stopping's best); default the last.

    Writes ``loss.png``, ``accuracy.png``, ``confusion_matrix.png``, ``confusion_matrix.csv``
    and ``per_class_metrics.csv``; for image data (``dataset.image_shape`` set) also
    ``samples.png``, ``misclassified.png`` and ``first_layer_weights.png``.
    """
    out = Path(out_dir)
    if len(X_test_scaled) != len(y_test) or len(y_test) == 0:
        raise ValueError(f"test set: {len(X_test_scaled)} rows and {len(y_test)} labels (need the same, > 0)")
    written = plot_history(history, out, best_epoch)
    names = model.class_names
    proba = model.network.predict_proba(X_test_scaled)
    y_pred = proba.argmax(axis=1)
    counts = confusion_counts(y_test, y_pred, len(names))
    tables = {
        "confusion_matrix.csv": confusion_csv(counts, names),
        "per_class_metrics.csv": per_class_csv(per_class_rows(y_test, y_pred, names)),
    }
    figures = {"confusion_matrix.png": confusion_figure(counts, names)}
    shape = dataset.image_shape
    if shape is not None:
        raw = X_test_scaled if model.scaler is None else X_test_scaled * model.scaler.scale + model.scaler.mean
        # The first layer with weights (a dense layer's unit j weighs the pixels by W[:, j]).
        first, weights = next((lay, w) for lay in model.network.layers if (w := lay.unit_weights()) is not None)
        # With no hidden layer the first layer's units are the classes themselves.
        units = names if first is model.network.layers[-1] else None
        # The test images, unscaled: the run keeps no raw copy of the training set.
        figures["samples.png"] = samples_figure(raw, y_test, names, shape)
        figures["misclassified.png"] = misclassified_figure(raw, y_test, y_pred, proba, names, shape)
        if weights.ndim == 4:  # a convolution's filters (out, in, kh, kw): them, and what they make of an image
            figures["conv_filters.png"] = conv_filters_figure(weights)
            first_test = (X_test_scaled[:1], raw[0].reshape(shape), names[int(y_test[0])])
            figures["feature_maps.png"] = feature_maps_figure(model.network, *first_test)
        else:
            figures["first_layer_weights.png"] = first_layer_figure(weights.reshape(len(weights), -1).T, shape, units)
    for name, text in tables.items():
        write_text(out / name, text)
        written.append(out / name)
    for name, fig in figures.items():
        save_figure(fig, out / name)
        written.append(out / name)
    return written


# -- regression and multi-label runs (issue 15) -------------------------------------
TASK_FIGURE_SIZES: dict[str, tuple[float, float]] = {
    "r2.png": FIGURE_SIZES["loss.png"],
    "predicted_vs_true.png": (6.4, 6.0),
    "residuals.png": (12.0, 4.4),
}
"""Like :data:`FIGURE_SIZES`, the figures only a regression run has."""
MSE_LABELS = ("Squared-error loss per epoch", "mean squared error (standardised targets)")
R2_LABELS = ("R² per epoch", "coefficient of determination R²")
BCE_LABELS = ("Binary cross-entropy loss per epoch", "mean binary cross-entropy (nats)")
SUBSET_LABELS = ("Subset accuracy per epoch", "subset accuracy (every label right)")
MAX_OUTPUT_COLOURS = 10  # outputs beyond this share the last colour


def _output_colours(names: Sequence[str]) -> list[str]:
    return [f"C{min(k, MAX_OUTPUT_COLOURS - 1)}" for k in range(len(names))]


def predicted_vs_true_figure(y_true: NDArray[Any], y_pred: NDArray[Any], names: Sequence[str]) -> Figure:
    r"""Each test sample's predicted value against its true value (one colour per output),
    with the line :math:`\hat y = y` where a perfect model's points lie, and :math:`R^2` in the title."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    y_true = y_true.reshape(y_pred.shape)
    fig = Figure(figsize=TASK_FIGURE_SIZES["predicted_vs_true.png"], layout="constrained")
    ax = fig.add_subplot()
    for k, (name, colour) in enumerate(zip(names, _output_colours(names), strict=True)):
        ax.scatter(y_true[:, k], y_pred[:, k], s=10, alpha=0.6, color=colour, label=name, edgecolors="none")
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="0.3", linewidth=1, label="predicted = true")
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    r2 = float(np.mean(1 - residual / np.where(total == 0, 1, total)))
    ax.set_title(f"Predicted against true values ({len(y_true):,} test samples, R² {r2:.4f})")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def residuals_figure(y_true: NDArray[Any], y_pred: NDArray[Any], names: Sequence[str]) -> Figure:
    r"""Residuals :math:`\hat y - y` of the test samples: against the predicted value (left; a
    good fit scatters them evenly about 0) and their histogram (right)."""
    y_pred = np.asarray(y_pred, np.float64)
    residual = y_pred - np.asarray(y_true, np.float64).reshape(y_pred.shape)
    fig = Figure(figsize=TASK_FIGURE_SIZES["residuals.png"], layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    colours = _output_colours(names)
    for k, (name, colour) in enumerate(zip(names, colours, strict=True)):
        left.scatter(y_pred[:, k], residual[:, k], s=10, alpha=0.6, color=colour, label=name, edgecolors="none")
    left.axhline(0, color="0.3", linewidth=1)
    left.set_title("Residual against predicted value")
    left.set_xlabel("predicted value")
    left.set_ylabel("residual (predicted − true)")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    right.hist([residual[:, k] for k in range(residual.shape[1])], bins=30, color=colours, label=list(names))
    right.axvline(0, color="0.3", linewidth=1)
    right.set_title("Distribution of the residuals")
    right.set_xlabel("residual (predicted − true)")
    right.set_ylabel("test samples")
    right.grid(alpha=0.3)
    return fig


def per_label_csv(y_true: NDArray[Any], y_pred: NDArray[Any], names: Sequence[str]) -> str:
    """Precision, recall, F1 and support of each label of a multi-label model (scikit-learn's
    :func:`~sklearn.metrics.precision_recall_fscore_support` on the 0/1 matrices), then their macro average."""
    y_true, y_pred = np.asarray(y_true).reshape(np.shape(y_pred)), np.asarray(y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    rows = [
        [name, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", int(s)]
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    ]
    rows.append(["macro avg", *(f"{np.mean(v):.4f}" for v in (precision, recall, f1)), int(np.sum(support))])
    return _csv_text(["label", "precision", "recall", "f1", "support"], rows)


def write_task_figures(
    out_dir: str | Path,
    model: Model,
    task: str,
    X_test_scaled: Array,
    y_test: NDArray[Any],
    history: Sequence[EpochRecord],
    best_epoch: int | None = None,
) -> list[Path]:
    """The figures and tables of a regression or multi-label run, written into ``out_dir``.

    ``y_test`` holds the test targets as the dataset gives them (values in their own units,
    or 0/1 labels).  Regression: ``loss.png``, ``r2.png``, ``predicted_vs_true.png`` and
    ``residuals.png`` (values in the targets' units, :meth:`Model.values`); multi-label:
    ``loss.png``, ``accuracy.png`` (subset accuracy) and ``per_label_metrics.csv``.  Both:
    ``learning_rate.png`` when the records hold the rate.
    """
    out = Path(out_dir)
    if len(X_test_scaled) != len(y_test) or len(y_test) == 0:
        raise ValueError(f"test set: {len(X_test_scaled)} rows and {len(y_test)} targets (need the same, > 0)")
    names = model.class_names
    pred = model.values(X_test_scaled)
    curves = (MSE_LABELS, ("r2.png", "r2", R2_LABELS)) if task == "regression" else (BCE_LABELS, None)
    loss_labels, score = curves[0], curves[1] or ("accuracy.png", "acc", SUBSET_LABELS)
    figures = {
        "loss.png": curves_figure(history, "loss", *loss_labels, best_epoch=best_epoch),
        score[0]: curves_figure(history, score[1], *score[2], best_epoch=best_epoch),
    }
    if history and "lr" in history[0]:
        figures["learning_rate.png"] = learning_rate_figure(history)
    tables: dict[str, str] = {}
    if task == "regression":
        figures["predicted_vs_true.png"] = predicted_vs_true_figure(y_test, pred, names)
        figures["residuals.png"] = residuals_figure(y_test, pred, names)
    else:
        tables["per_label_metrics.csv"] = per_label_csv(y_test, pred.astype(np.int8), names)
    written = []
    for name, text in tables.items():
        write_text(out / name, text)
        written.append(out / name)
    for name, fig in figures.items():
        save_figure(fig, out / name)
        written.append(out / name)
    return written
