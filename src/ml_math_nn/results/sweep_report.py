"""The HTML page of a sweep (``SWEEP_DIR/sweep.html``): the ranking of its points and a
parallel-coordinates figure of the varied options against the metric, self-contained
like a run's report (the figure embedded, the style inline)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs.persistence import write_text
from .report import _esc, _figure, _page, _table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..runs.sweep import Point, Sweep


def _axis(values: Sequence[str]) -> tuple[list[float], list[tuple[float, str]]]:
    """Positions in [0, 1] of one option's values, and the ticks to label: numbers on a
    linear (or, spanning more than 20x, logarithmic) scale, anything else evenly spaced."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        numbers = []
    if numbers and all(math.isfinite(x) for x in numbers):
        log = min(numbers) > 0 and max(numbers) / min(numbers) > 20
        f = [math.log10(x) if log else x for x in numbers]
        low, high = min(f), max(f)
        span = (high - low) or 1.0
        pos = [(x - low) / span if high > low else 0.5 for x in f]
        ticks = sorted({(p, f"{x:.4g}") for p, x in zip(pos, numbers, strict=True)})
        if len(ticks) > 6:
            ticks = [ticks[0], ticks[len(ticks) // 2], ticks[-1]]
        return pos, ticks
    names = sorted(set(values))
    where = {n: (i / (len(names) - 1) if len(names) > 1 else 0.5) for i, n in enumerate(names)}
    return [where[v] for v in values], [(where[n], n) for n in names]


def parallel_coordinates(
    names: Sequence[str], rows: Sequence[Mapping[str, Any]], metric: str, maximize: bool
) -> Figure:
    """One line per completed trial through an axis per varied option and one for the
    metric, coloured by the metric (the best trial drawn thickest)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    axes_names = [*names, metric]
    columns = [_axis([str(r[n]) for r in rows]) for n in axes_names]
    scores = [float(r[metric]) for r in rows]
    norm = Normalize(min(scores), max(scores) if max(scores) > min(scores) else min(scores) + 1e-12)
    cmap = colormaps["viridis" if maximize else "viridis_r"]
    fig = Figure(figsize=(max(6.0, 1.8 * len(axes_names)), 4.2))
    ax = fig.add_subplot()
    order = sorted(range(len(rows)), key=lambda i: scores[i] if maximize else -scores[i])
    for rank, i in enumerate(order):
        ys = [col[0][i] for col in columns]
        best = rank == len(order) - 1
        ax.plot(range(len(axes_names)), ys, color=cmap(norm(scores[i])), lw=2.8 if best else 1.2, alpha=0.9)
    for j, (_, ticks) in enumerate(columns):
        ax.axvline(j, color="#888", lw=0.8)
        for y, label in ticks:
            ax.text(j + 0.03, y, label, fontsize=7, va="center", ha="left")
    ax.set_xticks(range(len(axes_names)), axes_names)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(axes_names) - 0.4)
    ax.set_ylim(-0.05, 1.05)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=metric)
    fig.tight_layout()
    return fig


def write_sweep_report(
    path: str | Path, sweep: Sweep, rows: Sequence[Mapping[str, Any]], ranked: Sequence[Point]
) -> Path:
    """Write the sweep's page: its facts, the ranked points, the figure and every trial."""
    from .plots import figure_png

    path = Path(path)
    completed = [r for r in rows if r["status"] == "completed" and r.get(sweep.metric, "") != ""]
    facts = [
        ["sweep file", str(sweep.path)],
        ["ranked by", f"{sweep.metric} ({'higher' if sweep.maximize else 'lower'} is better), mean over seeds"],
        ["trials", f"{len(rows)} ({len(completed)} completed)"],
        ["seeds", ", ".join(map(str, sweep.seeds))],
        ["varied", ", ".join(f"{n}: {sweep.random.get(n) or sweep.grid.get(n)}" for n in sweep.varied) or "—"],
    ]
    body = [f"<h2>Sweep</h2>{_table(['', ''], facts)}"]
    ranking = [
        [
            str(i),
            *(p.values.values()),
            p.mean if p.scores else "failed",
            p.sd if p.scores else "",
            len(p.scores),
            p.failed,
        ]
        for i, p in enumerate(ranked, 1)
    ]
    header = ["rank", *sweep.varied, f"{sweep.metric} mean", "sd", "seeds", "failed"]
    body.append(f"<h2>Ranking</h2>{_table(header, ranking)}")
    if completed and sweep.varied:
        fig = parallel_coordinates(sweep.varied, completed, sweep.metric, sweep.maximize)
        caption = f"Each completed trial's options and {sweep.metric}; the best trial drawn thickest"
        figure = _figure(figure_png(fig), caption, "parallel coordinates")
        body.append(f"<h2>Options against {_esc(sweep.metric)}</h2>{figure}")
    if rows:
        columns = list(rows[0])
        table = [[f"{r['trial']}", *(r[c] for c in columns[1:])] for r in rows]
        body.append(f"<h2>Trials</h2><p>Each trial is a run directory beside this page.</p>{_table(columns, table)}")
    write_text(path, _page(f"Sweep {sweep.path.stem}", "".join(body)))
    return path
