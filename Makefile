# One entry point for set-up, demo, tests and checks, the same locally and in CI.
# TORCH_SPEC pins the torch build to install; override it for a CUDA machine, e.g.
#   make test TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3.11
TORCH_SPEC ?= torch==2.13.0
# Versions that spare pip's resolver a long backtrack (see the file); empty to resolve freely.
CONSTRAINTS ?= constraints.txt
CONSTRAINT_ARGS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
BENCH_ARGS ?=

.PHONY: setup demo test test-slow bench check lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml Makefile $(CONSTRAINTS)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet $(CONSTRAINT_ARGS) -e ".[dev]"
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $(CONSTRAINT_ARGS) -e ".[dev,bench]"
	touch $(BENCH_STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py
	$(PY) examples/fewshot_protonet.py --quick

test: $(STAMP)
	$(PY) -m pytest -q

# The long fault-injection trials (resume, bit flips, pack kills) that `make test` samples.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Benchmarks against baselines measured in the same run; `make bench BENCH_ARGS=--quick`.
bench: $(BENCH_STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tests examples benchmarks
	$(PY) -m ruff format --check src tests examples benchmarks
	$(PY) -m mypy

check: lint test

format: $(STAMP)
	$(PY) -m ruff format src tests examples benchmarks
	$(PY) -m ruff check --fix src tests examples benchmarks

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
