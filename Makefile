# `make run` trains the default model on digits; `make test` runs the test suite.
# Both create .venv from pyproject.toml on first use: `make run` installs only what running
# needs (numpy, matplotlib, scikit-learn, scipy, tqdm); `make test` (and `make bench`) also
# the test extra (PyTorch, pandas, hypothesis, playwright, onnx, dask: much larger).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test serve bench mutants lint clean

$(VENV)/.installed: pyproject.toml
	@echo "make: creating $(VENV) and installing ml-math-nn with what it needs to run (first time only)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@echo "make: installing the test extra into $(VENV) (PyTorch CPU, pandas, hypothesis, playwright, onnx, dask: large; first time only)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed
	$(PY) -m ml_math_nn train

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

# The web dashboard and network explorer on the runs under runs/ (http://127.0.0.1:8000/).
serve: $(VENV)/.installed
	mkdir -p runs
	$(PY) -m ml_math_nn serve runs

# Speed against scikit-learn and PyTorch, and start-up time (see BENCHMARKS.md);
# BENCH_ARGS=--quick for a short check.  The harness lives in benchmarks/, outside the library.
bench: $(VENV)/.installed-test
	$(PY) benchmarks/harness.py $(BENCH_ARGS)
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/cnn.py

# Mutation testing of the core (tools/mutants.py; results in docs/mutation-testing.md): each of a
# list of small changes to a copy of the committed code must make its tests fail.  Slow (about
# half an hour on 2 cores), so not part of `make test` or CI; MUTANTS_ARGS=-k optim for a subset.
mutants: $(VENV)/.installed-test
	$(PY) tools/mutants.py $(MUTANTS_ARGS)

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check src tests
	$(PY) -m mypy

clean:
	rm -rf $(VENV) runs .pytest_cache
