"""``ml-math-nn sweep`` on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (started here, always stopped), the embedded LocalCluster, a worker
killed mid-trial, Ctrl-C and resume, bad sweep files; and GridSearchCV over the estimator
through joblib's Dask backend on the same cluster.  Trials are tiny (two epochs of a narrow
network) so that the file stays quick."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_math_nn.runs import cli
from ml_math_nn.runs.sweep import load_sweep, run_sweep

pytest.importorskip("distributed", reason="the sweep tests need dask[distributed] (the test extra installs it)")

ROOT = Path(__file__).resolve().parents[1]

TINY = """
metric = "val_acc"
seeds = [0, 1]
[base]
val_size = 0.2
epochs = {epochs}
hidden = [8]
batch_size = 64
[vary]
lr = [0.05, 0.2]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes (no nanny: killing the process
    kills the worker) on 127.0.0.1."""

    def __init__(self) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        port = self.address.rsplit(":", 1)[1]
        self._start(["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])

    def _start(self, args: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.procs.append(proc)
        return proc

    def add_worker(self) -> None:
        args = ["worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
        self.workers.append(self._start(args))

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="30s")

    def ensure_workers(self, n: int) -> None:
        self.workers = [w for w in self.workers if w.poll() is None]
        while len(self.workers) < n:
            self.add_worker()
        with self.client() as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        c.ensure_workers(2)
        yield c
    finally:
        c.stop()


def sweep_file(tmp_path: Path, epochs: int = 2, text: str = TINY) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text.format(epochs=epochs))
    return path


def read_results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_whole_run(run_dir: Path) -> None:
    """A trial directory is a run as train writes it: its options, metrics, summary and model."""
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    for name in ("config.toml", "metrics.csv", "model.npz", "model.json"):
        assert (run_dir / name).is_file(), name


# -- bad sweep files: refused before anything starts -------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[vary]\nlr = []\n[base]\nval_size = 0.2", "vary.lr: empty grid"),
        ("[vary]\nwidth = [1, 2]\n[base]\nval_size = 0.2", "vary.width: unknown option 'width'"),
        ('trials = 2\n[vary]\nlr = "lognormal(1, 2)"\n[base]\nval_size = 0.2', "vary.lr: 'lognormal(1, 2)' is neither"),
        ('trials = 2\n[vary]\nlr = "loguniform(0, 1)"\n[base]\nval_size = 0.2', "loguniform needs LOW > 0"),
        ("[vary]\ndropout = [0.1, 1.5]\n[base]\nval_size = 0.2", "vary.dropout = 1.5: dropout must be in [0, 1)"),
        ('[vary]\nlr = "uniform(0.1, 1)"\n[base]\nval_size = 0.2', "trials: random search draws trials = N"),
        ("[vary]\nlr = [0.1]", "metric: val_acc needs a validation split"),
        ('metric = "accuracy"\n[vary]\nlr = [0.1]', "metric: unknown metric 'accuracy'"),
        ("seeds = []\n[base]\nval_size = 0.2", "seeds: must be a non-empty list"),
        ("[vary]\nseed = [1, 2]\n[base]\nval_size = 0.2", "vary.seed: give the seeds in seeds"),
        ("epochs = 3", "epochs: unknown key"),
        (
            "[base]\nval_size = 0.2\nbatch_norm = true\n[vary]\nbatch_size = [1, 8]",
            "batch norm needs a batch size >= 2",
        ),
        ('[base]\nval_size = 0.2\noptimizer = "adam"\n[vary]\nbeta1 = [0.9, 1.0]', "beta1"),
    ],
)
def test_a_bad_sweep_file_fails_before_anything_starts(tmp_path: Path, text: str, message: str, capsys: Any) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ml-math-nn: error: {path}"), err
    assert message in err and "\n" not in err
    assert not out.exists()


def test_grid_and_random_points_are_drawn_the_same_every_time(tmp_path: Path) -> None:
    text = (
        "trials = 3\nseeds = [0, 1]\n[base]\nval_size = 0.2\n[vary]\nhidden = [[8], [16, 8]]\n"
        'lr = "loguniform(1e-4, 1e-1)"\nbatch_size = "uniform(16, 64)"\nepochs = "loguniform(1, 30)"\n'
        "activation = \"choice('relu', 'tanh')\"\n"
    )
    path = sweep_file(tmp_path, text=text)
    trials = load_sweep(path).trial_list()
    assert len(trials) == 2 * 3 * 2 and len({t.id for t in trials}) == 12
    assert [t.point for t in trials] == [t.point for t in load_sweep(path).trial_list()]
    for t in trials:
        assert 1e-4 <= t.point["lr"] <= 1e-1 and 16 <= t.point["batch_size"] <= 64
        assert isinstance(t.point["batch_size"], int) and t.point["activation"] in ("relu", "tanh")
        assert isinstance(t.point["epochs"], int) and 1 <= t.point["epochs"] <= 30
        assert t.config.lr == t.point["lr"] and t.config.seed == t.seed
    # more trials keep the earlier draws
    more = load_sweep(sweep_file(tmp_path, text=text.replace("trials = 3", "trials = 4"))).trial_list()
    assert {t.id for t in trials} <= {t.id for t in more}


# -- the embedded cluster ----------------------------------------------------------------
def test_the_embedded_local_cluster_runs_a_sweep_and_records_a_diverged_trial(tmp_path: Path, capsys: Any) -> None:
    text = TINY.replace("seeds = [0, 1]", "seeds = [0]").replace("lr = [0.05, 0.2]", "lr = [0.05, 1e30]")
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(sweep_file(tmp_path, text=text)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 trials (2 points x 1 seeds); running 2 on one per CPU local worker processes" in printed
    good, bad = read_results(out)
    assert (good["lr"], good["status"], bad["lr"], bad["status"]) == ("0.05", "completed", "1e+30", "diverged")
    assert_whole_run(out / good["trial"])
    assert float(good["best_val_acc"]) >= float(good["val_acc"]) and good["epochs"] == "2" and good["error"] == ""
    assert bad["error"].startswith("training diverged: loss became nan at epoch 1")
    assert json.loads((out / bad["trial"] / "summary.json").read_text())["status"] == "diverged"
    page = (out / "sweep.html").read_text()
    assert "Ranking" in page and "data:image/png;base64," in page
    assert "rank  val_acc mean" in printed and "1 completed, 1 diverged" in printed


def test_a_trial_that_fails_is_a_result_with_a_one_line_error() -> None:
    from ml_math_nn.runs.sweep import run_trial

    result = run_trial({"dataset": "csv:nowhere.csv", "epochs": 1})
    assert result["status"] == "failed" and result["files"] == {}
    assert "nowhere.csv: file not found" in result["error"] and "\n" not in result["error"]


# -- a real scheduler and workers ----------------------------------------------------------
def test_a_sweep_on_a_scheduler_survives_a_ctrl_c_and_resumes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.ensure_workers(2)
    path, out = sweep_file(tmp_path, epochs=3), tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "ml_math_nn",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--scheduler",
        cluster.address,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: list(out.glob("trial-*")), 120, "a finished trial")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "run the same command again" in stderr
    done = sorted(p.name for p in out.glob("trial-*"))
    assert 1 <= len(done) and not list(out.glob(".*"))  # no half-written trial
    for name in done:
        assert_whole_run(out / name)
    assert {r["trial"] for r in read_results(out)} >= set(done)

    lines: list[str] = []
    result = run_sweep(load_sweep(path), out, lines.append, scheduler=cluster.address)
    assert result.skipped == len(done) and f"{len(done)} already completed" in lines[0]
    assert len(result.rows) == 4 and all(r["status"] == "completed" for r in result.rows)
    assert {r["trial"] for r in result.rows} >= set(done)
    for row in result.rows:
        assert_whole_run(out / row["trial"])


def test_a_worker_killed_mid_trial_has_its_trial_retried_and_the_sweep_completes(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.ensure_workers(2)
    path, out = sweep_file(tmp_path, epochs=3), tmp_path / "sweep"
    lines: list[str] = []
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(run_sweep(load_sweep(path), out, lines.append, scheduler=cluster.address))
    )
    thread.start()
    try:
        with cluster.client() as client:
            pids = client.run(os.getpid)

            def busy_worker() -> str | None:
                running = [w for w, keys in client.processing().items() if any("ml-math-nn-trial" in k for k in keys)]
                return running[0] if running else None

            victim = wait_for(busy_worker, 60, "a worker running a trial")
            os.kill(pids[victim], signal.SIGKILL)
    finally:
        thread.join(timeout=240)
    assert not thread.is_alive()
    (result,) = results
    assert len(result.rows) == 4 and [r["status"] for r in result.rows] == ["completed"] * 4, result.rows
    for row in result.rows:
        assert_whole_run(out / row["trial"])
    assert read_results(out) == [{k: str(v) for k, v in r.items()} for r in result.rows]


GRID_SEARCH = """
import json, sys
import joblib
from distributed import Client
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from ml_math_nn import MLPClassifier

def search():
    # hidden_layer_sizes, alpha, max_iter, random_state: names of scikit-learn's MLPClassifier too
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    return GridSearchCV(model, {"alpha": [0.0, 1e-3]}, cv=2, n_jobs=-1)

def executed(client):
    return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())

if __name__ == "__main__":
    X, y = load_digits(return_X_y=True)
    here = search().fit(X[:400], y[:400])
    with Client(sys.argv[1], timeout="30s") as client:
        before = executed(client)
        with joblib.parallel_backend("dask"):
            there = search().fit(X[:400], y[:400])
        ran = executed(client) - before
    print(json.dumps({"ran": ran, "here": here.cv_results_["mean_test_score"].tolist(),
                      "there": there.cv_results_["mean_test_score"].tolist()}))
"""


def test_grid_search_over_the_estimator_runs_on_the_cluster_through_joblib(tmp_path: Path) -> None:
    """GridSearchCV through joblib's Dask backend, as a user runs it: from a fresh interpreter, on a
    scheduler and worker of its own (the shared ones' workers were killed by the tests above)."""
    cluster = Cluster()
    try:
        # two workers: with one worker thread in all, joblib's n_jobs=-1 means 1 and it runs in-process
        cluster.ensure_workers(2)
        script = tmp_path / "grid_search.py"
        script.write_text(GRID_SEARCH, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script), cluster.address], capture_output=True, text=True, timeout=240, check=False
        )
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ran"] >= 4  # the 2 x 2 fits ran as Dask tasks on the workers
    # the same scores as the search in that process: the same fits, run elsewhere
    assert result["there"] == result["here"]
