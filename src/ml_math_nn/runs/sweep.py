"""Sweeps of training runs on Dask: ``ml-math-nn sweep SWEEP.toml``.

A sweep file (TOML) names the options to start from, the options to vary and how, the
seeds to repeat each point with and the metric to rank by::

    config = "digits-deep.toml"   # optional: a training options file (relative to this file)
    metric = "val_acc"            # val_/test_/train_ + acc or loss (default val_acc)
    seeds = [0, 1, 2]             # each point is trained once per seed (default: the base seed)
    trials = 8                    # random draws, with distributions only
    search_seed = 0               # seed of those draws (default 0)

    [base]                        # any training option, over the config file's
    epochs = 20
    val_size = 0.2

    [vary]
    hidden = [[64], [128, 64]]            # a list: grid values
    lr = "loguniform(1e-4, 1e-1)"         # a distribution: drawn `trials` times
    dropout = "uniform(0, 0.5)"
    activation = "choice('relu', 'tanh')"

The points are every combination of the grid's values, crossed with ``trials`` random
draws when there are distributions (draw ``t`` comes from its own generator, seeded by
``[search_seed, t]``, so raising ``trials`` keeps the earlier draws).  Each point runs
once per seed; each such trial is one ordinary training run (:func:`run_training`).

Every trial's options are built and checked (:meth:`TrainConfig.from_mapping`, the checks
``train`` applies) before anything starts; a bad sweep file is one ``ValueError`` naming
the file and the key.

The trials run as Dask tasks (:func:`run_trial`), each in a temporary folder of the
worker that ran it, whose files come back to this process and are written into
``SWEEP_DIR/<trial id>/`` in one rename: a trial directory is whole or absent, whatever
happens to a worker or to this process.  The trial id is a hash of the trial's full
options (seed included), so running the same sweep again skips every trial whose
directory holds a completed run of the same options.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .options import TrainConfig, config_options, load_config, read_toml

METRICS = tuple(f"{split}_{kind}" for split in ("val", "test", "train") for kind in ("acc", "loss"))
"""The metrics a sweep may rank by: the final values of a run's summary.json."""

KEYS = ("config", "metric", "seeds", "trials", "search_seed", "base", "vary")
"""The keys of a sweep file."""

DISTRIBUTIONS = ("uniform", "loguniform", "choice")

STATUS_COMPLETED = "completed"


# -- the sweep file ----------------------------------------------------------------------
@dataclass(frozen=True)
class Distribution:
    """A distribution of one option's values: ``uniform(a, b)``, ``loguniform(a, b)``
    (:math:`\\exp U(\\ln a, \\ln b)`) or ``choice(v1, v2, ...)``.  For an integer option
    (``epochs``, ``batch_size``...) ``uniform`` and ``loguniform`` draw integers in
    :math:`[a, b]`.  Drawn real numbers are rounded to 4 significant digits, so that they
    read well in tables and file names stay stable."""

    kind: str
    args: tuple[Any, ...]
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        low, high = self.args
        if self.integer:
            if self.kind == "uniform":
                return int(rng.integers(low, high + 1))
            return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))
        x = rng.uniform(low, high) if self.kind == "uniform" else math.exp(rng.uniform(math.log(low), math.log(high)))
        return float(f"{x:.4g}")

    def probes(self) -> list[Any]:
        """Values checked before the sweep starts: every choice, or both ends and the middle."""
        if self.kind == "choice":
            return list(self.args)
        low, high = self.args
        if self.integer:
            return [low, (low + high) // 2, high]
        middle = (low + high) / 2 if self.kind == "uniform" else math.sqrt(low * high)
        return [low, middle, math.nextafter(high, low)]

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(map(repr, self.args))})"


_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.DOTALL)


def parse_distribution(text: str, integer: bool = False) -> Distribution:
    """``"loguniform(1e-4, 1e-1)"`` -> :class:`Distribution`; ``ValueError`` saying what is wrong."""
    match = _CALL.match(text)
    if match is None or match.group(1) not in DISTRIBUTIONS:
        raise ValueError(
            f"{text!r} is neither a list of values (a grid) nor a distribution: "
            "uniform(LOW, HIGH), loguniform(LOW, HIGH) or choice(V1, V2, ...)"
        )
    kind, inner = match.groups()
    try:
        args: tuple[Any, ...] = ast.literal_eval(f"({inner},)") if inner.strip() else ()
    except (ValueError, SyntaxError):
        raise ValueError(f"{text!r}: the arguments must be numbers, strings or lists") from None
    if kind == "choice":
        if not args:
            raise ValueError(f"{text!r}: choice needs at least one value")
        return Distribution(kind, tuple(list(a) if isinstance(a, tuple) else a for a in args), integer)
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{text!r}: {kind} takes two numbers, LOW and HIGH")
    low, high = args
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{text!r}: needs finite LOW < HIGH")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{text!r}: loguniform needs LOW > 0")
    if integer and not (isinstance(low, int) and isinstance(high, int)):
        raise ValueError(f"{text!r}: the option takes integers, so LOW and HIGH must be integers")
    return Distribution(kind, (low, high), integer)


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: a point (the varied options' values) and a seed."""

    id: str
    point: dict[str, Any]
    seed: int
    config: TrainConfig


@dataclass
class Sweep:
    """A parsed, checked sweep file (see :func:`load_sweep`)."""

    path: Path
    base: TrainConfig
    grid: dict[str, list[Any]]
    random: dict[str, Distribution]
    seeds: list[int]
    metric: str
    trials: int = 1
    search_seed: int = 0
    vary_order: list[str] = field(default_factory=list)

    @property
    def varied(self) -> list[str]:
        """The names of the varied options, in the file's order."""
        return list(self.vary_order)

    @property
    def maximize(self) -> bool:
        return self.metric.endswith("_acc")

    def points(self) -> list[dict[str, Any]]:
        """Every point: each combination of the grid's values, crossed with the random draws."""
        grid = [dict(zip(self.grid, values, strict=True)) for values in itertools.product(*self.grid.values())]
        draws = [{}] if not self.random else [self._draw(t) for t in range(self.trials)]
        return [{name: {**g, **d}[name] for name in self.vary_order} for g in grid for d in draws]

    def _draw(self, t: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.search_seed, t])
        return {name: dist.draw(rng) for name, dist in self.random.items()}

    def trial_list(self) -> list[Trial]:
        """Every trial (each point once per seed), its options built and checked as ``train`` does."""
        trials = []
        for point in self.points():
            for seed in self.seeds:
                shown = ", ".join(f"{k}={_text(v)}" for k, v in point.items())
                source = f"{self.path}: the trial {shown or 'of [base]'} with seed {seed}"
                config = self.base.merged({**point, "seed": seed}, source)
                trials.append(Trial(trial_id(config), point, seed, config))
        return trials


def trial_id(config: TrainConfig) -> str:
    """The directory name of a trial: a hash of its full options (the seed included)."""
    return "trial-" + hashlib.sha256(config.to_toml().encode()).hexdigest()[:10]


def _text(value: Any) -> str:
    """An option value as a table cell: lists comma-joined."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every trial's options are built and checked here.

    Raises ``ValueError`` in one line naming the file and the key: unknown keys or
    options, an empty grid, a bad distribution, a value ``train`` would refuse, a metric
    the runs do not record.
    """
    path = Path(path)
    table = read_toml(path)

    def error(key: str, message: str) -> ValueError:
        return ValueError(f"{path}: {key}: {message}")

    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise error(unknown[0], f"unknown key; a sweep file has {', '.join(KEYS)} (training options go in [base])")
    base = TrainConfig()
    if "config" in table:
        if not isinstance(table["config"], str):
            raise error("config", f"must be the path of a training options file, got {table['config']!r}")
        base = load_config(path.parent / table["config"])
    for key in ("base", "vary"):
        if not isinstance(table.get(key, {}), dict):
            raise error(key, f"must be a table ([{key}]) of option = value lines")
    base_table = table.get("base", {})
    if "seed" in base_table and "seeds" in table:
        raise error("base.seed", "give the seeds in seeds = [...] only")
    base = base.merged(base_table, f"{path} [base]")
    seeds = table.get("seeds", [base.seed])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise error("seeds", f"must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise error("seeds", f"lists a seed twice: {seeds}")
    metric = table.get("metric", "val_acc")
    if metric not in METRICS:
        raise error("metric", f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")

    options = config_options()
    grid: dict[str, list[Any]] = {}
    random: dict[str, Distribution] = {}
    for name, value in table.get("vary", {}).items():
        key = f"vary.{name}"
        if name == "seed":
            raise error(key, "give the seeds in seeds = [...], not in [vary]")
        if name not in options:
            raise error(key, f"unknown option {name!r}; known options: {', '.join(options)}")
        if isinstance(value, list):
            if not value:
                raise error(key, "empty grid: give at least one value")
            grid[name] = value
            probes = value
        elif isinstance(value, str):
            try:
                random[name] = parse_distribution(value, integer=options[name].kind is int)
            except ValueError as e:
                raise error(key, str(e)) from None
            probes = random[name].probes()
        else:
            raise error(
                key, f"must be a list of values (a grid) or a distribution such as 'uniform(0, 1)', got {value!r}"
            )
        for probe in probes:  # each value as train would check it, over the base options
            base.merged({name: probe}, f"{path}: {key} = {_text(probe)}")

    trials = table.get("trials")
    if random:
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise error("trials", f"random search draws trials = N times (an integer >= 1), got {trials!r}")
    elif trials is not None:
        raise error("trials", "draws from distributions in [vary]; there are none (lists are a grid)")
    search_seed = table.get("search_seed", 0)
    if not isinstance(search_seed, int) or isinstance(search_seed, bool):
        raise error("search_seed", f"must be an integer, got {search_seed!r}")

    sweep = Sweep(path, base, grid, random, list(seeds), metric, trials or 1, search_seed, list(table.get("vary", {})))
    all_trials = sweep.trial_list()  # each trial's options checked now, before anything starts
    if metric.startswith("val_") and any(t.config.val_size == 0 for t in all_trials):
        raise error("metric", f"{metric} needs a validation split: set val_size > 0 in [base] (or rank by test_*)")
    return sweep


# -- one trial, on a worker ---------------------------------------------------------------
def run_trial(options: Mapping[str, Any]) -> dict[str, Any]:
    """Train one run of ``options`` (a :meth:`TrainConfig.to_dict`) on a Dask worker.

    The run is written into a temporary folder exactly as ``ml-math-nn train`` writes it,
    then its files come back: ``{"status", "error", "files": {name: bytes}, "host"}``.
    A run that diverges or fails is a result (status ``diverged`` or ``failed`` with a
    one-line error), not an exception, so the sweep goes on.  BLAS uses one thread, so
    that the trials of one machine's workers do not fight over its cores.
    """
    import socket

    from threadpoolctl import threadpool_limits

    from ..train import TrainingDiverged
    from .training import run_training

    status, error = STATUS_COMPLETED, ""
    with tempfile.TemporaryDirectory(prefix="ml-math-nn-trial-") as tmp, threadpool_limits(1):
        out = Path(tmp) / "run"
        try:
            config = TrainConfig.from_mapping(options, "sweep trial")
            run_training(config, out, report=lambda _: None)
        except TrainingDiverged as e:
            status, error = "diverged", f"training diverged: {e}"
        except Exception as e:  # recorded, and the sweep goes on
            status, error = "failed", one_line(e)
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()} if out.is_dir() else {}
    return {"status": status, "error": error, "files": files, "host": socket.gethostname()}


def one_line(error: BaseException) -> str:
    """``Type: message``, on one line and at most 300 characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def write_trial_dir(sweep_dir: Path, name: str, files: Mapping[str, bytes]) -> Path:
    """Write a trial's files into ``sweep_dir/name`` in one rename (a stale copy is replaced)."""
    final = sweep_dir / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=sweep_dir))
    try:
        for file_name, data in files.items():
            if Path(file_name).name != file_name or file_name.startswith("."):
                raise ValueError(f"trial {name}: unexpected file name {file_name!r}")
            (tmp / file_name).write_bytes(data)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def is_complete(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a completed run of exactly ``config``."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        same = (run_dir / "config.toml").read_text(encoding="utf-8") == config.to_toml()
    except (OSError, ValueError):
        return False
    return same and summary.get("status") == STATUS_COMPLETED and (run_dir / "model.npz").is_file()


# -- results ------------------------------------------------------------------------------
FINAL_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


def trial_row(
    sweep: Sweep, trial: Trial, run_dir: Path | None, status: str, error: str, seconds: float
) -> dict[str, Any]:
    """One row of results.csv, read from the trial's run directory where there is one."""
    row: dict[str, Any] = {"trial": trial.id, "status": status, **{k: _text(v) for k, v in trial.point.items()}}
    row["seed"] = trial.seed
    summary: dict[str, Any] = {}
    history: list[dict[str, str]] = []
    if run_dir is not None:
        try:
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as f:
                history = list(csv.DictReader(f))
        except (OSError, ValueError):
            pass
    final = summary.get("final", {})
    for column in FINAL_COLUMNS:
        row[column] = final.get(column, "")
    values = [float(r[sweep.metric]) for r in history if r.get(sweep.metric)]
    finite = [v for v in values if math.isfinite(v)]
    row[f"best_{sweep.metric}"] = (max(finite) if sweep.maximize else min(finite)) if finite else ""
    row["epochs"] = summary.get("epochs_run", "")
    row["time_s"] = summary.get("wall_time_s", round(seconds, 3))
    row["error"] = error
    return row


def results_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """results.csv: one row per trial; columns without any value are left out."""
    columns = [
        c for c in (rows[0] if rows else {}) if c in ("trial", "status", "error") or any(r[c] != "" for r in rows)
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclass
class Point:
    """A point of the sweep over its seeds: the final metric's mean and spread."""

    values: dict[str, str]
    scores: list[float]
    trials: list[str]
    failed: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation over the seeds (0 for one seed)."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def rank_points(sweep: Sweep, rows: Sequence[Mapping[str, Any]]) -> list[Point]:
    """The points, best mean of the metric first; points with no completed trial last."""
    points: dict[tuple[str, ...], Point] = {}
    for row in rows:
        key = tuple(str(row[name]) for name in sweep.varied)
        point = points.setdefault(key, Point(dict(zip(sweep.varied, key, strict=True)), [], [], 0))
        value = row.get(sweep.metric, "")
        if row["status"] == STATUS_COMPLETED and value != "" and math.isfinite(float(value)):
            point.scores.append(float(value))
            point.trials.append(str(row["trial"]))
        else:
            point.failed += 1
    sign = -1.0 if sweep.maximize else 1.0
    return sorted(points.values(), key=lambda p: (not p.scores, sign * p.mean if p.scores else 0.0))


def summary_table(sweep: Sweep, ranked: Sequence[Point], top: int = 10) -> str:
    """The ranked points as aligned text: mean and spread over the seeds."""
    header = ["rank", f"{sweep.metric} mean", "± sd", "seeds", *sweep.varied]
    lines = []
    for i, p in enumerate(ranked[:top], 1):
        seeds = f"{len(p.scores)}" + (f" ({p.failed} failed)" if p.failed else "")
        mean, sd = (f"{p.mean:.4f}", f"{p.sd:.4f}") if p.scores else ("failed", "")
        lines.append([str(i), mean, sd, seeds, *p.values.values()])
    widths = [max(len(r[j]) for r in [header, *lines]) for j in range(len(header))]
    text = [
        "  ".join(c.rjust(w) if j < 4 else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *lines]
    ]
    more = f"\n... and {len(ranked) - top} more points in results.csv" if len(ranked) > top else ""
    return "\n".join(t.rstrip() for t in text) + more


# -- running ------------------------------------------------------------------------------
class Stop:
    """Ctrl-C during a sweep: the first asks to stop (finished trials are written, the
    rest cancelled), a second stops at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def catching(self, say: Callable[[str], None]) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            say("interrupt: stopping the sweep; finished trials are kept (Ctrl-C again to abort)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (``tcp://HOST:PORT``), or
    of an embedded ``LocalCluster`` of ``workers`` single-threaded processes (default: one
    per CPU this process may use)."""
    try:
        import distributed
    except ImportError:
        raise ValueError("sweep runs on Dask: pip install 'ml-math-nn[sweep]' (dask[distributed])") from None
    dask: Any = distributed  # its calls are not all typed
    Client, LocalCluster = dask.Client, dask.LocalCluster
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ValueError(f"--scheduler {scheduler}: cannot connect ({one_line(e)})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    # The worker processes start with SIGINT ignored (an ignored signal stays ignored in a
    # child): Ctrl-C is this process's to handle, and closing the cluster ends them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class SweepResult:
    out_dir: Path
    rows: list[dict[str, Any]]
    ranked: list[Point]
    skipped: int
    interrupted: bool


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    say: Callable[[str], None] = print,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 1,
) -> SweepResult:
    """Run every trial of ``sweep`` not yet completed in ``out_dir``; write results.csv and sweep.html.

    ``say`` receives one line per finished trial (with the counts done, running, failed,
    the best so far and the time left) and the ranked summary.  ``retries``: times a
    trial whose task raised is resubmitted (a worker that dies mid-trial has its task
    rescheduled by the scheduler itself, up to ``distributed.scheduler.allowed-failures``).
    Ctrl-C stops after writing what finished; :attr:`SweepResult.interrupted` says so.
    """
    from ..results.sweep_report import write_sweep_report
    from .persistence import write_text
    from .rundir import prepare_out_dir

    out = prepare_out_dir(out_dir)
    for stale in out.glob(".*.partial"):  # a rename that never happened
        shutil.rmtree(stale, ignore_errors=True)
    trials = sweep.trial_list()
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for trial in trials:
        if is_complete(out / trial.id, trial.config):
            rows[trial.id] = trial_row(sweep, trial, out / trial.id, STATUS_COMPLETED, "", 0.0)
        else:
            todo.append(trial)
    skipped = len(rows)
    where = scheduler or f"{workers or 'one per CPU'} local worker processes"
    say(
        f"sweep {sweep.path}: {len(trials)} trials "
        f"({len(trials) // len(sweep.seeds)} points x {len(sweep.seeds)} seeds)"
        + (f", {skipped} already completed in {out}" if skipped else "")
        + (f"; running {len(todo)} on {where}" if todo else "")
    )
    stop = Stop()
    if todo:
        with stop.catching(say), dask_client(scheduler, workers) as client:
            _run_trials(sweep, todo, client, out, rows, say, stop, retries, skipped, len(trials))
    ordered = [rows[t.id] for t in trials if t.id in rows]
    ranked = rank_points(sweep, ordered)
    write_text(out / "results.csv", results_csv(ordered))
    write_sweep_report(out / "sweep.html", sweep, ordered, ranked)
    return SweepResult(out, ordered, ranked, skipped, stop.requested)


def _run_trials(
    sweep: Sweep,
    todo: Sequence[Trial],
    client: Any,
    out: Path,
    rows: dict[str, dict[str, Any]],
    say: Callable[[str], None],
    stop: Stop,
    retries: int,
    done_before: int,
    total: int,
) -> None:
    import distributed

    wait: Any = distributed.wait
    start = time.perf_counter()
    by_key = {}
    for trial in todo:
        future = client.submit(
            run_trial, trial.config.to_dict(), key=f"ml-math-nn-{trial.id}", pure=False, retries=retries
        )
        by_key[future.key] = (future, trial)
    pending = {f for f, _ in by_key.values()}
    finished = failed = 0
    best: tuple[float, str] | None = None
    for row in rows.values():
        if row.get(sweep.metric, "") != "":
            best = _better(sweep, best, float(row[sweep.metric]), str(row["trial"]))
    while pending and not stop.requested:
        try:
            done, _ = wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED")
        except TimeoutError:
            continue
        for future in done:
            pending.discard(future)
            trial = by_key[future.key][1]
            try:
                result = future.result()
                status, error = result["status"], result["error"]
                run_dir = write_trial_dir(out, trial.id, result["files"]) if result["files"] else None
            except Exception as e:  # the task itself failed (e.g. its workers kept dying)
                status, error, run_dir = "failed", one_line(e).splitlines()[0], None
            row = trial_row(sweep, trial, run_dir, status, error, time.perf_counter() - start)
            rows[trial.id] = row
            finished += 1
            failed += status != STATUS_COMPLETED
            if status == STATUS_COMPLETED and row.get(sweep.metric, "") != "":
                best = _better(sweep, best, float(row[sweep.metric]), trial.id)
            left = len(pending)
            elapsed = time.perf_counter() - start
            eta = f", ETA {_duration(elapsed / finished * left)}" if left else ""
            running = _running(client, pending)
            shown = " ".join(f"{k}={_text(v)}" for k, v in trial.point.items())
            outcome = f"{sweep.metric} {row[sweep.metric]:.4f}" if row.get(sweep.metric, "") != "" else error
            best_text = f"best {sweep.metric} {best[0]:.4f} ({best[1]})" if best else "no best yet"
            say(
                f"[{done_before + finished}/{total}] {trial.id} {shown} seed={trial.seed}: {status}, {outcome} "
                f"| running {running}, failed {failed}, {best_text}{eta}"
            )
    for future in pending:
        future.cancel()


def _better(sweep: Sweep, best: tuple[float, str] | None, value: float, name: str) -> tuple[float, str] | None:
    if not math.isfinite(value):
        return best
    if best is None or (value > best[0] if sweep.maximize else value < best[0]):
        return (value, name)
    return best


def _running(client: Any, pending: set[Any]) -> int:
    """How many of the pending trials a worker is running now."""
    keys = {f.key for f in pending}
    try:  # a worker may hold more tasks than threads (queued on it); count at most one per thread
        processing, threads = client.processing(), client.nthreads()
    except Exception:  # the count is for display only
        return 0
    return sum(min(threads.get(w, 1), sum(key in keys for key in tasks)) for w, tasks in processing.items())


def default_out_dir(sweep_file: str | Path) -> Path:
    """``sweeps/<name of the sweep file>``: the same for every run of one sweep file, so that
    running it again continues it."""
    return Path("sweeps") / Path(sweep_file).stem


def print_summary(result: SweepResult, sweep: Sweep, say: Callable[[str], None] = print) -> None:
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    say("")
    say(summary_table(sweep, result.ranked))
    best = result.ranked[0] if result.ranked and result.ranked[0].scores else None
    if best is not None:
        top = max(best.trials, key=lambda t: float(next(r for r in result.rows if r["trial"] == t)[sweep.metric]))
        say(f"best point's best trial: {result.out_dir / top}")
    say(
        ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f"; results.csv and sweep.html in {result.out_dir}"
    )
    if not sweep.metric.startswith("val_"):
        say(f"note: ranked by {sweep.metric}; choosing by a test metric selects on the test set (rank by val_*)")
