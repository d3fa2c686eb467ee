# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv (with the dev extras) when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test check lint typecheck pytest matrix demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make test: lint, type check, the whole suite, then the Django matrix.
test: check matrix

## make check: lint, type check and the suite on .venv only (the quick loop).
check: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/pyright

pytest: $(STAMP)
	$(BIN)/pytest

## The suite on Django 4.2 LTS (Python 3.11) and the newest Django 6 (Python 3.12+).
matrix: $(STAMP)
	$(BIN)/nox --reuse-existing-virtualenvs

clean:
	rm -rf $(VENV) .nox .mypy_cache .pytest_cache .ruff_cache
