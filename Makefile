# Quick start: `make run` opens the TUI, `make test` runs every check (what CI runs).
# Both create .venv when it is missing and install the project into it.
#
#   make test        lint (ruff, import contracts, mypy), every benchmark's --quick mode, the whole pytest suite
#   make test-fast   the tests not marked slow (no model training), on 2 workers: about a minute
#   make lint        ruff, lint-imports (the layer contracts in pyproject.toml) and mypy
#   make bench       every benchmark in full (minutes; prints the ratios); bench-quick: seconds, no targets
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test test-fast lint typecheck bench bench-quick clean setup setup-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip

$(VENV)/.installed: pyproject.toml scripts/install-torch.sh | $(PY)
	scripts/install-torch.sh $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(BIN)/lora-tui

lint: setup-dev
	$(BIN)/ruff check lora_tui tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

typecheck: setup-dev
	$(BIN)/mypy

test: lint bench-quick
	$(BIN)/pytest -q

# -n 2 (pytest-xdist): measured on 2 cores, the not-slow tests took 56-62 s against 62-89 s in one process.
test-fast: setup-dev
	$(BIN)/pytest -q -m "not slow" -n 2

bench-quick: setup
	$(PY) benchmarks/quick.py

bench: setup
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_inspect.py
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
