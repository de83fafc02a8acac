"""Figures of a training run, written as PNG files.

matplotlib is used through its object-oriented API with the non-interactive Agg
canvas, so plotting never needs a display and never touches global pyplot state.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .persistence import atomic_write
from .train import EpochRecord

SET_STYLES = {"train": "-", "val": "--", "test": ":"}


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Render ``fig`` to PNG and write it atomically to ``path``."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def curves_figure(history: Sequence[EpochRecord], metric: str, title: str, ylabel: str) -> Figure:
    """One line per data split (train, val, test) of ``<split>_<metric>`` against the epoch."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for split, style in SET_STYLES.items():
        key = f"{split}_{metric}"
        if history and key in history[0]:
            ax.plot(epochs, [r[key] for r in history], style, marker="o", markersize=3, label=split)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_history(history: Sequence[EpochRecord], out_dir: str | Path) -> list[Path]:
    """Write ``loss.png`` and ``accuracy.png`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    figures = {
        "loss.png": curves_figure(history, "loss", "Cross-entropy loss per epoch", "mean cross-entropy (nats)"),
        "accuracy.png": curves_figure(history, "acc", "Accuracy per epoch", "accuracy (fraction correct)"),
    }
    for name, fig in figures.items():
        save_figure(fig, out_dir / name)
    return [out_dir / name for name in figures]
