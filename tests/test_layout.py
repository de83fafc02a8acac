"""The shape of the package: the core imports numpy and nothing of the application, and a
module loads only what it uses (checked in fresh interpreters, whose ``sys.modules`` tell)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ml_math_nn

PACKAGE = Path(ml_math_nn.__file__).parent
CORE = ["layers", "losses", "init", "network", "optim", "schedules", "train", "gradcheck", "_types", "_registry"]
"""The core library: the top-level modules."""
APPLICATION = ["runs", "results", "integrations", "data"]
"""The subpackages built on the core."""
HEAVY = ["sklearn", "matplotlib", "scipy", "torch", "tqdm", "pandas", "threadpoolctl"]


def loaded_after(code: str) -> list[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out.splitlines()[-1]))


def heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_the_layout_is_core_modules_plus_application_subpackages() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(CORE)
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(APPLICATION)


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_numpy_and_the_core_only(module: str) -> None:
    """Read the imports of each core module (at any depth, so deferred imports count too)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = (node.module or "").split(".")[0]
            names = [target] if target else [alias.name for alias in node.names]
            for name in names:
                assert name in CORE, f"core module {module} imports the application's {name!r}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            roots = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for root in (r.split(".")[0] for r in roots):
                allowed = root in ("numpy", "__future__", "ml_math_nn") or root in sys.stdlib_module_names
                # scipy only inside a function that needs it (the exact GELU's erf)
                allowed = allowed or (root == "scipy" and node.col_offset > 0)
                assert allowed, f"core module {module} imports {root}"
                assert root != "ml_math_nn" or all(n.split(".")[1] in CORE for n in roots if n.count(".")), (
                    f"core module {module} imports the application: {roots}"
                )


@pytest.mark.parametrize("module", ["ml_math_nn", *(f"ml_math_nn.{m}" for m in CORE)])
def test_importing_the_core_loads_no_heavy_library(module: str) -> None:
    assert heavy(loaded_after(f"import {module}")) == []


def test_importing_the_package_loads_no_module_of_it_until_a_name_is_used() -> None:
    loaded = loaded_after("import ml_math_nn")
    assert [m for m in loaded if m.startswith("ml_math_nn.")] == []
    loaded = loaded_after("from ml_math_nn import Network, Trainer, Adam")
    assert heavy(loaded) == []
    assert "ml_math_nn.runs" not in loaded and "ml_math_nn.integrations" not in loaded


def test_the_lazy_exports_resolve_and_are_listed() -> None:
    assert ml_math_nn.__all__ == sorted(ml_math_nn.__all__)
    for name in ml_math_nn.__all__:
        assert getattr(ml_math_nn, name) is not None, name
    assert set(dir(ml_math_nn)) >= set(ml_math_nn.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        ml_math_nn.nothing  # noqa: B018


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"]])
def test_version_and_help_load_no_library(argv: list[str]) -> None:
    """``ml-math-nn --version`` and ``--help`` load argparse and the package, nothing else of it;
    ``train --help`` may load the core (its choices list the registered optimisers) but
    nothing heavy."""
    code = (
        "import contextlib, io\nfrom ml_math_nn.runs import cli\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        cli.main({argv!r})\n"
        "    except SystemExit:\n        pass"
    )
    loaded = loaded_after(code)
    assert heavy(loaded) == []
    if argv[0] != "train":
        assert "numpy" not in loaded
        assert sorted(m for m in loaded if m.startswith("ml_math_nn")) == [
            "ml_math_nn",
            "ml_math_nn.runs",
            "ml_math_nn.runs.cli",
        ]


def test_training_loads_what_it_needs_when_it_runs(tmp_path: Path) -> None:
    """A training run does load scikit-learn (digits) and matplotlib (the figures)."""
    code = (
        f"from ml_math_nn.runs import cli\ncli.main(['train', '--epochs', '1', '--quiet', '--out', {str(tmp_path)!r}])"
    )
    loaded = loaded_after(code)
    assert {"sklearn", "matplotlib"} <= set(heavy(loaded))
