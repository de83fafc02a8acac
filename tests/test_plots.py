"""Figures and tables of a run: pixel sizes, non-blank images, and tables that match the predictions."""

from __future__ import annotations

import csv
import io
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from ml_math_nn.data.datasets import FASHION_MNIST_CLASSES, Dataset
from ml_math_nn.results import plots
from ml_math_nn.runs.builders import load_configured_dataset as load_dataset
from ml_math_nn.runs.options import TrainConfig
from ml_math_nn.runs.persistence import Model
from ml_math_nn.runs.training import run_training

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE_FIGURES = ["samples.png", "misclassified.png", "first_layer_weights.png"]
ALWAYS = [
    "loss.png",
    "accuracy.png",
    "learning_rate.png",
    "confusion_matrix.png",
    "confusion_matrix.csv",
    "per_class_metrics.csv",
]


@dataclass
class FakeRun:
    out: Path
    model: Model
    dataset: Dataset
    X_test: np.ndarray
    written: list[Path]


def short_run(out: Path, hidden: tuple[int, ...] = (16,), epochs: int = 2) -> FakeRun:
    """A two-epoch digits run, then every figure of it."""
    config = TrainConfig(epochs=epochs, hidden=hidden, batch_size=64, lr=0.1, seed=1)
    result = run_training(config, out, lambda _: None)
    dataset = load_dataset(config)
    X_test = result.model.transform(dataset.X_test)
    written = plots.write_run_figures(out, result.model, dataset, X_test, dataset.y_test, result.history)
    return FakeRun(out, result.model, dataset, X_test, written)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    return short_run(tmp_path_factory.mktemp("run"))


def png_dpi(png: bytes) -> float:
    """The resolution a PNG's pHYs chunk records, in dots per inch."""
    at = png.index(b"pHYs")
    x, y, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
    assert unit == 1 and x == y, "pixels per metre, square"
    return round(x * 0.0254)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_every_file_is_written(run: FakeRun) -> None:
    assert sorted(p.name for p in run.written) == sorted(ALWAYS + IMAGE_FIGURES)
    assert all(p.parent == run.out and p.is_file() for p in run.written)


CONV_FIGURES = {"conv_filters.png", "feature_maps.png"}  # a conv-first run's (tests/test_conv.py), not this one's


@pytest.mark.parametrize("name", [n for n in plots.FIGURE_SIZES if n not in CONV_FIGURES])
def test_each_png_has_its_size_and_is_not_blank(run: FakeRun, name: str) -> None:
    path = run.out / name
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = imread(path)
    width, height = plots.FIGURE_SIZES[name]
    assert pixels.shape[1] == round(width * plots.DPI)
    if name == "misclassified.png":  # as tall as its rows of mistakes need (tested below)
        assert pixels.shape[0] <= round(height * plots.DPI)
    else:
        assert pixels.shape[0] == round(height * plots.DPI)
    assert width <= 12 and height <= 8, "fits a laptop screen at 100 px per inch"
    assert plots.DPI >= 150, "sharp on high-resolution screens"
    assert png_dpi(path.read_bytes()) == plots.DPI, "the PNG says its resolution"
    gray = pixels[..., :3].mean(axis=2)
    assert (gray < 0.5).mean() > 0.005, "some dark ink (text, lines, images)"
    assert gray.std() > 0.05 and len(np.unique(np.round(gray, 2))) > 20, "more than a few flat tones"


def test_confusion_csv_matches_the_predictions(run: FakeRun) -> None:
    y = run.dataset.y_test
    pred = run.model.network.predict(run.X_test)
    rows = read_csv(run.out / "confusion_matrix.csv")
    assert rows[0] == ["true \\ predicted", *run.model.class_names]
    assert [r[0] for r in rows[1:]] == run.model.class_names
    counts = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (y, pred), 1)
    assert np.array_equal(counts, expected)
    assert counts.sum() == len(y) == 360
    assert np.trace(counts) == int((pred == y).sum())


def test_per_class_csv_matches_the_predictions(run: FakeRun) -> None:
    y = run.dataset.y_test
    pred = run.model.network.predict(run.X_test)
    rows = read_csv(run.out / "per_class_metrics.csv")
    assert rows[0] == ["class", "precision", "recall", "f1", "support"]
    table = {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}
    assert list(table) == [*run.model.class_names, "macro avg", "weighted avg"]
    f1s = []
    for k, name in enumerate(run.model.class_names):
        tp = np.sum((pred == k) & (y == k))
        precision = tp / max(np.sum(pred == k), 1)
        recall = tp / np.sum(y == k)
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        f1s.append(f1)
        assert table[name] == pytest.approx([precision, recall, f1, np.sum(y == k)], abs=1e-12)
    assert table["macro avg"][2] == pytest.approx(np.mean(f1s), abs=1e-12)
    assert table["weighted avg"][3] == len(y)


def test_tabular_data_gets_no_image_figures(run: FakeRun, tmp_path: Path) -> None:
    tabular = replace(run.dataset, image_shape=None)
    history = [{"epoch": 1.0, "train_loss": 1.0, "test_loss": 1.0, "train_acc": 0.5, "test_acc": 0.5, "lr": 0.1}]
    written = plots.write_run_figures(tmp_path, run.model, tabular, run.X_test, tabular.y_test, history)
    assert sorted(p.name for p in written) == sorted(ALWAYS)


def test_mismatched_test_set_is_refused(run: FakeRun, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"test set: 360 rows and 3 labels"):
        plots.write_run_figures(tmp_path, run.model, run.dataset, run.X_test, run.dataset.y_test[:3], [])


def test_misclassified_shows_the_most_confident_mistakes_first() -> None:
    names = ["cat", "dog", "bird"]
    images = np.arange(5 * 4, dtype=np.float64).reshape(5, 4)
    y_true = np.array([0, 1, 2, 0, 1])
    y_pred = np.array([1, 1, 0, 2, 0])  # rows 0, 2, 3, 4 are wrong
    proba = np.array([[0.4, 0.5, 0.1], [0, 0.99, 0.01], [0.9, 0, 0.1], [0.2, 0.1, 0.7], [0.6, 0.3, 0.1]])
    fig = plots.misclassified_figure(images, y_true, y_pred, proba, names, (2, 2))
    shown = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in shown] == [
        "true: bird (10%)",
        "true: cat (20%)",
        "true: dog (30%)",
        "true: cat (40%)",
    ]
    assert [ax.get_xlabel() for ax in shown] == [
        "pred: cat (90%)",
        "pred: bird (70%)",
        "pred: cat (60%)",
        "pred: dog (50%)",
    ]
    assert {ax.title.get_color() for ax in shown} == {"black"}, "the true class is not an error: not red"
    assert {ax.xaxis.label.get_color() for ax in shown} == {"firebrick"}
    assert "4 of 4 shown (of 5 tested)" in fig.get_suptitle()


def mistakes_figure(mistakes: int, n: int = 50) -> Figure:
    """The misclassified figure of ``n`` tested images, the first ``mistakes`` of them wrong."""
    y_true, y_pred = np.zeros(n, dtype=np.intp), np.zeros(n, dtype=np.intp)
    y_pred[:mistakes] = 1
    images = np.random.default_rng(0).random((n, 4))
    p = np.linspace(1, 0.5, n)
    return plots.misclassified_figure(images, y_true, y_pred, np.stack([1 - p, p], axis=1), ["a", "b"], (2, 2))


def cell_height_inches(fig: Figure) -> float:
    return float(fig.axes[0].get_position(original=True).height * fig.get_size_inches()[1])


@pytest.mark.parametrize("mistakes,rows", [(1, 1), (8, 1), (9, 2), (24, 3), (40, 4)])
def test_misclassified_grid_has_the_rows_its_mistakes_need(mistakes: int, rows: int) -> None:
    fig, full = mistakes_figure(mistakes), mistakes_figure(40)
    assert len(fig.axes) == rows * plots.GRID_COLUMNS
    assert {ax.get_subplotspec().get_gridspec().nrows for ax in fig.axes} == {rows}
    assert sum(bool(ax.images) for ax in fig.axes) == min(mistakes, plots.MAX_GRID_IMAGES)
    width, height = plots.FIGURE_SIZES["misclassified.png"]
    assert tuple(full.get_size_inches()) == pytest.approx((width, height))
    assert fig.get_size_inches()[0] == width and (fig.get_size_inches()[1] < height) == (rows < plots.GRID_ROWS)
    assert cell_height_inches(fig) == pytest.approx(cell_height_inches(full)), "images keep one size"
    pixels = imread(io.BytesIO(plots.figure_png(fig)))
    assert pixels.shape[:2] == (round(fig.get_size_inches()[1] * plots.DPI), round(width * plots.DPI))


def test_no_mistakes_draws_a_message_one_row_tall() -> None:
    fig = mistakes_figure(0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["every test image is classified correctly"]
    assert fig.get_suptitle() == "Misclassified test images: none of 50 tested"
    assert fig.get_size_inches() == pytest.approx(mistakes_figure(1).get_size_inches())


def test_first_layer_units_are_named_by_class_without_hidden_layers() -> None:
    weights = np.linspace(-1, 1, 4 * 3).reshape(4, 3)
    fig = plots.first_layer_figure(weights, (2, 2), ["a", "b", "c"])
    assert [ax.get_title().split()[0] for ax in fig.axes if ax.get_title()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"first layer has 4 inputs, which is not an image of shape \(3, 3\)"):
        plots.first_layer_figure(weights, (3, 3))


def test_curves_have_one_labelled_line_per_split() -> None:
    history = [
        {"epoch": 1.0, "train_loss": 2.0, "val_loss": 2.1, "test_loss": 2.2},
        {"epoch": 2.0, "train_loss": 1.0, "val_loss": 1.1, "test_loss": 1.2},
    ]
    ax = plots.curves_figure(history, "loss", "t", "nats").axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == [
        "train",
        "validation (guided the choices)",
        "test (held out, only measured)",
        "kept: epoch 2 (1.1000)",
    ]
    assert ax.get_xlabel().startswith("epoch") and ax.get_ylabel() == "nats"
    overlaid = plots.comparison_curves_figure({"a": history, "b": history[:1]}, "loss", "t", "nats").axes[0]
    labels = [line.get_label() for line in overlaid.get_lines()]
    assert labels == ["a train", "a val", "a test", "b train", "b val", "b test"]


def test_per_class_rows_report_zero_for_a_class_never_predicted() -> None:
    rows = plots.per_class_rows(np.array([0, 1, 1]), np.array([0, 0, 0]), ["x", "y"])
    assert rows[1] == {"class": "y", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert rows[0]["precision"] == pytest.approx(1 / 3) and rows[0]["recall"] == 1.0


def text_boxes(fig: Figure) -> list[tuple[str, Bbox]]:
    """Each visible, non-empty text of ``fig`` (titles, labels, ticks, cells) with its box in pixels."""
    fig.canvas.draw()  # type: ignore[no-untyped-call]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


@pytest.mark.parametrize("names", [["a", "b", "c"], [str(k) for k in range(10)], FASHION_MNIST_CLASSES], ids=len)
def test_confusion_figure_text_stays_on_the_canvas_and_clear_of_the_title(names: list[str]) -> None:
    counts = np.random.default_rng(0).integers(0, 1000, size=(len(names), len(names)))
    fig = plots.confusion_figure(counts, names)
    FigureCanvasAgg(fig)
    boxes = text_boxes(fig)
    width, height = fig.bbox.width, fig.bbox.height
    outside = [text for text, box in boxes if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height]
    assert outside == [], "clipped at the edge of the figure"
    title = next(box for text, box in boxes if text == fig.get_suptitle())
    assert all(not title.overlaps(box) for text, box in boxes if text.startswith(("Counts", "Normalised")))
    assert f"Counts ({counts.sum():,} test images)" in [text for text, _ in boxes]


def test_sample_grid_says_which_images_it_shows(run: FakeRun) -> None:
    fig = plots.samples_figure(run.dataset.X_test, run.dataset.y_test, run.model.class_names, (8, 8))
    assert fig.axes[0].get_title() == f"Sample test images, first {plots.SAMPLES_PER_CLASS} of each class"


def test_confusion_colours_come_from_the_errors_and_empty_cells_have_no_number() -> None:
    counts = np.array([[140, 3, 0], [12, 150, 0], [0, 1, 120]])
    fig = plots.confusion_figure(counts, ["a", "b", "c"])
    counts_ax, fractions_ax = (ax for ax in fig.axes if ax.images)
    image = counts_ax.images[0]
    assert image.norm.vmax == 12, "the largest mistake, not the diagonal's 150, sets the scale"
    shown = np.ma.getdata(image.get_array())
    assert np.isnan(np.diag(shown)).all(), "the diagonal is drawn apart (grey)"
    texts = sorted(t.get_text() for t in counts_ax.texts)
    assert texts == sorted(["140", "3", "12", "150", "1", "120"]), "no '0' labels"
    assert fractions_ax.images[0].norm.vmax == pytest.approx(12 / 162)


def test_first_layer_units_strongest_first_each_on_its_own_scale() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 5)) * np.array([1.0, 5.0, 0.1, 3.0, 2.0])
    fig = plots.first_layer_figure(weights, (2, 2))
    shown = [ax for ax in fig.axes if ax.images]
    norms = np.linalg.norm(weights, axis=0)
    assert [int(ax.get_title().split()[1]) for ax in shown] == sorted(range(5), key=lambda j: -norms[j])
    for ax in shown:
        unit = int(ax.get_title().split()[1])
        limit = np.abs(weights[:, unit]).max()
        assert (ax.images[0].norm.vmin, ax.images[0].norm.vmax) == pytest.approx((-limit, limit))
        assert ax.get_title().endswith(f"|w| {np.linalg.norm(weights[:, unit]):.2f}")


def test_learning_rate_figure_and_the_last_epoch_tick() -> None:
    history = [{"epoch": float(e), "train_loss": 1.0 / e, "lr": 0.1 * 0.5**e} for e in range(1, 8)]
    ax = plots.learning_rate_figure(history).axes[0]
    assert list(ax.get_lines()[0].get_ydata()) == [r["lr"] for r in history]
    curves = plots.curves_figure(history, "loss", "t", "nats", best_epoch=5).axes[0]
    ticks = list(curves.get_xticks())
    assert ticks[0] == 1 and ticks[-1] == 7, "the first and the last epoch are ticked"
    star = next(line for line in curves.get_lines() if line.get_label().startswith("kept"))
    assert list(star.get_xdata()) == [5] and list(star.get_ydata()) == [history[4]["train_loss"]]
