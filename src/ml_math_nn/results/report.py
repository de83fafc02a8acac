"""Self-contained HTML reports of one run, or of several runs side by side.

A report reads only the files of the run directories (``summary.json``, ``metrics.csv``,
the PNG figures and the CSV tables written by :func:`ml_math_nn.results.plots.write_run_figures`)
and writes one HTML file with every figure embedded as a base64 ``data:`` URI and the
style inline: it opens offline, and can be mailed or archived as a single file.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runs.persistence import write_text
from ..train import EpochRecord
from .plots import ACC_LABELS, LOSS_LABELS, comparison_curves_figure, figure_png

FIGURES = {
    "samples.png": "Sample test images",
    "loss.png": "Loss per epoch",
    "accuracy.png": "Accuracy per epoch",
    "confusion_matrix.png": "Confusion matrix on the test set",
    "misclassified.png": "Misclassified test images",
    "first_layer_weights.png": "First-layer weights",
}
"""Figures of a run in the order a report shows them, with their captions; any other PNG follows."""

TABLES = {
    "per_class_metrics.csv": "Per-class precision, recall and F1 on the test set",
    "confusion_matrix.csv": "Confusion matrix (rows: true class, columns: predicted class)",
    "metrics.csv": "Metrics per epoch",
}

RUN_FACTS = ("status", "epochs_run", "best_epoch", "n_parameters", "load_time_s", "train_time_s", "peak_memory_mb")
"""Entries of summary.json shown in a report's "Run" table (with the dataset's sizes)."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1240px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; }
tr.diff td, tr.diff th { background: #fff3b0; }
td.best { font-weight: bold; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
details { margin: 1em 0; }
"""


@dataclass
class Run:
    """What a report needs of one run directory."""

    path: Path
    summary: dict[str, Any]
    history: list[EpochRecord]
    figures: dict[str, bytes] = field(default_factory=dict)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.summary.get("config", {}))

    @property
    def final(self) -> dict[str, Any]:
        return dict(self.summary.get("final", {}))


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if row]


def _numbers(header: Sequence[str], row: Sequence[str]) -> EpochRecord:
    """The numeric cells of a metrics.csv row by column; text cells (a status, say) are left out."""
    record: EpochRecord = {}
    for key, text in zip(header, row, strict=True):
        try:
            record[key] = float(text)
        except ValueError:
            continue
    return record


def read_run(run_dir: str | Path) -> Run:
    """Load a run directory's summary, per-epoch metrics, figures and tables."""
    path = Path(run_dir)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise ValueError(f"{path}: not a run directory (no summary.json)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{summary_path}: not valid JSON ({e})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{summary_path}: expected a JSON object")
    tables = {name: _read_csv(path / name) for name in TABLES if (path / name).is_file()}
    metrics = tables.get("metrics.csv", [])
    try:
        history = [_numbers(metrics[0], row) for row in metrics[1:]]
    except ValueError as e:
        raise ValueError(f"{path / 'metrics.csv'}: malformed row ({e})") from None
    pngs = sorted(path.glob("*.png"), key=lambda p: (list(FIGURES).index(p.name) if p.name in FIGURES else 99, p.name))
    return Run(path, summary, history, {p.name: p.read_bytes() for p in pngs}, tables)


# -- HTML pieces ---------------------------------------------------------------------
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    """Non-integer numbers (also as CSV text) to 4 significant digits; anything else as it is."""
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return _esc(json.dumps(value))
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _esc(value)
    try:
        number = float(value)
    except ValueError:
        return _esc(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return _esc(value)
    return _esc(f"{number:.4g}")


def _table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    row_css: Sequence[str] = (),
    cell_css: Sequence[Sequence[str]] = (),
) -> str:
    """An HTML table; the first cell of each row is its heading.  ``row_css[i]`` and
    ``cell_css[i][j]`` are optional CSS classes of row ``i`` and of its cell ``j``."""

    def attr(css: str) -> str:
        return f' class="{css}"' if css else ""

    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        classes = cell_css[i] if i < len(cell_css) else [""] * len(row)
        cells = f"<th>{_esc(row[0])}</th>" + "".join(
            f"<td{attr(css)}>{_fmt(v)}</td>" for v, css in zip(row[1:], classes[1:], strict=True)
        )
        body.append(f"<tr{attr(row_css[i] if i < len(row_css) else '')}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{_esc(title)}</h1>{body}</body></html>\n"
    )


def _run_sections(run: Run, h: str = "h2") -> str:
    """Final metrics, dataset, config, figures and tables of one run, under ``<h>`` headings."""
    parts = [f"<{h}>Final metrics</{h}>", _table(["metric", "value"], list(run.final.items()))]
    facts: dict[str, Any] = {k: run.summary[k] for k in RUN_FACTS if k in run.summary}
    facts |= {f"dataset {k}": v for k, v in run.summary.get("dataset", {}).items()}
    if facts:
        parts += [f"<{h}>Run</{h}>", _table(["", "value"], list(facts.items()))]
    parts += [f"<{h}>Configuration</{h}>", _table(["option", "value"], list(run.config.items()))]
    if run.figures:
        parts.append(f"<{h}>Figures</{h}>")
        parts += [_figure(png, FIGURES.get(name, name)) for name, png in run.figures.items()]
    for name, caption in TABLES.items():
        if run.tables.get(name):
            header, *rows = run.tables[name]
            parts += [f"<{h}>{_esc(caption)}</{h}>", _table(header, rows)]
    return "\n".join(parts)


def _labels(runs: Sequence[Run]) -> list[str]:
    """Directory names, prefixed with their position when two runs share a name."""
    names = [run.path.name or str(run.path) for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{i + 1}: {name}" for i, name in enumerate(names)]


def _best(metric: str, values: Sequence[Any]) -> list[str]:
    """CSS classes marking the best of one metric across runs: lowest loss, highest accuracy."""
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    pick = min if metric.endswith("_loss") else max if metric.endswith("_acc") else None
    best = pick(numbers) if pick and numbers else None
    return ["best" if best is not None and v == best else "" for v in values]


def _differ(values: Sequence[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True) for v in values}) > 1


def _side_by_side(
    label: str, dicts: Sequence[Mapping[str, Any]], labels: Sequence[str], mark_best: bool
) -> tuple[str, int]:
    """One row per key of any of ``dicts``, one column per run; rows whose values differ come
    first, highlighted.  Returns the table and the number of differing rows."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    rows = [[key, *(d.get(key, "—") for d in dicts)] for key in keys]
    rows.sort(key=lambda row: not _differ(row[1:]))
    diff = ["diff" if _differ(row[1:]) else "" for row in rows]
    cells = [["", *_best(row[0], row[1:])] for row in rows] if mark_best else []
    return _table([label, *labels], rows, diff, cells), diff.count("diff")


def _comparison_sections(runs: Sequence[Run]) -> str:
    labels = _labels(runs)
    histories = dict(zip(labels, (run.history for run in runs), strict=True))
    parts = ["<h2>Curves</h2>"]
    for metric, (title, ylabel) in (("loss", LOSS_LABELS), ("acc", ACC_LABELS)):
        png = figure_png(comparison_curves_figure(histories, metric, title, ylabel))
        parts.append(_figure(png, f"{title}: one colour per run; solid train, dashed validation, dotted test"))
    metrics, _ = _side_by_side("metric", [run.final for run in runs], labels, mark_best=True)
    parts += ["<h2>Final metrics</h2>", "<p>Best value of each metric in bold.</p>", metrics]
    config, n_diff = _side_by_side("option", [run.config for run in runs], labels, mark_best=False)
    parts += ["<h2>Configuration</h2>", f"<p>{n_diff} option(s) differ between the runs (highlighted).</p>", config]
    for label, run in zip(labels, runs, strict=True):
        summary = f"<summary>Run {_esc(label)}: every figure and table</summary>"
        parts.append(f"<details>{summary}{_run_sections(run, 'h3')}</details>")
    return "\n".join(parts)


def write_report(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write the HTML report of one run, or the comparison page of several, to ``out``.

    Parameters
    ----------
    run_dirs : sequence of paths
        Run directories written by training; one gives a single-run page, two or more a
        comparison (curves overlaid, final metrics side by side, differing options highlighted).
    out : path
        The HTML file to write (its folder must exist).

    Returns
    -------
    Path
        ``out``.
    """
    if not run_dirs:
        raise ValueError("report: give at least one run directory")
    runs = [read_run(d) for d in run_dirs]
    if len(runs) == 1:
        page = _page(f"Run {_labels(runs)[0]}", _run_sections(runs[0]))
    else:
        page = _page(f"Comparison of {len(runs)} runs", _comparison_sections(runs))
    out = Path(out)
    write_text(out, page)
    return out
