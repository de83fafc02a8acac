r"""The docs stay true to the code.

* Every link of ``docs/*.md``, ``README.md`` and ``BENCHMARKS.md`` resolves.  A link to a
  Python file either shows the file's name or names a symbol in backticks: in ``src/``
  (``[`Dense.backward`](../src/ml_math_nn/layers.py)``) an attribute that module defines,
  in ``tests/`` a test function (or class) of that file.  Every relative link points to
  an existing file or folder, and its ``#anchor`` to a heading of that file.
* The numbers of ``docs/walkthrough.md`` are the ones ``examples/walkthrough.py`` prints:
  each ``text`` block verbatim, and every decimal number quoted in the prose.
* The math renders on GitHub.  GitHub runs Markdown over ``$...$`` and ``$$...$$`` before
  MathJax sees them, so there a backslash before punctuation is a Markdown escape (``\,``
  becomes a comma, ``\{`` a bare brace), an underscore after a brace or bracket can open
  emphasis, and ``<b`` is a tag.  Such formulas go in ``$`...`$`` (inline) or a ``math``
  fence (display), which GitHub hands to MathJax untouched.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED = [*DOCS, ROOT / "README.md", ROOT / "BENCHMARKS.md"]
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
SYMBOL = re.compile(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)`")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
DECIMAL = re.compile(r"\d+\.\d{3,}")
DOLLAR_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![$`\\])\$(?![`$])([^$\n]+?)(?<![`\\])\$", re.DOTALL)
MARKDOWN_IN_MATH = {
    "a backslash before punctuation (a Markdown escape)": re.compile(r"\\[!-/:-@\[-`{-~]"),
    "an underscore after punctuation (may open emphasis)": re.compile(r"(?<![A-Za-z0-9\\])_"),
    "an asterisk (emphasis)": re.compile(r"\*"),
    "an HTML tag": re.compile(r"<[A-Za-z/!]"),
}


def doc_links() -> list[tuple[str, str, str]]:
    """``(document, link text, target)`` for every relative link of every linked document,
    the document by its path from the repository root (``docs/math.md``, ``README.md``)."""
    out = []
    for doc in LINKED:
        for text, target in LINK.findall(doc.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")):
                out.append((doc.relative_to(ROOT).as_posix(), text, target))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Top-level functions and classes of a test file, and ``Class.method`` for methods."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
    return frozenset(names)


def check_symbol(symbol: str, path: Path) -> None:
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "tests":
        assert symbol in defined_tests(path), f"{relative} has no test {symbol}"
        return
    module_name = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
    obj: object = importlib.import_module(module_name)
    head, *rest = symbol.split(".")
    obj = getattr(obj, head, None)
    assert obj is not None, f"{module_name} has no {head}"
    assert getattr(obj, "__module__", module_name) == module_name, f"{head} is only imported into {module_name}"
    for part in rest:
        obj = getattr(obj, part, None)
        assert obj is not None, f"{module_name}.{symbol} does not exist"


@pytest.mark.parametrize("doc,text,target", doc_links(), ids=lambda v: str(v))
def test_link_resolves(doc: str, text: str, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    path = ((ROOT / doc).parent / file_part).resolve() if file_part else ROOT / doc
    assert path.exists(), f"{doc}: link [{text}] points to a missing file {file_part}"
    symbol = SYMBOL.fullmatch(text)
    if path.suffix == ".py" and not text.strip("`").endswith(path.name):
        assert symbol, f"{doc}: [{text}] names neither a symbol nor {path.name}"
        check_symbol(symbol.group(1), path)
    if anchor:
        headings = HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))
        assert anchor in {github_slug(h) for h in headings}, f"{doc}: no heading for #{anchor} in {path.name}"


def test_links_are_found() -> None:
    """Guards the parametrisation above: an empty list would pass vacuously."""
    targets = [target for doc, _, target in doc_links() if doc == "docs/math.md"]
    assert sum(t.startswith("../src/") for t in targets) >= 30
    assert sum(t.startswith("../tests/") for t in targets) >= 10
    readme = [target for doc, text, target in doc_links() if doc == "README.md" and SYMBOL.fullmatch(text)]
    assert sum(t.startswith("src/") for t in readme) >= 15, "the equations' links to the code"
    assert sum(t.startswith("tests/") for t in readme) >= 3
    assert any(doc == "BENCHMARKS.md" for doc, _, _ in doc_links())


@pytest.mark.parametrize("doc", [*DOCS, ROOT / "README.md"], ids=lambda p: p.name)
def test_dollar_math_holds_no_markdown(doc: Path) -> None:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), doc.read_text(encoding="utf-8"))
    problems = []
    for m in DOLLAR_MATH.finditer(text):
        body = m.group(1) or m.group(2)
        line = text[: m.start()].count("\n") + 1
        problems += [
            f"line {line}: {what}: {body.strip()[:60]}" for what, r in MARKDOWN_IN_MATH.items() if r.search(body)
        ]
    assert not problems, f"{doc.name}: use $`...`$ or a math fence for\n" + "\n".join(problems)


def test_dollar_math_check_sees_the_problems() -> None:
    """Guards the check above: the known failures are caught, the backtick forms are not."""
    bad = ["$\\eta_0\\, g$", "$\\{a\\}$", "$\\hat{x}_i$", "$a * b$", "$$\na <b > c\n$$"]
    for text in bad:
        body = next(DOLLAR_MATH.finditer(text))
        assert any(r.search(body.group(1) or body.group(2)) for r in MARKDOWN_IN_MATH.values()), text
    assert not list(DOLLAR_MATH.finditer("$`\\eta_0\\, g`$ and `$HOME`"))


@pytest.fixture(scope="module")
def walkthrough_output() -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "walkthrough.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_walkthrough_blocks_are_the_script_output(walkthrough_output: str) -> None:
    blocks = TEXT_BLOCK.findall((ROOT / "docs" / "walkthrough.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    for block in blocks:
        assert block in walkthrough_output, f"this block is not what examples/walkthrough.py prints:\n{block}"


def test_walkthrough_prose_numbers_are_printed(walkthrough_output: str) -> None:
    prose = FENCE.sub("", (ROOT / "docs" / "walkthrough.md").read_text(encoding="utf-8"))
    numbers = DECIMAL.findall(prose)
    assert numbers, "the walkthrough quotes no numbers in its prose"
    missing = [n for n in numbers if n not in walkthrough_output]
    assert not missing, f"numbers quoted in docs/walkthrough.md but not printed by the script: {missing}"


def python_blocks(doc: Path) -> list[str]:
    """The fenced ```python blocks of a Markdown file."""
    return re.findall(r"^```python\n(.*?)^```", doc.read_text(), flags=re.M | re.S)


def test_readme_python_runs_as_written(tmp_path: Path) -> None:
    """The README's Python example, run as a user would paste it (in a fresh interpreter, in
    a folder of its own): the import paths and names it shows exist and work."""
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python block"
    for code in blocks:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


DOTTED = re.compile(r"\bml_math_nn(?:\.[A-Za-z_]\w*)+")
"""A dotted name in the package, ``ml_math_nn.runs.options.TrainConfig``."""


def dotted_names() -> list[tuple[str, int, str]]:
    """``(file, line, name)`` of every dotted package name in the code, the docs and the examples."""
    files = [
        *sorted((ROOT / "src").rglob("*.py")),
        *DOCS,
        ROOT / "README.md",
        ROOT / "BENCHMARKS.md",
        *sorted((ROOT / "examples").glob("*.py")),
        *sorted((ROOT / "benchmarks").glob("*.py")),
    ]
    return [
        (path.relative_to(ROOT).as_posix(), number, name)
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for name in DOTTED.findall(line)
    ]


def resolves(name: str) -> bool:
    """Whether ``name`` is a module of the package, or an attribute (at any depth) of one."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_every_dotted_package_name_resolves() -> None:
    """A docstring's ``:class:`~ml_math_nn.runs.options.TrainConfig``` or a doc's
    ``ml_math_nn.runs.training`` names a module or attribute that exists: a module moved or
    renamed leaves no reference to its old place behind."""
    names = dotted_names()
    assert len(names) > 50
    stale = [f"{where}:{number}: {name}" for where, number, name in names if not resolves(name)]
    assert stale == []


def test_the_dotted_name_check_sees_a_stale_name() -> None:
    assert resolves("ml_math_nn.runs.options.TrainConfig") and resolves("ml_math_nn.data.readers")
    assert not resolves("ml_math_nn.experiment") and not resolves("ml_math_nn.config.TrainConfig")
    assert not resolves("ml_math_nn.runs.persistence.read_npz")


def test_readme_says_how_to_use_the_environment_before_its_first_bare_command() -> None:
    """After ``make run`` the environment is not active: the README says how to use it
    before the first command that needs it (``ml-math-nn ...`` or ``python examples/...``
    not called through ``.venv/bin/``), and it refers to no issue."""
    text = (ROOT / "README.md").read_text()
    bare = re.search(r"(?<!\.venv/bin/)(?<![\w-])(ml-math-nn [a-z]|python examples/)", text)
    assert bare is not None
    activate = text.find(". .venv/bin/activate")
    assert 0 <= activate < bare.start(), text[bare.start() - 200 : bare.end()]
    assert ".venv/bin/ml-math-nn train" in text[activate : activate + 500]  # the other way: by path
    assert "the issue" not in text


def test_make_run_installs_only_what_running_needs_and_says_so() -> None:
    """``make run`` installs the package without the test extra (PyTorch and the rest come
    with ``make test``), and each install step says what it is doing before it starts."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")

    def steps(target: str) -> list[str]:
        # -n: print the commands without running them; -B: as if nothing were installed yet.
        dry = subprocess.run(
            [make, "-n", "-B", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return dry.stdout.splitlines()

    run, test = steps("run"), steps("test")
    installs = [line for line in run if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("[test]" not in line for line in installs), installs
    assert run[-1].endswith("-m ml_math_nn train")
    assert any('-e ".[test]"' in line for line in test)
    for lines in (run, test):
        says = [i for i, line in enumerate(lines) if line.startswith("echo") and "install" in line]
        pips = [i for i, line in enumerate(lines) if "pip install" in line and "--upgrade pip" not in line]
        assert says and says[0] < pips[0], "a message before the first install"
