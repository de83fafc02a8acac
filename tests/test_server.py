"""The web dashboard's server and explorer without a browser: the explorer's math (drawings
mapped to the training data's format, the input gradient against finite differences, the
one-step demo), the JSON API, and refusals of bad requests (the server keeps serving)."""

from __future__ import annotations

import base64
import csv
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ml_math_nn.data.datasets import digits
from ml_math_nn.gradcheck import numerical_gradient, relative_error
from ml_math_nn.network import build_mlp
from ml_math_nn.results.explorer import Explorer, area_resize, digits_from_ink, image_from_ink, mnist_from_ink
from ml_math_nn.results.server import MAX_BODY, WEB, Server, make_server
from ml_math_nn.runs.cli import main
from ml_math_nn.runs.persistence import Model
from serving import request, running_server, train_run


# -- drawings ----------------------------------------------------------------------------
def test_area_resize_averages_the_area_each_output_pixel_covers() -> None:
    image = np.arange(16.0).reshape(4, 4)
    assert area_resize(image, 2, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    odd = np.array([[0.0, 0.0, 9.0]] * 3)
    # 3 -> 2 columns: the middle column is split in halves between the two outputs.
    np.testing.assert_allclose(area_resize(odd, 1, 2), [[0.0, 6.0]])
    assert area_resize(odd, 5, 7).mean() == pytest.approx(odd.mean())


def test_a_drawing_becomes_counts_of_4x4_blocks_of_a_32x32_bitmap_like_sklearns_digits() -> None:
    ink = np.zeros((100, 100))
    ink[10:74, 40:56] = 1.0  # a bar 64 tall and 16 wide: scaled to 32x8, centred at columns 12..19
    expected = np.zeros((8, 8))
    expected[:, 3:5] = 16
    assert digits_from_ink(ink).tolist() == expected.tolist()
    thin = np.zeros((64, 64))
    thin[:, 30:32] = 1.0  # 64 tall, 2 wide: 32x1 after scaling, in column 15 -> 4 of the 16 pixels of block 3
    assert digits_from_ink(thin).sum() == 32 and digits_from_ink(thin)[:, 3].tolist() == [4.0] * 8
    assert digits_from_ink(np.zeros((50, 50))).tolist() == np.zeros((8, 8)).tolist()
    assert image_from_ink(ink, "digits", (8, 8)).tolist() == expected.tolist()


def test_a_drawing_becomes_an_mnist_image_fitted_in_20x20_and_centred_by_mass() -> None:
    ink = np.zeros((90, 90))
    ink[5:45, 50:70] = 1.0  # 40x20 in a corner: 20x10 after scaling, then moved to the centre
    image = mnist_from_ink(ink)
    assert image.shape == (28, 28) and image.max() == 255.0
    assert image.sum() == pytest.approx(200 * 255.0)
    rows, cols = np.indices(image.shape)
    centre = ((rows * image).sum() / image.sum(), (cols * image).sum() / image.sum())
    assert abs(centre[0] - 13.5) <= 0.5 and abs(centre[1] - 13.5) <= 0.5
    assert mnist_from_ink(np.zeros((10, 10))).sum() == 0.0
    with pytest.raises(ValueError, match="drawing: expected a bitmap"):
        image_from_ink(np.zeros((600, 10)), "mnist", (28, 28))


# -- the explorer's math -------------------------------------------------------------------
@pytest.fixture
def explorer(rng: np.random.Generator) -> Explorer:
    network = build_mlp(64, (12, 9), 4, rng, ["tanh", "gelu"], np.float64, batch_norm=True, l2=0.01)
    for layer in network.layers:  # running statistics other than the initial 0 and 1
        for name, buffer in layer.buffers.items():
            buffer[...] = (
                rng.uniform(0.5, 1.5, buffer.shape) if name == "running_var" else rng.normal(size=buffer.shape)
            )
    return Explorer(Model(network, ["a", "b", "c", "d"]), "test", None)


def test_the_input_gradient_of_a_class_score_matches_finite_differences(
    explorer: Explorer, rng: np.random.Generator
) -> None:
    network = explorer.model.network
    x = rng.normal(size=(1, 64))
    for target in range(4):
        result = explorer.explain(x, target)
        numeric = numerical_gradient(lambda c=target: float(network.forward(x)[0, c]), x)
        assert relative_error(np.array(result["input_gradient"]), numeric[0]) < 1e-8
        assert result["target"] == target


def test_explain_gives_the_networks_probabilities_and_every_layers_output(
    explorer: Explorer, rng: np.random.Generator
) -> None:
    network = explorer.model.network
    x = rng.normal(size=(1, 64))
    result = explorer.explain(x)
    probs = network.predict_proba(x)[0]
    np.testing.assert_allclose(result["probabilities"], probs, rtol=1e-12)
    assert sum(result["probabilities"]) == pytest.approx(1.0)
    assert result["predicted"] == result["target"] == int(probs.argmax())
    assert [layer["type"] for layer in result["layers"]] == [type(layer).__name__ for layer in network.layers]
    np.testing.assert_allclose(result["layers"][-1]["values"], network.forward(x)[0], rtol=1e-12)
    with pytest.raises(ValueError, match="target: expected a class 0..3"):
        explorer.explain(x, 4)


def test_one_sgd_step_moves_each_parameter_by_lr_times_its_gradient_on_a_copy(
    explorer: Explorer, rng: np.random.Generator
) -> None:
    network = explorer.model.network
    before = {k: v.copy() for k, v in network.state().items()}
    x = rng.normal(size=(1, 64))
    step = explorer.sgd_step(x, 2, 0.05)
    for layer in step["layers"]:
        for p in layer["params"].values():
            assert p["update_norm"] == pytest.approx(0.05 * p["grad_norm"], rel=1e-10)
    assert step["loss_after"] < step["loss_before"]
    assert step["probabilities_after"][2] > step["probabilities_before"][2]
    # Before the step, the loss is the network's objective: cross-entropy plus the L2 penalty.
    expected = -np.log(network.predict_proba(x)[0, 2]) + network.penalty()
    assert step["loss_before"] == pytest.approx(expected, rel=1e-12)
    probs = network.predict_proba(x)[0]
    np.testing.assert_allclose(step["loss_gradient"], probs - np.eye(4)[2], atol=1e-12)
    assert [layer["index"] for layer in step["layers"]] == list(reversed(range(len(network.layers))))
    assert all(np.array_equal(before[k], v) for k, v in network.state().items()), "the model itself changed"
    with pytest.raises(ValueError, match="lr: expected a number > 0"):
        explorer.sgd_step(x, 2, 0.0)


# -- the server --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    train_run(root / "a")
    train_run(root / "nested" / "b", "--optimizer", "adam", "--lr", "0.01")
    return root


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[Server]:
    with running_server(runs) as server:
        yield server


def assert_serving(server: Server) -> None:
    status, body = request(server, "/api/runs")
    assert status == 200 and {"a", "nested/b"} <= {r["id"] for r in body["runs"]}


def test_runs_lists_every_run_with_its_facts(server: Server, runs: Path) -> None:
    status, body = request(server, "/api/runs")
    assert status == 200
    rows = {r["id"]: r for r in body["runs"]}
    summary = json.loads((runs / "a" / "summary.json").read_text())
    a = rows["a"]
    assert a["status"] == "completed" and a["dataset"] == "digits" and a["architecture"] == "64-16-10 relu"
    assert a["epochs"] == a["epochs_run"] == 2 and a["has_model"]
    assert a["final_test_acc"] == summary["final"]["test_acc"]
    assert rows["nested/b"]["optimizer"] == "adam"


def test_metrics_since_gives_the_records_after_the_ones_already_shown(server: Server, runs: Path) -> None:
    with open(runs / "a" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    status, body = request(server, "/api/metrics?id=a&since=1")
    assert status == 200 and body["status"] == "completed"
    assert body["history"] == [{k: float(v) for k, v in rows[1].items()}]
    assert body["best_epoch"] in (1, 2)


def test_a_test_image_gives_the_class_and_probabilities_of_ml_math_nn_predict(
    server: Server, runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = 17
    row = digits(0.2, 0).X_test[k : k + 1]
    np.savetxt(tmp_path / "row.csv", row, delimiter=",")
    capsys.readouterr()
    assert main(["predict", "--model", str(runs / "a"), "--input", str(tmp_path / "row.csv")]) == 0
    predicted = next(csv.DictReader(capsys.readouterr().out.splitlines()))
    status, body = request(server, "/api/explain", {"run": "a", "index": k})
    assert status == 200
    assert str(body["predicted"]) == predicted["class"]
    np.testing.assert_allclose(body["probabilities"], [float(predicted[f"p_{c}"]) for c in range(10)], rtol=1e-5)
    assert body["input"] == row[0].tolist() and body["label"] == int(digits(0.2, 0).y_test[k])


def test_a_drawing_is_explained_as_an_8x8_digits_image(server: Server) -> None:
    ink = np.zeros((112, 112), dtype=np.uint8)
    ink[10:100, 50:60] = 255
    drawing = {"width": 112, "height": 112, "data": base64.b64encode(ink.tobytes()).decode()}
    status, body = request(server, "/api/explain", {"run": "a", "drawing": drawing})
    assert status == 200
    assert body["image_shape"] == [8, 8] and len(body["input"]) == 64
    assert all(v == int(v) and 0 <= v <= 16 for v in body["input"])
    assert sum(body["input"]) == 32 * 4  # 90x10 fitted to 32x4: every pixel of it on
    assert sum(body["probabilities"]) == pytest.approx(1.0)
    assert len(body["input_gradient"]) == 64 and body["label"] is None
    status, body = request(server, "/api/step", {"run": "a", "drawing": drawing, "label": 1, "lr": 0.1})
    assert status == 200 and body["loss_after"] < body["loss_before"]


def test_evaluation_examples_model_and_compare(server: Server, runs: Path) -> None:
    status, ev = request(server, "/api/evaluation?id=a")
    assert status == 200 and ev["n_test"] == 360 and sum(map(sum, ev["confusion"])) == 360
    assert ev["accuracy"] == pytest.approx(json.loads((runs / "a" / "summary.json").read_text())["final"]["test_acc"])
    assert len(ev["misclassified"]) == 360 - sum(ev["confusion"][i][i] for i in range(10))
    status, ex = request(server, "/api/examples?id=a&index=0&index=5")
    assert status == 200 and [e["index"] for e in ex["examples"]] == [0, 5] and ex["shape"] == [8, 8]
    status, model = request(server, "/api/model?id=nested/b")
    assert status == 200 and [layer["type"] for layer in model["layers"]] == ["Dense", "ReLU", "Dense"]
    status, compare = request(server, "/api/compare?id=a&id=nested/b")
    assert status == 200 and [r["id"] for r in compare["runs"]] == ["a", "nested/b"]
    differing = [o["option"] for o in compare["options"] if o["differs"]]
    assert set(differing) == {"optimizer", "lr"}
    assert [o["option"] for o in compare["options"][: len(differing)]] == differing  # those that differ first


def test_the_page_and_its_files_are_served_and_fetch_nothing_from_elsewhere(server: Server) -> None:
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith(kind)
        connection.close()
        # The one absolute URL allowed is SVG's namespace name, which is never fetched.
        assert "//" not in text.replace("http://www.w3.org/2000/svg", "").replace("// ", "").replace('"//', ""), path
    assert {p.name for p in WEB.iterdir()} == {"index.html", "app.js", "style.css"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/run?id=../a",
        "/api/run?id=..%2F..%2Fetc",
        "/api/run?id=%2e%2e",
        "/api/run?id=/etc",
        "/api/run?id=",
        "/api/evaluation?id=a/../../x",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "//etc/passwd",
        "/api/../../etc/passwd",
        "/web/index.html",
    ],
)
def test_paths_out_of_the_runs_folder_are_refused_with_json(server: Server, path: str) -> None:
    status, body = request(server, path)
    assert status in (400, 404) and "error" in body
    assert_serving(server)


def test_absolute_and_symlinked_runs_outside_the_folder_are_not_read(runs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(runs / "a", outside)
    root = tmp_path / "root"
    shutil.copytree(runs / "a", root / "inside")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside" / "metrics.csv").unlink()
    (root / "inside" / "metrics.csv").symlink_to(outside / "metrics.csv")
    with running_server(root) as server:
        status, body = request(server, "/api/runs")
        assert [r["id"] for r in body["runs"]] == ["inside"]
        for run_id in ("escape", str(outside), str(outside / "..")):
            status, body = request(server, "/api/run?id=" + run_id)
            assert status == 404 and "no run" in body["error"]
        status, body = request(server, "/api/run?id=inside")
        assert status == 200 and body["history"] == []  # its metrics.csv points out of the run: not read


def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(server: Server) -> None:
    cases = [
        (request(server, "/api/explain", raw=b"{not json"), 400, "not JSON"),
        (request(server, "/api/explain", raw=b"[1, 2]"), 400, "JSON object"),
        (request(server, "/api/explain", {"run": "a"}), 400, "expected 'index'"),
        (request(server, "/api/explain", {"run": "zzz", "index": 0}), 404, "no run"),
        (request(server, "/api/explain", {"run": "a", "index": 360}), 400, "index: expected 0..359"),
        (request(server, "/api/explain", {"run": "a", "index": "x"}), 400, "expected an integer"),
        (
            request(server, "/api/explain", {"run": "a", "drawing": {"width": 2, "height": 2, "data": "AA=="}}),
            400,
            "1 bytes",
        ),
        (request(server, "/api/step", {"run": "a", "index": 0, "lr": "fast"}), 400, "lr: expected a number"),
        (request(server, "/api/step", {"run": "a", "index": 0, "label": 10}), 400, "label: expected a class"),
        (request(server, "/api/nothing"), 404, "no such"),
        (request(server, "/api/nothing", {}), 404, "no such"),
        (request(server, "/api/metrics?id=a&since=x"), 400, "since"),
        (request(server, "/api/run"), 400, "missing query parameter 'id'"),
        (request(server, "/api/examples?id=a"), 400, "index: give 1 to 100"),
        (request(server, "/api/runs", method="DELETE"), 405, "not supported"),
    ]
    for (status, body), expected, message in cases:
        assert status == expected and message in body["error"], (status, body)
        assert_serving(server)


def test_oversized_and_unsized_bodies_are_refused_without_reading_them(server: Server) -> None:
    port = server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/api/explain")
    connection.putheader("Content-Length", str(MAX_BODY + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "at most" in json.loads(response.read())["error"]
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/api/explain")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/api/explain")
    connection.putheader("Content-Length", "-5")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and "Content-Length" in json.loads(response.read())["error"]
    connection.close()
    assert_serving(server)


def _raw_exchange(server: Server, data: bytes) -> tuple[int, dict[str, object], str]:
    """Send ``data`` as it is on a new connection: the status, JSON body and content type answered."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read()), response.getheader("Content-Type", "")


def test_the_standard_librarys_own_refusals_are_4xx_json_too(server: Server) -> None:
    host = f"Host: 127.0.0.1:{server.server_address[1]}\r\n".encode()
    cases = [
        (b"TRACE /api/runs HTTP/1.1\r\n" + host + b"\r\n", 405, "TRACE is not supported"),
        (b"FOO /api/runs HTTP/1.1\r\n" + host + b"\r\n", 405, "FOO is not supported"),
        (b"GET / / HTTP/1.1\r\n" + host + b"\r\n", 400, "Bad request syntax"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414, ""),
        (b"GET / HTTP/1.1\r\n" + host + b"X: y\r\n" * 200 + b"\r\n", 431, ""),
    ]
    for data, expected, message in cases:
        status, body, kind = _raw_exchange(server, data)
        assert status == expected and kind == "application/json", (status, body)
        assert body["status"] == expected and message in str(body["error"]), body
        assert_serving(server)


def test_json_nested_too_deeply_is_a_bad_request(server: Server) -> None:
    status, body = request(server, "/api/explain", raw=b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and "nested too deeply" in body["error"]
    assert_serving(server)


def test_training_rewrites_metrics_csv_after_every_epoch(tmp_path: Path) -> None:
    from ml_math_nn.runs.options import TrainConfig
    from ml_math_nn.runs.training import run_training

    seen: list[int] = []

    def check(trainer: object, record: dict[str, float]) -> None:
        with open(tmp_path / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        seen.append(len(rows))
        assert float(rows[-1]["epoch"]) == record["epoch"] and float(rows[-1]["lr"]) == record["lr"]

    config = TrainConfig().merged({"epochs": 3, "hidden": (8,)})
    run_training(config, tmp_path, lambda _: None, callbacks=[check])
    assert seen == [1, 2, 3]


def test_a_run_without_summary_is_running_with_an_eta_until_it_goes_quiet(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "r" / "live"
    run.mkdir(parents=True)
    shutil.copy(runs / "a" / "config.toml", run)
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("epochs = 2", "epochs = 10"))
    shutil.copy(runs / "a" / "metrics.csv", run)
    now = time.time()
    os.utime(run / "config.toml", (now - 4, now - 4))
    with running_server(tmp_path / "r") as server:
        status, body = request(server, "/api/run?id=live")
        assert status == 200 and body["status"] == "running" and body["epochs"] == 10
        assert body["eta_s"] == pytest.approx(8 * 2.0, rel=0.2)  # 2 epochs in about 4 s, 8 to go
        os.utime(run / "metrics.csv", (now - 3600, now - 3600))
        os.utime(run / "config.toml", (now - 3700, now - 3700))
        status, body = request(server, "/api/run?id=live")
        assert body["status"] == "stopped" and body["eta_s"] is None


def test_serve_command_prints_its_url_and_serves(runs: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_math_nn", "serve", str(runs), "--port", "0", "--model", str(runs / "a")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving {runs} at http://127.0.0.1:")
        url = line.split(" at ")[1].split()[0]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/api/runs")
        body = json.loads(connection.getresponse().read())
        assert body["default_model"] == "a"
    finally:
        process.terminate()
        process.wait(10)


def test_serve_refuses_a_missing_folder_or_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "RUNS_DIR" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--model", str(tmp_path), "--port", "0"]) == 2
    assert "no model.npz" in capsys.readouterr().err


def test_serve_help_loads_nothing_of_the_library_but_the_cli() -> None:
    code = (
        "import contextlib, io, json, sys\nfrom ml_math_nn.runs import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        cli.main(['serve', '--help'])\n"
        "    except SystemExit:\n        pass\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.splitlines()[-1])
    assert sorted(m for m in loaded if m.startswith("ml_math_nn")) == [
        "ml_math_nn",
        "ml_math_nn.runs",
        "ml_math_nn.runs.cli",
    ]
    assert "numpy" not in loaded


def test_a_foreign_host_header_is_refused_on_loopback(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    connection.putrequest("GET", "/api/runs", skip_host=True)
    connection.putheader("Host", "attacker.example:8000")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 403 and "Host 'attacker.example:8000'" in json.loads(response.read())["error"]
    connection.close()
    port = server.server_address[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("GET", "/api/runs", skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        assert connection.getresponse().status == 200
        connection.close()


def test_a_port_in_use_is_one_line_naming_it(server: Server, runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = server.server_address[1]
    assert main(["serve", str(runs), "--port", str(port)]) == 2
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in capsys.readouterr().err


def test_a_client_that_hangs_up_leaves_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The standard library prints a traceback for every error of a request; a dropped
    connection is routine and prints nothing, anything else still does."""
    server = make_server(tmp_path, port=0)
    try:
        for error, shown in ((ConnectionResetError("peer"), False), (ValueError("bug"), True)):
            try:
                raise error
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
            assert ("ValueError: bug" in capsys.readouterr().err) is shown
    finally:
        server.server_close()


def test_the_best_epoch_of_a_score_is_its_highest_and_of_an_error_its_lowest() -> None:
    from ml_math_nn.results.server import _best_epoch

    history = [{"epoch": 1, "val_r2": 0.5, "val_mse": 2.0}, {"epoch": 2, "val_r2": 0.8, "val_mse": 1.0},
               {"epoch": 3, "val_r2": 0.7, "val_mse": 1.5}]
    assert _best_epoch(history, "val_r2") == 2
    assert _best_epoch(history, "val_mse") == 2
    assert _best_epoch([{"epoch": 1, "val_acc": 0.9}, {"epoch": 2, "val_acc": 0.8}], "val_acc") == 1
