"""Self-contained HTML reports of one run, or of several runs side by side.

A report reads only the files of the run directories (``summary.json``, ``metrics.csv``,
the PNG figures and the CSV tables written by :func:`ml_math_nn.results.plots.write_run_figures`)
and writes one HTML file with every figure embedded as a base64 ``data:`` URI and the
style inline: it opens offline, and can be mailed or archived as a single file.

The page answers first: the headline metrics and the two main curves, side by side, fill
the first screen of a laptop (1280 px wide); the figures follow in :data:`SECTIONS` order,
then the tables, with the configuration last and collapsed.  On a phone (390 px) the
columns stack, and wide tables scroll inside their own box, never the page.

Adding a figure is one entry in :data:`FIGURES` (its file name, the section it belongs to
and a caption that says how to read it, not what its title already says).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..runs.persistence import write_text
from ..train import EpochRecord


@dataclass(frozen=True)
class FigureEntry:
    """A figure a run may have: the section it goes in and its caption (how to read it)."""

    section: str
    caption: str


SECTIONS = {
    "curves": "Training",
    "predictions": "Predictions on the test set",
    "model": "What the network learned",
    "data": "The data",
    "other": "Other figures",
}
"""The report's figure sections, in page order (heading of each); ``curves`` is shown first,
side by side, right under the headline metrics."""

FIGURES: dict[str, FigureEntry] = {
    "loss.png": FigureEntry(
        "curves",
        "Lower is better. The marked epoch is the one whose weights were kept; a gap between "
        "the training line and the others is overfitting.",
    ),
    "accuracy.png": FigureEntry(
        "curves",
        "Higher is better. Validation (when the run has one) guided the choices; the test split was only measured.",
    ),
    "r2.png": FigureEntry(
        "curves", "Regression: higher is better, 1 a perfect fit, 0 no better than predicting the mean."
    ),
    "learning_rate.png": FigureEntry("curves", "The step size each epoch's updates used (the schedule's output)."),
    "predicted_vs_true.png": FigureEntry(
        "predictions",
        "Regression: each test sample's prediction against its true value, in the target's units; "
        "a perfect model puts every point on the line.",
    ),
    "residuals.png": FigureEntry(
        "predictions",
        "Regression: prediction minus truth. A good fit scatters them evenly about 0 at every "
        "predicted value; a slope or a curve is structure the model missed.",
    ),
    "confusion_matrix.png": FigureEntry(
        "predictions",
        "Rows are the true classes. The colour scale is set by the off-diagonal cells (the errors), "
        "so the mistakes that matter stand out; the diagonal is drawn in grey.",
    ),
    "misclassified.png": FigureEntry(
        "predictions",
        "The test images the network got wrong with the most confidence: the probability it gave "
        "the wrong (predicted) class and the one it gave the true class.",
    ),
    "first_layer_weights.png": FigureEntry(
        "model",
        "Each tile is one first-layer unit's weights over the input pixels, the strongest units "
        "(largest weight norm) first, each on its own symmetric colour scale: red pixels raise "
        "the unit's input, blue lower it.",
    ),
    "conv_filters.png": FigureEntry(
        "model",
        "Each tile is one filter of the first convolution, the strongest first, each on its own "
        "symmetric colour scale: where the image is bright under red entries, the filter's map is high.",
    ),
    "feature_maps.png": FigureEntry(
        "model",
        "One test image and the maps the first convolution makes of it (after its activation): "
        "where each filter finds its pattern.",
    ),
    "samples.png": FigureEntry("data", "What the network sees: the first test images of each class, unscaled."),
}
"""Figures of a run in page order within their section; any other PNG goes to ``other``."""

TABLES = {
    "per_class_metrics.csv": "Precision, recall and F1 per class (test set)",
    "per_label_metrics.csv": "Precision, recall and F1 per label of a multi-label model (test set)",
    "confusion_matrix.csv": "Confusion matrix counts (rows: true class, columns: predicted class)",
    "metrics.csv": "Metrics per epoch",
}

MOST_CONFUSED = 8
"""Rows of the table of the most confused (true, predicted) pairs."""

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 0.8em 1em 2em; max-width: 1280px;
  color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin: 0.2em 0; overflow-wrap: anywhere; }
h2 { font-size: 1.2em; margin: 1.4em 0 0.4em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; }
p.sub { margin: 0 0 0.6em; color: #555; overflow-wrap: anywhere; }
.cards { display: flex; flex-wrap: wrap; gap: 0.5em; margin: 0.4em 0 0.6em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.25em 0.7em; flex: 0 1 auto; min-width: 6.5em; }
.card .k { font-size: 0.8em; color: #555; }
.card .v { font-size: 1.25em; font-variant-numeric: tabular-nums; }
.card.main .v { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 0.8em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.3em 0 1em; font-size: 0.9em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; }
thead th { background: #f0f0f0; }
tr.diff td, tr.diff th { background: #fff3b0; }
td.best { font-weight: bold; }
figure { margin: 0 0 1em; min-width: 0; }
figure.wide { grid-column: 1 / -1; }
figure img { display: block; width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.88em; }
details { margin: 0.8em 0; }
summary { cursor: pointer; font-weight: 600; }
.warn { background: #fde8e8; border: 1px solid #e0a0a0; padding: 0.5em 0.8em; border-radius: 6px; }
code { overflow-wrap: anywhere; }
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

    @property
    def dataset(self) -> str:
        return str(self.summary.get("dataset", {}).get("name", self.config.get("dataset", "?")))


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


def _figure_order(name: str) -> tuple[int, int, str]:
    entry = FIGURES.get(name)
    section = entry.section if entry else "other"
    return list(SECTIONS).index(section), list(FIGURES).index(name) if entry else 0, name


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
    pngs = sorted(path.glob("*.png"), key=lambda p: _figure_order(p.name))
    if "started" not in summary:  # runs written before the date was recorded
        mtime = datetime.fromtimestamp(summary_path.stat().st_mtime, timezone.utc)
        summary["started"] = f"{mtime:%Y-%m-%d %H:%M} UTC (summary.json written)"
    return Run(path, summary, history, {p.name: p.read_bytes() for p in pngs}, tables)


# -- formatting ----------------------------------------------------------------------
DECIMALS = 4
"""Decimals of every loss, accuracy and other fraction shown (all numbers of one kind align)."""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a number or the text of one (not a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fmt(value: Any, key: str = "") -> str:
    """A value as shown in a table: integers as they are; seconds and MiB to one decimal;
    other non-integers to :data:`DECIMALS` decimals, so a column's numbers line up;
    lists and mappings as JSON; None as a dash.  ``key`` names what the value is."""
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return _esc(json.dumps(value))
    number = _number(value)
    if number is None or not math.isfinite(number):
        return _esc(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return _esc(f"{int(number):,}" if abs(number) >= 10_000 else value)
    if key.endswith(("_s", "_mb")):
        return f"{number:,.1f}"
    return f"{number:.{DECIMALS}f}"


def _option(value: Any) -> str:
    """An option's value as it was given (``0.1``, not ``0.1000``)."""
    if value is None:
        return "—"
    if isinstance(value, list | dict | bool):
        return _esc(json.dumps(value))
    return _esc(value)


def _seconds(value: Any) -> str:
    """A duration: ``2 min 5 s``, ``9.2 s``, ``41 ms``."""
    number = _number(value)
    if number is None:
        return "—"
    if number < 1:
        return f"{number * 1000:.3g} ms"
    minutes, seconds = divmod(number, 60)
    return f"{int(minutes)} min {seconds:.0f} s" if minutes else f"{seconds:.1f} s"


def _table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    row_css: Sequence[str] = (),
    cell_css: Sequence[Sequence[str]] = (),
    fmt: Any = None,
) -> str:
    """An HTML table in a box that scrolls sideways when too wide; the first cell of each row
    is its heading.  ``row_css[i]`` and ``cell_css[i][j]`` are optional CSS classes of row ``i``
    and of its cell ``j``; ``fmt(value, column)`` formats a cell (default :func:`_fmt` by row heading)."""

    def attr(css: str) -> str:
        return f' class="{css}"' if css else ""

    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        classes = cell_css[i] if i < len(cell_css) else [""] * len(row)
        cells = f"<th>{_esc(row[0])}</th>"
        for j, (v, css) in enumerate(zip(row[1:], classes[1:], strict=True), start=1):
            text = fmt(v, str(header[j]) if j < len(header) else "") if fmt else _fmt(v, str(row[0]))
            css = css or ("text" if _number(v) is None and v is not None else "")
            cells += f"<td{attr(css)}>{text}</td>"
        body.append(f"<tr{attr(row_css[i] if i < len(row_css) else '')}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


WIDE_PIXELS = 1400
"""A figure wider than this (in PNG pixels) spans the whole width of the figure grid."""


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's header (0, 0 if it is not a PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0, 0
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _figure(png: bytes, caption: str, alt: str) -> str:
    """A figure shown no larger than its size in inches at 100 CSS px per inch (a 150-dpi PNG
    shrinks by 1.5, so it stays sharp on a high-resolution screen); a wide one spans the grid."""
    data = base64.b64encode(png).decode("ascii")
    width = _png_size(png)[0]
    css = ' class="wide"' if width > WIDE_PIXELS else ""
    style = f' style="max-width: {round(width * 100 / 150)}px"' if width else ""
    return (
        f'<figure{css}><img src="data:image/png;base64,{data}" alt="{_esc(alt)}"{style}>'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{_esc(title)}</h1>{body}</body></html>\n"
    )


# -- one run -------------------------------------------------------------------------
METRIC_NAMES = {"acc": "accuracy", "loss": "loss", "r2": "R²"}
SPLIT_NAMES = {"test": "test", "val": "validation", "train": "training"}


def _metric_label(key: str) -> str:
    """``test_acc`` -> ``test accuracy``; other keys as they are."""
    split, _, metric = key.partition("_")
    if split in SPLIT_NAMES and metric:
        return f"{SPLIT_NAMES[split]} {METRIC_NAMES.get(metric, metric)}"
    return key


def headline(run: Run) -> list[tuple[str, str, bool]]:
    """The cards at the top of a run's page: (label, value, main) for the test metrics first
    (the main one: the test score), then validation and training, the kept epoch, the time."""
    final = {k: v for k, v in run.final.items() if k != "lr"}
    order = {"test": 0, "val": 1, "train": 2}
    # Within a split: the score first (accuracy, R²: the answer), then the loss, then the rest.
    rank = {"acc": 0, "r2": 0, "loss": 1}
    keys = sorted(final, key=lambda k: (order.get(k.partition("_")[0], 3), rank.get(k.partition("_")[2], 2), k))
    cards = [(_metric_label(k), _fmt(final[k], k), i == 0) for i, k in enumerate(keys)]
    s = run.summary
    if "best_epoch" in s:
        cards.append(("epoch kept", f"{s['best_epoch']} of {s.get('epochs_run', '?')}", False))
    if "wall_time_s" in s or "train_time_s" in s:
        cards.append(("wall time", _seconds(s.get("wall_time_s", s.get("train_time_s"))), False))
    if "n_parameters" in s:
        cards.append(("parameters", f"{s['n_parameters']:,}", False))
    return cards


def _cards(cards: Sequence[tuple[str, str, bool]]) -> str:
    items = "".join(
        f'<div class="card{" main" if main else ""}"><div class="k">{_esc(k)}</div><div class="v">{v}</div></div>'
        for k, v, main in cards
    )
    return f'<div class="cards">{items}</div>'


def _subtitle(run: Run) -> str:
    s = run.summary
    ds = s.get("dataset", {})
    sizes = ", ".join(
        f"{ds[k]:,} {n}" for k, n in (("n_train", "train"), ("n_val", "val"), ("n_test", "test")) if ds.get(k)
    )
    parts = [f"dataset {_esc(run.dataset)}" + (f" ({sizes})" if sizes else "")]
    parts += [_esc(s["started"])] if s.get("started") else []
    parts += [f"status {_esc(s['status'])}"] if s.get("status") else []
    return f'<p class="sub">{" · ".join(parts)}</p>'


def run_facts(run: Run) -> list[tuple[str, str]]:
    """The run's own facts (when, how, on what, how long), formatted, for the "Run" table."""
    s = run.summary
    facts: list[tuple[str, str]] = []
    if s.get("started"):
        facts.append(("started", _esc(s["started"])))
    if s.get("command"):
        facts.append(("command line", f"<code>{_esc(s['command'])}</code>"))
    facts.append(("run directory", f"<code>{_esc(run.path)}</code>"))
    for key in ("status", "epochs_run", "best_epoch", "seed"):
        if key in s:
            facts.append((key.replace("_", " "), _fmt(s[key], key)))
    for key, label in (("wall_time_s", "wall time"), ("load_time_s", "loading data"), ("train_time_s", "training")):
        if key in s:
            facts.append((label, _seconds(s[key])))
    if s.get("epoch_time_s") is not None:
        facts.append(("time per epoch", _seconds(s["epoch_time_s"])))
    if s.get("peak_memory_mb") is not None:
        facts.append(("peak memory", f"{s['peak_memory_mb']:,.1f} MiB"))
    for key, value in s.get("dataset", {}).items():
        facts.append((f"dataset {key.removeprefix('n_')}" if key != "name" else "dataset", _fmt(value, key)))
    if s.get("versions"):
        facts.append(("versions", _esc(", ".join(f"{k} {v}" for k, v in s["versions"].items()))))
    return facts


def _facts_table(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f'<tr><th>{_esc(k)}</th><td class="text">{v}</td></tr>' for k, v in facts)
    return f'<div class="scroll"><table><tbody>{rows}</tbody></table></div>'


def _layers_table(run: Run) -> str:
    layers = run.summary.get("layers")
    if not layers:
        return ""
    rows = [
        [i, layer.get("layer", "?"), layer.get("output", ""), layer.get("parameters", 0)]
        for i, layer in enumerate(layers)
    ]
    rows = [[str(r[0]), *r[1:]] for r in rows]
    total = sum(int(layer.get("parameters", 0)) for layer in layers)
    rows.append(["total", "", "", total])
    return _table(
        ["#", "layer", "output shape (one sample)", "parameters"],
        rows,
        fmt=lambda v, _: _option(v) if not isinstance(v, int) else f"{v:,}",
    )


def most_confused(table: Sequence[Sequence[str]], n: int = MOST_CONFUSED) -> list[tuple[str, str, int, float]]:
    """The largest off-diagonal cells of a confusion-matrix CSV table (header row, then one row
    per true class): (true class, predicted class, count, fraction of the true class), largest first."""
    if len(table) < 2:
        return []
    names = list(table[0][1:])
    pairs = []
    for row in table[1:]:
        counts = [int(v) for v in row[1:]]
        total = sum(counts)
        for j, count in enumerate(counts):
            if names[j] != row[0] and count > 0:
                pairs.append((row[0], names[j], count, count / total if total else 0.0))
    return sorted(pairs, key=lambda p: (-p[2], -p[3]))[:n]


def _confused_table(run: Run) -> str:
    pairs = most_confused(run.tables.get("confusion_matrix.csv", []))
    if not pairs:
        return ""
    rows = [[t, p, c, f"{f:.1%}"] for t, p, c, f in pairs]
    table = _table(["true class", "predicted as", "test images", "of the true class"], rows, fmt=lambda v, _: _esc(v))
    return f"<h3>Most confused pairs</h3>{table}"


def _figures_by_section(figures: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Figure HTML of each section of :data:`SECTIONS` that has any, in page order."""
    out: dict[str, list[str]] = {}
    for name, png in sorted(figures.items(), key=lambda item: _figure_order(item[0])):
        entry = FIGURES.get(name, FigureEntry("other", name))
        out.setdefault(entry.section, []).append(
            _figure(png, entry.caption, name.removesuffix(".png").replace("_", " "))
        )
    return out


def _run_sections(run: Run, h: str = "h2") -> str:
    """Headline metrics and the curves first, then the other figures by section, then the
    tables; the configuration and the per-epoch table collapsed at the end."""
    parts = [_subtitle(run), _cards(headline(run))]
    sections = _figures_by_section(run.figures)
    for key, heading in SECTIONS.items():
        figures = sections.get(key, [])
        extra = _confused_table(run) if key == "predictions" else ""
        if not figures and not extra:
            continue
        # The curves need no heading: they belong to the answer at the top of the page.
        parts += [f"<{h}>{heading}</{h}>"] if key != "curves" else []
        parts.append(f'<div class="grid">{"".join(figures)}</div>{extra}')
    if run.tables.get("per_class_metrics.csv"):
        header, *rows = run.tables["per_class_metrics.csv"]
        parts += [f"<{h}>{_esc(TABLES['per_class_metrics.csv'])}</{h}>", _table(header, rows)]
    parts += [f"<{h}>Run</{h}>", _facts_table(run_facts(run))]
    layers = _layers_table(run)
    if layers:
        parts += [f"<{h}>Layers</{h}>", layers]
    for name in ("confusion_matrix.csv", "metrics.csv"):
        if run.tables.get(name):
            header, *rows = run.tables[name]
            parts.append(f"<details><summary>{_esc(TABLES[name])}</summary>{_table(header, rows)}</details>")
    config_rows = [[k, v] for k, v in run.config.items()]
    config = _table(["option", "value"], config_rows, fmt=lambda v, _: _option(v))
    parts.append(
        f"<details><summary>Configuration ({len(config_rows)} options; config.toml)</summary>{config}</details>"
    )
    return "\n".join(parts)


# -- several runs ----------------------------------------------------------------------
def _labels(runs: Sequence[Run]) -> list[str]:
    """Directory names; where two runs share a name, as much of their paths as tells them
    apart (``a/run``, ``b/run``); the same directory given twice is numbered."""
    paths = [run.path.resolve() for run in runs]
    depth = [1] * len(paths)

    def name(i: int) -> str:
        return "/".join(paths[i].parts[-depth[i] :]).lstrip("/") or str(paths[i])

    for _ in range(max(len(p.parts) for p in paths)):
        names = [name(i) for i in range(len(paths))]
        clashing = [i for i, n in enumerate(names) if names.count(n) > 1]
        if not clashing:
            return names
        for i in clashing:
            depth[i] += 1
    return [f"{i + 1}: {n}" for i, n in enumerate(names)]


def _best(metric: str, values: Sequence[Any], groups: Sequence[str]) -> list[str]:
    """CSS classes marking the best of one metric among runs on the same dataset (``groups``):
    lowest loss, highest score.  A dataset with one run has nothing to compare, so no mark."""
    pick = min if metric.endswith("_loss") else max if metric.endswith(("_acc", "_r2")) else None
    css = [""] * len(values)
    if pick is None:
        return css
    for group in set(groups):
        members = [i for i, g in enumerate(groups) if g == group and _number(values[i]) is not None]
        if len(members) < 2:
            continue
        best = pick(float(values[i]) for i in members)
        for i in members:
            css[i] = "best" if float(values[i]) == best else ""
    return css


def _same(values: Sequence[Any]) -> bool:
    """Whether the values are equal as shown (a missing option and None alike)."""
    return len({json.dumps(None if v == "—" else v, sort_keys=True) for v in values}) <= 1


def _side_by_side(
    label: str, dicts: Sequence[Mapping[str, Any]], labels: Sequence[str], groups: Sequence[str] | None
) -> tuple[str, int]:
    """One row per key of any of ``dicts``, one column per run.  With ``groups`` (the runs'
    datasets), the best value of each metric is bold among runs on the same dataset; without,
    rows whose values differ come first, highlighted.  Returns the table and the count of such rows."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    rows = [[key, *(d.get(key, "—") for d in dicts)] for key in keys]
    if groups is not None:
        cells = [["", *_best(row[0], row[1:], groups)] for row in rows]
        return _table([label, *labels], rows, cell_css=cells), 0
    rows.sort(key=lambda row: _same(row[1:]))
    diff = ["" if _same(row[1:]) else "diff" for row in rows]
    return _table([label, *labels], rows, diff, fmt=lambda v, _: _option(v)), diff.count("diff")


def _comparison_sections(runs: Sequence[Run]) -> str:
    from .plots import ACC_LABELS, LOSS_LABELS, comparison_curves_figure, figure_png

    labels = _labels(runs)
    datasets = [run.dataset for run in runs]
    parts = []
    if len(set(datasets)) > 1:
        named = ", ".join(f"{_esc(label)}: {_esc(ds)}" for label, ds in zip(labels, datasets, strict=True))
        parts.append(
            f'<p class="warn"><strong>These runs are on different datasets</strong> ({named}). '
            "Their numbers do not compare across datasets: the best value is bold only among runs "
            "on the same dataset.</p>"
        )
    histories = dict(zip(labels, (run.history for run in runs), strict=True))
    figures = []
    for metric, (title, ylabel) in (("loss", LOSS_LABELS), ("acc", ACC_LABELS)):
        png = figure_png(comparison_curves_figure(histories, metric, title, ylabel))
        figures.append(_figure(png, "One colour per run; solid training, dashed validation, dotted test.", title))
    metrics, _ = _side_by_side("metric", [run.final for run in runs], labels, datasets)
    parts += [
        "<h2>Final metrics</h2>",
        "<p>Best value of each metric in bold (among runs on the same dataset).</p>",
        metrics,
    ]
    parts += ["<h2>Curves</h2>", f'<div class="grid">{"".join(figures)}</div>']
    facts = [
        {
            "dataset": run.dataset,
            **{k: run.summary.get(k) for k in ("epochs_run", "best_epoch", "n_parameters", "wall_time_s")},
        }
        for run in runs
    ]
    facts_table, _ = _side_by_side("run", facts, labels, None)
    parts += ["<h2>Runs</h2>", facts_table]
    config, n_diff = _side_by_side("option", [run.config for run in runs], labels, None)
    parts += [
        "<h2>Configuration</h2>",
        f"<p>{n_diff} option(s) differ between the runs (highlighted, first).</p>",
        config,
    ]
    for label, run in zip(labels, runs, strict=True):
        summary = f"<summary>Run {_esc(label)}: its own report</summary>"
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
