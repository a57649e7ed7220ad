# Kairan.  Only Python 3.11+ (and make) are needed:
#   make run    install into .venv and run a development node (SQLite) on http://localhost:8008
#   make test   install, then ruff, mypy, the unit tests (SQLite, and PostgreSQL when reachable)
#               and the interop suite against real Synapse nodes (installed from PyPI)
#   make bench  the protocol engine benchmark
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint pytest interop bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest

interop: install
	$(BIN)/kairan interop run --with-synapse --pairs all

test: lint pytest interop

run: install
	$(BIN)/kairan serve --dev --dir kairan-data

bench: install
	$(BIN)/kairan bench engine

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
