"""HTML reports: well-formed, self-contained, every figure embedded, the run's numbers present."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ml_math_nn.results.report import FIGURES, most_confused, read_run, write_report
from ml_math_nn.runs.cli import main
from test_plots import FakeRun, short_run

VOID = {"meta", "img", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """Collects images, links, table rows and text, and checks that every tag is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (css class, cell texts)
        self.text: list[str] = []
        self.feed(text)
        self.close()
        assert self.stack == [], f"unclosed tags {self.stack}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values["src"] or "")
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset", "poster")]
        if tag == "tr":
            self.rows.append((values.get("class") or "", []))
        if tag in ("td", "th"):
            self.rows[-1][1].append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] in ("td", "th"):
            self.rows[-1][1][-1] += data

    def row(self, heading: str) -> tuple[str, list[str]]:
        return next(r for r in self.rows if r[1] and r[1][0] == heading)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[FakeRun]:
    root = tmp_path_factory.mktemp("runs")
    return [short_run(root / "wide", hidden=(16,)), short_run(root / "linear", hidden=(), epochs=3)]


def assert_self_contained(page: Page, html: str) -> None:
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert not [u for u in page.urls if not u.startswith("data:")], "only data: URIs"
    assert not re.search(r"url\(|@import|<script|<link", html), "no external style, script or font"


def test_single_run_report(runs: list[FakeRun], tmp_path: Path) -> None:
    run = runs[0]
    out = write_report([run.out], tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert_self_contained(page, html)

    pngs = {p.name: p.read_bytes() for p in run.out.glob("*.png")}
    assert len(pngs) == 7
    embedded = [base64.b64decode(src.split(",", 1)[1], validate=True) for src in page.images]
    assert sorted(embedded) == sorted(pngs.values()), "every figure of the run, byte for byte"

    summary = json.loads((run.out / "summary.json").read_text())
    text = " ".join(page.text)
    for metric in ("test_acc", "test_loss", "train_acc", "train_loss"):
        assert f"{summary['final'][metric]:.4f}" in text, "headline metrics, four decimals"
    assert page.row("started")[1] == ["started", summary["started"]]
    assert page.row("training")[1][1].endswith((" s", " ms"))
    assert page.row("hidden")[1] == ["hidden", "[16]"]
    assert page.row("lr")[1] == ["lr", "0.1"], "options as given"
    per_class = (run.out / "per_class_metrics.csv").read_text().splitlines()
    first = per_class[1].split(",")
    assert page.row(first[0])[1] == [first[0], *(f"{float(v):.4f}" for v in first[1:4]), first[4]]


def test_comparison_report(runs: list[FakeRun], tmp_path: Path) -> None:
    wide, linear = runs
    out = write_report([wide.out, linear.out], tmp_path / "compare.html")
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert_self_contained(page, html)
    assert "Comparison of 2 runs" in "".join(page.text)
    # Two overlaid curve figures, then each run's seven figures.
    assert len(page.images) == 2 + 7 + 7

    assert page.rows[0][1] == ["metric", "wide", "linear"]
    finals = [json.loads((r.out / "summary.json").read_text())["final"] for r in runs]
    cells = page.row("test_acc")[1]
    assert cells == ["test_acc", *(f"{f['test_acc']:.4f}" for f in finals)]

    assert page.row("hidden") == ("diff", ["hidden", "[16]", "[]"])
    assert page.row("epochs") == ("diff", ["epochs", "2", "3"])
    assert page.row("seed") == ("", ["seed", "1", "1"])
    assert "2 option(s) differ" in html
    header = next(i for i, (_, cells) in enumerate(page.rows) if cells[0] == "option")
    assert [cells[0] for _, cells in page.rows[header + 1 : header + 4]] == ["hidden", "epochs", "dataset"]


def test_best_metric_is_marked(runs: list[FakeRun], tmp_path: Path) -> None:
    html = write_report([r.out for r in runs], tmp_path / "c.html").read_text()
    finals = [json.loads((r.out / "summary.json").read_text())["final"]["test_loss"] for r in runs]
    best = f"{min(finals):.4f}"
    assert f'<td class="best">{best}</td>' in html


def test_cli_report_writes_beside_the_run_by_default(runs: list[FakeRun], capsys: pytest.CaptureFixture[str]) -> None:
    run = runs[1]
    assert main(["report", str(run.out)]) == 0
    assert (run.out / "report.html").is_file()
    assert capsys.readouterr().out.strip().endswith("report.html")


def test_cli_report_compares_runs(runs: list[FakeRun], tmp_path: Path) -> None:
    out = tmp_path / "both.html"
    assert main(["report", str(runs[0].out), str(runs[1].out), "--out", str(out)]) == 0
    assert "Comparison of 2 runs" in out.read_text()


def test_a_directory_that_is_not_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"ml-math-nn: error: {tmp_path}: not a run directory (no summary.json)\n"
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"summary.json: not valid JSON"):
        read_run(tmp_path)
    with pytest.raises(ValueError, match="at least one run directory"):
        write_report([], tmp_path / "x.html")


def test_text_cells_of_metrics_csv_are_skipped_and_ragged_rows_refused(runs: list[FakeRun], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text((runs[0].out / "summary.json").read_text())
    (run_dir / "metrics.csv").write_text("epoch,train_loss,note\n1,0.5,warm-up\n2,0.25,\n")
    assert read_run(run_dir).history == [{"epoch": 1.0, "train_loss": 0.5}, {"epoch": 2.0, "train_loss": 0.25}]
    (run_dir / "metrics.csv").write_text("epoch,train_loss\n1,0.5,extra\n")
    with pytest.raises(ValueError, match=r"metrics.csv: malformed row"):
        read_run(run_dir)


def test_train_with_report_writes_the_page_at_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--hidden", "8", "--batch-size", "128", "--quiet", "--report", "--out", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report written to {out / 'report.html'}"
    html = (out / "report.html").read_text(encoding="utf-8")
    page = Page(html)
    assert_self_contained(page, html)
    assert len(page.images) == len(list(out.glob("*.png"))) == 7
    final = json.loads((out / "summary.json").read_text())["final"]
    assert f"{final['test_acc']:.4f}" in " ".join(page.text)
    assert main([*args[:-3], "--out", str(tmp_path / "plain")]) == 0
    assert not (tmp_path / "plain" / "report.html").exists(), "no report unless asked"
    assert "report written" not in capsys.readouterr().out


def copy_run(run: FakeRun, to: Path, dataset: str | None = None) -> Path:
    """A copy of ``run``'s directory at ``to``, its summary saying ``dataset`` if given."""
    shutil.copytree(run.out, to)
    if dataset is not None:
        summary = json.loads((to / "summary.json").read_text())
        summary["dataset"]["name"] = summary["config"]["dataset"] = dataset
        (to / "summary.json").write_text(json.dumps(summary))
    return to


def test_comparison_warns_across_datasets_and_bolds_only_within_one(runs: list[FakeRun], tmp_path: Path) -> None:
    wide, linear = runs
    other = copy_run(wide, tmp_path / "b" / "wide", dataset="fashion-mnist")
    html = write_report([wide.out, linear.out, other], tmp_path / "c.html").read_text()
    page = Page(html)
    assert "These runs are on different datasets" in html and "wide: fashion-mnist" in html
    labels = page.rows[0][1][1:]
    assert labels[1] == "linear" and labels[0] != labels[2] and labels[0].endswith("/wide"), labels
    finals = [json.loads((r.out / "summary.json").read_text())["final"]["test_acc"] for r in runs]
    bold = re.findall(r'<td class="best">([0-9.]+)</td>', html.split("<h2>Curves")[0])
    assert f"{max(finals):.4f}" in bold
    assert f"{finals[0]:.4f}" not in bold or finals[0] == max(finals)
    row = next(cells for _, cells in page.rows if cells[0] == "test_acc")
    assert row[3] == f"{finals[0]:.4f}", "the fashion-mnist run's copy"
    assert html.count('class="best"') == html.split("<h2>Curves")[0].count('class="best"'), "metrics table only"
    one_dataset = write_report([wide.out, linear.out], tmp_path / "d.html").read_text()
    assert "different datasets" not in one_dataset


def test_final_metrics_are_not_all_highlighted_as_differing(runs: list[FakeRun], tmp_path: Path) -> None:
    html = write_report([r.out for r in runs], tmp_path / "c.html").read_text()
    metrics = html.split("<h2>Final metrics</h2>")[1].split("<h2>")[0]
    assert 'class="diff"' not in metrics, "metrics always differ: only the best is marked"
    config = html.split("<h2>Configuration</h2>")[1].split("<details>")[0]
    assert config.count('class="diff"') == 2, "hidden and epochs"


def test_same_directory_names_are_told_apart_and_the_cli_says_where(
    runs: list[FakeRun], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = copy_run(runs[0], tmp_path / "a" / "run"), copy_run(runs[1], tmp_path / "b" / "run")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "a/run", "b/run"]) == 0
    assert capsys.readouterr().out == f"comparison of 2 runs written to comparison.html (in {tmp_path})\n"
    page = Page((tmp_path / "comparison.html").read_text())
    assert page.rows[0][1] == ["metric", "a/run", "b/run"]
    assert (a / "summary.json").is_file() and (b / "summary.json").is_file()


def test_most_confused_pairs_largest_first() -> None:
    table = [["true \\ predicted", "a", "b", "c"], ["a", "50", "3", "0"], ["b", "7", "40", "1"], ["c", "0", "3", "9"]]
    assert most_confused(table) == [
        ("b", "a", 7, 7 / 48),
        ("c", "b", 3, 3 / 12),
        ("a", "b", 3, 3 / 53),
        ("b", "c", 1, 1 / 48),
    ]


def test_run_page_order_sections_and_facts(runs: list[FakeRun], tmp_path: Path) -> None:
    html = write_report([runs[0].out], tmp_path / "r.html").read_text()
    order = [
        html.index(f'alt="{name}"')
        for name in ("loss", "accuracy", "confusion matrix", "first layer weights", "samples")
    ]
    assert order == sorted(order), "curves, predictions, the model, then the data"
    assert html.index("Most confused pairs") < html.index("<h2>Run</h2>") < html.index("<summary>Configuration")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    page = Page(html)
    assert page.row("versions")[1][1].startswith("ml_math_nn ")
    assert page.row("total")[1][-1] == f"{runs[0].model.network.n_in * 16 + 16 + 16 * 10 + 10:,}"
    for entry in FIGURES.values():
        assert entry.caption not in ("", None)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    titles = ["Cross-entropy loss per epoch", "Accuracy per epoch", "Confusion matrix on the test set"]
    assert not [c for c in captions if any(t in c for t in titles)], "captions do not repeat the titles"


def test_headline_puts_the_score_first_for_each_split() -> None:
    from ml_math_nn.results.report import Run, headline

    final = {"test_mae": 50.0, "test_mse": 4000.0, "test_r2": 0.4, "test_loss": 0.7, "train_r2": 0.5, "train_loss": 0.6}
    cards = headline(Run(Path("r"), {"final": final}, []))
    assert [label for label, _, _ in cards] == [
        "test R²",
        "test loss",
        "test mae",
        "test mse",
        "training R²",
        "training loss",
    ]
    assert cards[0][2] and not any(main for _, _, main in cards[1:]), "the test score is the main card"
