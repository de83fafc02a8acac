"""The report page in a real browser (Debian's Chromium driven by Playwright, as in
tests/test_web.py): the answer in the first screen of a laptop, and no sideways scrolling on
a phone.  Skips without Chromium or playwright, fails in CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml_math_nn.results.report import write_report
from test_plots import FakeRun, short_run
from test_web import browser  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    runs: list[FakeRun] = [short_run(root / "a" / "run", epochs=3), short_run(root / "b" / "run", hidden=())]
    return {
        "run": write_report([runs[0].out], root / "report.html"),
        "comparison": write_report([r.out for r in runs], root / "comparison.html"),
    }


def open_page(browser: Any, path: Path, width: int) -> Any:  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector)
    assert found.count() >= 1, selector
    return dict(found.first.bounding_box())


def test_the_answer_is_in_the_first_screen_at_1280_px(browser: Any, pages: dict[str, Path]) -> None:  # noqa: F811
    page = open_page(browser, pages["run"], 1280)
    try:
        summary = json.loads((pages["run"].parent / "a" / "run" / "summary.json").read_text())
        first_card = page.locator(".card").first
        assert first_card.inner_text().split("\n") == ["test accuracy", f"{summary['final']['test_acc']:.4f}"]
        cards = box(page, ".cards")
        assert cards["y"] + cards["height"] < 300, "the headline metrics on top"
        loss, acc = box(page, 'img[alt="loss"]'), box(page, 'img[alt="accuracy"]')
        assert loss["y"] + loss["height"] <= 800 and acc["y"] + acc["height"] <= 800, "both curves in the first screen"
        assert abs(loss["y"] - acc["y"]) < 2 and acc["x"] >= loss["x"] + loss["width"], "side by side"
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    finally:
        page.close()


@pytest.mark.parametrize("name", ["run", "comparison"])
def test_no_sideways_scrolling_at_390_px(browser: Any, pages: dict[str, Path], name: str) -> None:  # noqa: F811
    page = open_page(browser, pages[name], 390)
    try:
        viewport = page.locator('meta[name="viewport"]').get_attribute("content")
        assert viewport == "width=device-width, initial-scale=1"
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # the widest tables too
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        widest = page.evaluate("Math.max(...[...document.images].map(i => i.getBoundingClientRect().right))")
        assert widest <= 390, "every figure fits the screen"
    finally:
        page.close()


def test_screenshots_are_not_blank(browser: Any, pages: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    from matplotlib.image import imread

    for width in (1280, 390):
        page = open_page(browser, pages["run"], width)
        try:
            shot = tmp_path / f"first-screen-{width}.png"
            page.screenshot(path=str(shot))
        finally:
            page.close()
        pixels = imread(shot)
        assert pixels.shape[:2] == (800, width)
        assert pixels[..., :3].std() > 0.05, "text and figures drawn"
