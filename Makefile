# `make run` trains the default model on digits; `make test` runs the test suite.
# Both create .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test serve bench mutants lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed
	$(PY) -m ml_math_nn train

test: $(VENV)/.installed
	$(PY) -m pytest -q

# The web dashboard and network explorer on the runs under runs/ (http://127.0.0.1:8000/).
serve: $(VENV)/.installed
	mkdir -p runs
	$(PY) -m ml_math_nn serve runs

# Speed against scikit-learn and PyTorch, and start-up time (see BENCHMARKS.md);
# BENCH_ARGS=--quick for a short check.  The harness lives in benchmarks/, outside the library.
bench: $(VENV)/.installed
	$(PY) benchmarks/harness.py $(BENCH_ARGS)
	$(PY) benchmarks/import_time.py

# Mutation testing of the core (tools/mutants.py; results in docs/mutation-testing.md): each of a
# list of small changes to a copy of the committed code must make its tests fail.  Slow (about
# half an hour on 2 cores), so not part of `make test` or CI; MUTANTS_ARGS=-k optim for a subset.
mutants: $(VENV)/.installed
	$(PY) tools/mutants.py $(MUTANTS_ARGS)

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check src tests
	$(PY) -m mypy

clean:
	rm -rf $(VENV) runs .pytest_cache
