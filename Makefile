# Quick start: `make run` opens the TUI, `make test` runs lint and the tests.
# Both create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test lint typecheck bench clean setup setup-dev

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
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: setup
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
