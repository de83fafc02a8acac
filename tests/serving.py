"""Helpers of the web tests: a tiny trained run, a server on a free loopback port, requests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ml_math_nn.results.server import Server, make_server
from ml_math_nn.runs.cli import main


def train_run(out: Path, *options: str) -> Path:
    """Train a tiny digits model into ``out`` (2 epochs, 16 hidden units: about a second)."""
    assert main(["train", "--quiet", "--epochs", "2", "--hidden", "16", *options, "--out", str(out)]) == 0
    return out


@contextmanager
def running_server(root: Path, model: Path | None = None) -> Iterator[Server]:
    """A server on 127.0.0.1 and a free port, answering from a background thread."""
    server = make_server(root, "127.0.0.1", 0, model)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(
    server: Server, path: str, body: Any = None, *, raw: bytes | None = None, method: str | None = None
) -> tuple[int, Any]:
    """``(status, decoded JSON)`` of ``path``; a POST when ``body`` or ``raw`` is given."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    return status, json.loads(payload) if payload else None
