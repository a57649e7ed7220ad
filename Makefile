# Kairan.  Only Python 3.11+ (and make) are needed:
#   make run          install into .venv and run a development node (SQLite) on http://localhost:8008
#   make test         install, then ruff, mypy, the unit tests (SQLite, and PostgreSQL when
#                     reachable; tests/test_layering.py checks the import layering of
#                     pyproject.toml) and the interop suite against real Synapse nodes
#                     (installed from PyPI); needs nothing from outside the clone
#   make conformance  KAIRAN_MATRIX_SPEC=/path/to/matrix-spec (a checkout of
#                     https://github.com/matrix-org/matrix-spec): the tests again, those that
#                     validate responses against the spec's OpenAPI (data/api), validation on
#   make bench        the protocol engine benchmark
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint pytest conformance matrix-spec interop bench clean

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

# Tests marked conformance only check the spec or the validator: they need the spec.
pytest: install
	$(BIN)/python -m pytest -m "not conformance" --durations=15

# pytest exits non-zero (5) if the selection is empty, and fails a run that validated nothing.
conformance: matrix-spec install
	$(BIN)/python -m pytest --matrix-spec="$(KAIRAN_MATRIX_SPEC)" -m "conformance or openapi"

matrix-spec:
	$(if $(KAIRAN_MATRIX_SPEC),,$(error KAIRAN_MATRIX_SPEC is not set: make conformance KAIRAN_MATRIX_SPEC=/path/to/matrix-spec (a checkout of https://github.com/matrix-org/matrix-spec)))
	$(if $(wildcard $(KAIRAN_MATRIX_SPEC)/data/api/client-server/.),,$(error KAIRAN_MATRIX_SPEC=$(KAIRAN_MATRIX_SPEC) is not a matrix-spec checkout (no data/api/client-server)))

interop: install
	$(BIN)/kairan interop run --with-synapse --pairs all

test: lint pytest interop

run: install
	$(BIN)/kairan serve --dev --dir kairan-data

bench: install
	$(BIN)/kairan bench engine

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
