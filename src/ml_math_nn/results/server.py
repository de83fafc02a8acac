"""The web dashboard of ``ml-math-nn serve``: runs, live curves and the network explorer.

One :class:`http.server.ThreadingHTTPServer` serves the static page (``results/web/``,
shipped with the package: no CDN, works offline) and a JSON API under ``/api/`` (the
table in the README).  The server is the standard library's: the API is nine small
routes, and a framework would add a dependency and its own update cadence for nothing
the page needs.

What it reads, and how it refuses the rest:

* only run directories found under ``RUNS_DIR`` (and the ``--model`` directory named on
  the command line).  A request names a run by its id, which is looked up among the runs
  found by scanning; no path from a request ever reaches the file system.  A run whose
  real path (symlinks resolved) lies outside the root is not listed, and a run file that
  resolves outside its run is not read;
* model files through :func:`ml_math_nn.runs.persistence.load_model` (never unpickles);
* the test split of the dataset a model was trained on, as ``ml-math-nn evaluate`` loads
  it; ``csv:``/``npz:`` datasets only when their file lies under ``RUNS_DIR``.

Listening on loopback, it answers only requests whose ``Host`` is its own address (403
otherwise), so a web page of another site cannot reach it through DNS rebinding.
Request bodies over :data:`MAX_BODY` bytes get 413, malformed JSON 400, unknown routes
404, other methods 405; every error is a JSON object ``{"error": message}``, and the server goes on serving.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .explorer import Explorer, TestSet

log = logging.getLogger(__name__)

WEB = Path(__file__).parent / "web"
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
"""The page's files by URL: a fixed table, so no request path is ever joined to a folder."""

MAX_BODY = 1 << 20
"""Largest request body accepted, in bytes (a 512x512 drawing is about 350 KB)."""
MAX_EXAMPLES = 100
"""Most test rows one ``/api/examples`` request returns."""
MAX_RUN_FILE = 1 << 28
"""Largest run file read (a model or checkpoint of a wide network is tens of MB)."""
SCAN_DEPTH = 3
"""How deep below RUNS_DIR run directories are looked for."""
RUN_FILES = ("config.toml", "summary.json", "metrics.csv", "model.npz")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Addresses that only this machine reaches."""
STALE_S = 120.0
"""A run with no summary.json whose files have not changed for this long (or five epochs'
time, if longer) is shown as "stopped" rather than "running"."""


class ApiError(Exception):
    """An error answered with ``status`` and the JSON ``{"error": message}``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class RunIndex:
    """The runs under ``root`` by id (their path relative to ``root``, with ``/``).

    Parameters
    ----------
    root : path
        RUNS_DIR.
    model : path, optional
        A run directory named on the command line; listed under its path relative to
        ``root`` when inside it, else under the id ``model``.
    """

    def __init__(self, root: str | Path, model: str | Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.model_dir = Path(model).resolve() if model is not None else None
        self.model_id: str | None = None
        self._runs: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.scan()

    def scan(self) -> dict[str, Path]:
        """Look for run directories (holding config.toml or summary.json) again."""
        found: dict[str, Path] = {}
        if self.root.is_dir():
            self._walk(self.root, 0, found)
        if self.model_dir is not None:
            if _inside(self.model_dir, self.root):
                self.model_id = self.model_dir.relative_to(self.root).as_posix() or "."
            else:
                self.model_id = "model"
            found.setdefault(self.model_id, self.model_dir)
        with self._lock:
            self._runs = found
        return dict(found)

    def _walk(self, folder: Path, depth: int, found: dict[str, Path]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        names = {e.name for e in entries}
        if "config.toml" in names or "summary.json" in names:
            real = folder.resolve()
            if _inside(real, self.root):
                found[folder.relative_to(self.root).as_posix() or "."] = real
            return
        if depth >= SCAN_DEPTH:
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            sub = Path(entry.path)
            if _inside(sub.resolve(), self.root):  # a symlink out of the root is not followed
                self._walk(sub, depth + 1, found)

    def path(self, run_id: str) -> Path:
        """The directory of run ``run_id`` (404 if no such run)."""
        with self._lock:
            path = self._runs.get(run_id)
        if path is None:
            path = self.scan().get(run_id)
        if path is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no run {run_id!r} under the runs folder")
        return path

    def allowed(self, path: Path) -> bool:
        return _inside(path, self.root) or (self.model_dir is not None and _inside(path, self.model_dir))


class App:
    """The server's state: the run index and a cache of explorers (one per model file)."""

    def __init__(self, root: str | Path, model: str | Path | None = None) -> None:
        self.index = RunIndex(root, model)
        self._explorers: dict[str, tuple[tuple[int, int], Explorer]] = {}
        self._lock = threading.Lock()

    # -- run files -------------------------------------------------------------------
    def run_file(self, run_dir: Path, name: str) -> Path | None:
        """``run_dir/name`` if it is a regular file that really lies inside the run (else None)."""
        path = run_dir / name
        try:
            real = path.resolve()
            if not (_inside(real, run_dir) and self.index.allowed(real) and real.is_file()):
                return None
            if real.stat().st_size > MAX_RUN_FILE:
                raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{name}: larger than the server reads")
        except OSError:
            return None
        return real

    def _text(self, run_dir: Path, name: str) -> str | None:
        path = self.run_file(run_dir, name)
        return path.read_text(encoding="utf-8", errors="replace") if path is not None else None

    def _summary(self, run_dir: Path) -> dict[str, Any]:
        text = self._text(run_dir, "summary.json")
        try:
            summary = json.loads(text) if text else {}
        except json.JSONDecodeError:
            return {}
        return summary if isinstance(summary, dict) else {}

    def _config(self, run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
        if "config" in summary and isinstance(summary["config"], dict):
            return dict(summary["config"])
        path = self.run_file(run_dir, "config.toml")
        if path is None:
            return {}
        from ..runs.options import load_config

        try:
            return load_config(path).to_dict()
        except (ValueError, OSError):
            return {}

    def _history(self, run_dir: Path) -> list[dict[str, float]]:
        text = self._text(run_dir, "metrics.csv")
        if not text:
            return []
        history = []
        for row in csv.DictReader(io.StringIO(text)):
            record = {}
            for key, value in row.items():
                try:
                    record[str(key)] = float(value)
                except (TypeError, ValueError):
                    continue
            history.append(record)
        return history

    def _mtime(self, run_dir: Path, name: str) -> float | None:
        path = self.run_file(run_dir, name)
        return path.stat().st_mtime if path is not None else None

    def run_state(self, run_id: str) -> dict[str, Any]:
        """What the runs table and a run page show of a run (history included)."""
        run_dir = self.index.path(run_id)
        summary = self._summary(run_dir)
        config = self._config(run_dir, summary)
        history = self._history(run_dir)
        started = self._mtime(run_dir, "config.toml")
        updated = self._mtime(run_dir, "metrics.csv") or started
        epochs = int(config.get("epochs", 0) or 0)
        done = len(history)
        per_epoch = (updated - started) / done if done and started is not None and updated is not None else None
        status = str(summary.get("status", ""))
        if not status:
            quiet = time.time() - (updated or 0.0)
            status = "running" if quiet < max(STALE_S, 5 * (per_epoch or 0.0)) else "stopped"
        eta = per_epoch * max(epochs - done, 0) if status == "running" and per_epoch is not None else None
        monitor = str(config.get("monitor", "val_loss")) if config.get("early_stopping") else "test_acc"
        best = _best_epoch(history, monitor)
        dataset = summary.get("dataset", {}) if isinstance(summary.get("dataset"), dict) else {}
        hidden = config.get("hidden", [])
        widths = [dataset.get("n_features", "in"), *hidden, dataset.get("n_classes", "out")]
        when = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds") if started else None
        test_acc = [r["test_acc"] for r in history if "test_acc" in r]
        return {
            "id": run_id,
            "name": run_dir.name,
            "dataset": config.get("dataset", dataset.get("name", "")),
            "architecture": "-".join(map(str, widths)) + f" {config.get('activation', '')}".rstrip(),
            "optimizer": config.get("optimizer", ""),
            "lr": config.get("lr"),
            "epochs": epochs,
            "epochs_run": done,
            "status": status,
            "date": when,
            "best_epoch": best,
            "best_metric": monitor,
            "best_test_acc": max(test_acc) if test_acc else None,
            "final_test_acc": test_acc[-1] if test_acc else None,
            "eta_s": eta,
            "has_model": self.run_file(run_dir, "model.npz") is not None,
            "config": config,
            "summary": summary,
            "history": history,
        }

    def runs(self) -> list[dict[str, Any]]:
        rows = []
        for run_id in self.index.scan():
            state = self.run_state(run_id)
            del state["history"], state["summary"]
            rows.append(state)
        return rows

    # -- models ----------------------------------------------------------------------
    def explorer(self, run_id: str) -> Explorer:
        """The explorer of run ``run_id``'s model, loaded once per version of model.npz."""
        run_dir = self.index.path(run_id)
        path = self.run_file(run_dir, "model.npz")
        if path is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"run {run_id!r} has no model.npz (yet)")
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._explorers.get(run_id)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            explorer = self._load_explorer(run_dir)
            self._explorers[run_id] = (stamp, explorer)
            return explorer

    def _load_explorer(self, run_dir: Path) -> Explorer:
        from ..runs.options import TrainConfig
        from ..runs.persistence import load_model

        model = load_model(run_dir)
        config = TrainConfig.from_mapping(model.meta.get("config", {}), f"{run_dir.name}/model.json")
        name = str(model.meta.get("dataset", config.dataset))
        return Explorer(model, name, self._test_set(config, model))

    def _test_set(self, config: Any, model: Any) -> TestSet | None:
        from ..runs.builders import load_configured_dataset

        kind, _, file = str(config.dataset).partition(":")
        if file and kind in ("csv", "npz"):
            candidates = [Path(file), Path(config.data_dir or "data") / file]
            if not any(c.is_file() and self.index.allowed(c.resolve()) for c in candidates):
                return None
        try:
            ds = load_configured_dataset(config)
        except (ValueError, OSError) as e:
            log.warning("test split of %s not loaded: %s", config.dataset, e)
            return None
        if list(ds.class_names) != list(model.class_names):
            return None
        return TestSet(model.transform(ds.X_test, config.dataset), np.asarray(ds.X_test), ds.y_test, ds.image_shape)


def _best_epoch(history: list[dict[str, float]], metric: str) -> int | None:
    values = [(r[metric], int(r["epoch"])) for r in history if metric in r and "epoch" in r]
    if not values:
        return None
    higher = metric.endswith(("_acc", "_r2"))  # scores; losses and errors (_loss, _mse, _mae) are lower-better
    pick = max if higher else min
    return pick(values, key=lambda v: (v[0], -v[1]) if higher else (v[0], v[1]))[1]


# -- the API --------------------------------------------------------------------------
def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"missing query parameter {name!r}")
    return values[0]


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name}: expected an integer, got {value!r}") from None


def _ink(drawing: Any) -> np.ndarray[Any, Any]:
    """The drawing ``{"width", "height", "data": base64 of width*height bytes}`` as ink 0..1."""
    if not isinstance(drawing, dict):
        raise ApiError(HTTPStatus.BAD_REQUEST, "drawing: expected an object {width, height, data}")
    width, height = _int(drawing.get("width"), "drawing.width"), _int(drawing.get("height"), "drawing.height")
    try:
        raw = base64.b64decode(str(drawing.get("data", "")), validate=True)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "drawing.data: not base64") from None
    if not (0 < width <= 512 and 0 < height <= 512) or len(raw) != width * height:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"drawing: {len(raw)} bytes for {width}x{height} (at most 512x512)")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width) / 255.0


def _input(app: App, body: dict[str, Any]) -> tuple[Explorer, np.ndarray[Any, Any], int | None]:
    """The explorer of ``body["run"]`` and the raw row of ``body["index"]`` or ``body["drawing"]``."""
    if not isinstance(body.get("run"), str):
        raise ApiError(HTTPStatus.BAD_REQUEST, "run: expected the id of a run")
    explorer = app.explorer(body["run"])
    if "index" in body:
        raw, label = explorer.raw_test_row(_int(body["index"], "index"))
        return explorer, raw, label
    if "drawing" in body:
        return explorer, explorer.raw_from_ink(_ink(body["drawing"])), None
    raise ApiError(HTTPStatus.BAD_REQUEST, "expected 'index' (a test row) or 'drawing'")


def api_runs(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/runs``: every run's row of the runs table."""
    return {"root": app.index.root.name, "default_model": app.index.model_id, "runs": app.runs()}


def api_run(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/run?id=ID``: one run, with its summary and per-epoch history."""
    return app.run_state(_one(query, "id"))


def api_metrics(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/metrics?id=ID&since=N``: the epochs after the first N and the run's status (what a page polls)."""
    since = _int(query.get("since", ["0"])[0], "since")
    state = app.run_state(_one(query, "id"))
    keep = ("status", "epochs", "epochs_run", "eta_s", "best_epoch", "best_metric", "summary", "has_model")
    return {"since": since, "history": state["history"][max(since, 0) :], **{k: state[k] for k in keep}}


def api_compare(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/compare?id=A&id=B...``: the runs' histories and their options, those that differ first."""
    ids = query.get("id", [])
    if not 1 <= len(ids) <= 12:
        raise ApiError(HTTPStatus.BAD_REQUEST, "id: give 1 to 12 runs to compare")
    states = [app.run_state(i) for i in ids]
    keys = sorted({k for s in states for k in s["config"]})
    values = {k: [s["config"].get(k) for s in states] for k in keys}
    differ = [k for k in keys if any(v != values[k][0] for v in values[k])]
    options = [
        {"option": k, "values": values[k], "differs": k in differ}
        for k in differ + [k for k in keys if k not in differ]
    ]
    runs = [{k: s[k] for k in ("id", "name", "status", "history", "best_epoch", "final_test_acc")} for s in states]
    return {"runs": runs, "options": options}


def api_evaluation(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/evaluation?id=ID``: confusion matrix, per-class metrics and mistakes on the test split."""
    return app.explorer(_one(query, "id")).evaluation()


def api_examples(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/examples?id=ID&index=K...``: raw pixels and labels of test rows."""
    explorer = app.explorer(_one(query, "id"))
    indices = [_int(i, "index") for i in query.get("index", [])]
    if not 1 <= len(indices) <= MAX_EXAMPLES:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"index: give 1 to {MAX_EXAMPLES} test rows")
    examples = []
    for index in indices:
        raw, label = explorer.raw_test_row(index)
        examples.append({"index": index, "label": label, "pixels": raw[0].tolist()})
    return {"shape": explorer.image_shape, "examples": examples}


def api_model(app: App, query: dict[str, list[str]]) -> Any:
    """``GET /api/model?id=ID``: the model's classes, input shape and layers."""
    explorer = app.explorer(_one(query, "id"))
    network = explorer.model.network
    return {
        "class_names": explorer.model.class_names,
        "dataset": explorer.dataset,
        "image_shape": explorer.image_shape,
        "n_in": network.n_in,
        "n_test": len(explorer.test.y) if explorer.test is not None else 0,
        "layers": [
            {"index": i, "type": type(layer).__name__, "config": layer.config()}
            for i, layer in enumerate(network.layers)
        ],
    }


def api_explain(app: App, body: dict[str, Any]) -> Any:
    """``POST /api/explain``: activations, probabilities and the input gradient of a test row or drawing."""
    explorer, raw, label = _input(app, body)
    target = body.get("target")
    result = explorer.explain(raw, None if target is None else _int(target, "target"))
    return {**result, "label": label, "image_shape": explorer.image_shape}


def api_step(app: App, body: dict[str, Any]) -> Any:
    """``POST /api/step``: one backward pass and one SGD step on a copy of the model."""
    explorer, raw, label = _input(app, body)
    if body.get("label") is not None:
        label = _int(body["label"], "label")
    if label is None:
        raise ApiError(HTTPStatus.BAD_REQUEST, "label: a drawing needs a label for the learning step")
    lr = body.get("lr", 0.1)
    if isinstance(lr, bool) or not isinstance(lr, int | float):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"lr: expected a number, got {lr!r}")
    return explorer.sgd_step(raw, label, float(lr))


GET_ROUTES: dict[str, Callable[[App, dict[str, list[str]]], Any]] = {
    "/api/runs": api_runs,
    "/api/run": api_run,
    "/api/metrics": api_metrics,
    "/api/compare": api_compare,
    "/api/model": api_model,
    "/api/evaluation": api_evaluation,
    "/api/examples": api_examples,
}
POST_ROUTES: dict[str, Callable[[App, dict[str, Any]], Any]] = {"/api/explain": api_explain, "/api/step": api_step}


class Handler(BaseHTTPRequestHandler):
    """Answers one request: a static file, a JSON route, or a JSON error."""

    server: Server
    server_version = "ml-math-nn"
    timeout = 30  # a client that stops sending mid-request is dropped
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
        )
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(_finite(value), allow_nan=False).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message, "status": int(status)})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line, a URL or headers too
        long, a method with no ``do_`` handler) as JSON like every other error, and an unknown
        method as 405 rather than 501: the request is wrong, not the server."""
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported; use GET or POST"
        status = HTTPStatus(code)
        self._error(status, message or status.phrase)

    def _guarded(self, answer: Callable[[], None]) -> None:
        try:
            host = self.headers.get("Host", "")
            if self.server.allowed_hosts is not None and host not in self.server.allowed_hosts:
                # A page of another site reaching this loopback server by DNS rebinding names its own host.
                raise ApiError(HTTPStatus.FORBIDDEN, f"Host {host!r}: this server answers only {self.server.url}")
            answer()
        except ApiError as e:
            self._error(e.status, str(e))
        except ValueError as e:  # bad input found by the library: one line, 400
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except Exception as e:  # a bug or an unreadable file: say so, keep serving
            log.exception("error answering %s", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}")

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path in STATIC:
            name, content_type = STATIC[url.path]
            self._send(HTTPStatus.OK, (WEB / name).read_bytes(), content_type)
            return
        route = GET_ROUTES.get(url.path)
        if route is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such page or API route: {url.path}")
        self._json(HTTPStatus.OK, route(self.server.app, parse_qs(url.query)))

    def _post(self) -> None:
        url = urlsplit(self.path)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length")
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, f"Content-Length: not a size: {length_text!r}") from None
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body of {length} bytes; at most {MAX_BODY}")
        data = self.rfile.read(length)
        route = POST_ROUTES.get(url.path)
        if route is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such API route: {url.path}")
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"request body: not JSON ({e})") from None
        except RecursionError:  # arrays nested thousands deep: not an input of any route
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body: JSON nested too deeply") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body: expected a JSON object")
        self._json(HTTPStatus.OK, route(self.server.app, body))


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither) and numpy scalars as Python's."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


class Server(ThreadingHTTPServer):
    """A threading HTTP server holding the :class:`App` its handlers answer from."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        port = self.server_address[1]
        self.allowed_hosts: set[str] | None = None
        """The Host headers answered when listening on loopback (any when listening wider)."""
        if address[0] in LOOPBACK:
            self.allowed_hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (e.g. after a refused upload it did not wait to send) is
        routine: no traceback.  Anything else is printed as the standard library does."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        address, port = self.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 8000, model: str | Path | None = None) -> Server:
    """A :class:`Server` on ``host:port`` (port 0: any free port) for the runs under ``root``."""
    if not Path(root).is_dir():
        raise ValueError(f"RUNS_DIR {root}: no such folder")
    if model is not None and not (Path(model) / "model.npz").is_file():
        raise ValueError(f"--model {model}: no model.npz there")
    try:
        return Server((host, port), App(root, model))
    except OSError as e:
        raise OSError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None
