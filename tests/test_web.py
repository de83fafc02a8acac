"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no browser download).

Without Chromium or the ``playwright`` package these tests skip with a reason; in CI (``CI``
set), which installs both, they fail instead.  Each page is checked to log no console error.
"""

from __future__ import annotations

import base64
import csv
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_math_nn.data.datasets import digits
from ml_math_nn.results.server import Server
from ml_math_nn.runs.cli import main
from serving import running_server, train_run

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("Chromium not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    train_run(root / "a")
    train_run(root / "b", "--optimizer", "adam", "--lr", "0.01")
    return root


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[Server]:
    with running_server(runs) as server:
        yield server


class Page:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, server: Server, width: int = 1280) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = server.url

    def open(self, fragment: str) -> Any:
        self.page.goto(self.url + "#" + fragment)
        return self.page

    def close(self) -> None:
        self.page.close()
        assert self.errors == [], self.errors


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Page]:
    page = Page(browser, server)
    yield page
    page.close()


def probabilities(page: Any) -> list[float]:
    return [float(p) for p in page.locator("#probs li").evaluate_all("items => items.map(i => i.dataset.p)")]


def test_drawing_with_the_mouse_changes_the_probabilities(page: Page) -> None:
    p = page.open("/explore/a")
    box = p.locator("#draw").bounding_box()
    assert box is not None

    def stroke(points: list[tuple[float, float]]) -> None:
        p.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        p.mouse.down()
        for x, y in points[1:]:
            p.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        p.mouse.up()

    stroke([(0.5, 0.15), (0.5, 0.85)])  # a "1"
    p.wait_for_selector("#probs li")
    p.wait_for_timeout(300)  # strokes drawn while a request was out are sent when it returns
    first = probabilities(p)
    stroke([(0.25, 0.2), (0.75, 0.2), (0.75, 0.5), (0.25, 0.5), (0.25, 0.8), (0.75, 0.8)])  # then more ink
    p.wait_for_function(f"() => document.querySelector('#probs li').dataset.p !== '{first[0]}'")
    p.wait_for_timeout(300)
    second = probabilities(p)
    assert len(first) == len(second) == 10
    # float32 probabilities: their sum is 1 to float32's rounding
    assert sum(first) == pytest.approx(1.0, abs=1e-6) and sum(second) == pytest.approx(1.0, abs=1e-6)
    assert first != second
    assert "As the network sees it (8×8)" in p.locator("#explain").inner_text()
    assert p.locator("#explain canvas[aria-label='input gradient']").count() == 1


def test_a_test_image_shows_what_ml_math_nn_predict_says(
    page: Page, runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = 42
    np.savetxt(tmp_path / "row.csv", digits(0.2, 0).X_test[k : k + 1], delimiter=",")
    capsys.readouterr()
    assert main(["predict", "--model", str(runs / "a"), "--input", str(tmp_path / "row.csv")]) == 0
    expected = next(csv.DictReader(capsys.readouterr().out.splitlines()))
    p = page.open("/explore/a")
    p.fill("#example-index", str(k))
    p.click("#show-example")
    p.wait_for_selector("#probs li")
    assert p.locator("#predicted").inner_text().startswith(f"Predicted: {expected['class']} (")
    np.testing.assert_allclose(probabilities(p), [float(expected[f"p_{c}"]) for c in range(10)], rtol=1e-5)
    # One step of learning on it: the loss before and after, the layers in backward order.
    p.click("#step-go")
    p.wait_for_selector("#step-table")
    assert p.locator("#step-table tbody tr").count() == 3
    assert "Loss" in p.locator("#step-loss").inner_text() and "→" in p.locator("#step-loss").inner_text()


def test_a_training_runs_curve_gains_points_without_a_reload(page: Page, runs: Path) -> None:
    from ml_math_nn.runs.options import TrainConfig
    from ml_math_nn.runs.training import run_training

    # Training waits after each epoch until the test lets it go on, so the page is seen
    # before and after an epoch whatever the machine's speed.
    go_on, written = threading.Semaphore(0), threading.Semaphore(0)

    def pace(trainer: object, record: dict[str, float]) -> None:
        written.release()
        assert go_on.acquire(timeout=60), "the test never let training go on"

    config = TrainConfig().merged({"epochs": 3, "hidden": (16,)})
    thread = threading.Thread(
        target=run_training, args=(config, runs / "live", lambda _: None), kwargs={"callbacks": [pace]}, daemon=True
    )
    thread.start()
    try:
        assert written.acquire(timeout=60)  # epoch 1 is in metrics.csv
        p = page.open("/run/live")
        p.wait_for_selector("#chart-loss")
        assert p.locator("#run-status").inner_text() == "running"
        assert p.locator("#run-epoch").inner_text() == "1 of 3"
        p.evaluate("window.__sameDocument = true")
        start = int(p.locator("#chart-loss").get_attribute("data-points") or 0)
        assert start == 2  # train and test loss of epoch 1
        go_on.release()
        assert written.acquire(timeout=60)  # epoch 2
        p.wait_for_function("() => document.querySelector('#run-epoch').textContent === '2 of 3'")
        assert int(p.locator("#chart-loss").get_attribute("data-points") or 0) == 4
        assert p.evaluate("window.__sameDocument") is True  # the page was not reloaded
        go_on.release()
        assert written.acquire(timeout=60)
        go_on.release()
    finally:
        for _ in range(3):
            go_on.release()
        thread.join(60)
    p.wait_for_function("() => document.querySelector('#run-status').textContent === 'completed'", timeout=30_000)
    assert p.locator("#run-epoch").inner_text() == "3 of 3"
    p.wait_for_selector("#confusion")  # the finished run's evaluation appears by itself


def test_comparing_two_runs_shows_both_curves_and_the_options_that_differ_first(page: Page) -> None:
    p = page.open("/runs")
    p.wait_for_selector("#runs-table")
    p.check("tr[data-run='a'] input[type=checkbox]")
    p.check("tr[data-run='b'] input[type=checkbox]")
    p.click("#compare-selected")
    p.wait_for_selector("#compare-options")
    legend = p.locator("#compare-acc").locator("xpath=..").locator(".legend li").all_inner_texts()
    assert legend == ["a", "b"]
    first_rows = p.locator("#compare-options tbody tr.differs th").all_inner_texts()
    assert set(first_rows) == {"optimizer", "lr"}
    assert p.locator("#compare-options tbody tr").first.get_attribute("class") == "differs"
    lr = p.locator("#compare-options tbody tr", has=p.locator("th", has_text="lr")).first
    assert lr.locator("td").all_inner_texts() == ["0.05", "0.01"]  # numbers without padding zeros


def test_the_runs_table_sorts_and_filters(page: Page) -> None:
    p = page.open("/runs")
    p.wait_for_selector("#runs-table")
    p.get_by_role("button", name="Optimiser").click()
    assert p.locator("#runs-table tbody tr").first.get_attribute("data-run") == "b"  # adam before sgd
    p.fill("#run-filter", "adam")
    assert p.locator("#runs-table tbody tr").count() == 1


def test_clicking_a_confusion_cell_shows_its_test_images(page: Page) -> None:
    p = page.open("/run/a")
    p.wait_for_selector("#confusion")
    cell = p.locator("#confusion button[data-cell='3,3']")
    count = int(cell.inner_text())
    cell.click()
    p.wait_for_selector("#cell-images .thumb")
    assert p.locator("#cell-images .thumb").count() == min(count, 24)


# WCAG's contrast ratio of a cell's text against its background laid on the white page.
CONTRAST = """button => {
    const rgba = (text) => text.match(/[\\d.]+/g).map(Number);
    const channel = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const style = getComputedStyle(button);
    const [r, g, b, a = 1] = rgba(style.backgroundColor);
    const back = lum([r, g, b].map((v) => a * v + (1 - a) * 255)), text = lum(rgba(style.color));
    return (Math.max(back, text) + 0.05) / (Math.min(back, text) + 0.05);
}"""


def test_every_count_of_the_confusion_matrix_is_readable_on_its_shade(page: Page) -> None:
    p = page.open("/run/a")
    p.wait_for_selector("#confusion")
    ratios = p.locator("#confusion button").evaluate_all(f"buttons => buttons.map({CONTRAST})")
    assert len(ratios) == 100
    assert min(ratios) >= 4.5, sorted(ratios)[:5]  # WCAG AA for normal text


def test_picking_a_test_image_clears_the_drawing(page: Page) -> None:
    p = page.open("/explore/a")
    box = p.locator("#draw").bounding_box()
    assert box is not None
    p.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20)
    p.mouse.down()
    p.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 20, steps=4)
    p.mouse.up()
    ink = (
        "() => { const c = document.querySelector('#draw');"
        " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); }"
    )
    assert p.evaluate(ink)
    p.wait_for_selector("#probs li")
    p.click("#show-example")
    p.wait_for_function("() => document.querySelector('#predicted').textContent.includes('true class')")
    assert not p.evaluate(ink)  # the canvas no longer shows a drawing the network is not given


def test_the_explorer_works_from_the_keyboard(page: Page) -> None:
    p = page.open("/explore/a")
    p.wait_for_selector("#example-index")
    p.focus("#example-index")
    p.keyboard.press("Control+A")
    p.keyboard.type("7")
    p.keyboard.press("Enter")
    p.wait_for_selector("#probs li")
    p.focus("#probs li:nth-child(4) button")
    p.keyboard.press("Enter")  # the gradient of class 3's score instead
    p.wait_for_selector("#probs li:nth-child(4) button[aria-pressed='true']")
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.tagName") == "BUTTON"


@pytest.mark.parametrize("fragment", ["/runs", "/run/a", "/compare?id=a&id=b", "/explore/a"])
def test_a_phone_wide_screen_needs_no_horizontal_scrolling(
    browser: Any, server: Server, fragment: str, tmp_path: Path
) -> None:
    page = Page(browser, server, width=400)
    p = page.open(fragment)
    p.wait_for_selector("main h1")
    p.wait_for_load_state("networkidle")
    if fragment.startswith("/explore"):
        p.click("#show-example")
        p.wait_for_selector("#probs li")
        p.click("#step-go")
        p.wait_for_selector("#step-table")
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Nothing is hidden in a scrolled box either: the runs table reflows into one card per run.
    wide = "[...document.querySelectorAll('#runs-table, .charts')].filter(e => e.scrollWidth > e.clientWidth).length"
    assert p.evaluate(wide) == 0
    shot = p.screenshot(full_page=True)
    assert shot.startswith(b"\x89PNG") and base64.b64encode(shot)
    page.close()
