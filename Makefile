# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv (with the dev extras) when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Upstream channels and channels-redis, for interop tests and benchmarks only.
UPSTREAM := .venv-upstream
UPSTREAM_STAMP := $(UPSTREAM)/.installed-stamp

.PHONY: test check lint typecheck pytest matrix upstream demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(UPSTREAM_STAMP):
	test -x $(UPSTREAM)/bin/python || $(PYTHON) -m venv $(UPSTREAM)
	$(UPSTREAM)/bin/python -m pip install --quiet 'channels>=4.3,<4.4' 'channels-redis>=4.3,<4.4' 'Django>=5.2,<6' 'uvicorn[standard]' websockets daphne cryptography
	touch $(UPSTREAM_STAMP)

upstream: $(UPSTREAM_STAMP)

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

pytest: $(STAMP) $(UPSTREAM_STAMP)
	$(BIN)/pytest

## The suite on Django 4.2 LTS (Python 3.11, and Python 3.10 with mypy and pyright for 3.10)
## and on the newest Django 6 (Python 3.12+); see noxfile.py.
matrix: $(STAMP) $(UPSTREAM_STAMP)
	$(BIN)/nox --reuse-existing-virtualenvs

## make demo: the example chat app on http://127.0.0.1:8000 (Ctrl-C stops it).
DEMO := examples/chat
demo: $(STAMP)
	cd $(DEMO) && ../../$(BIN)/python manage.py migrate --no-input -v 0
	@echo "Chat demo: open http://127.0.0.1:8000/ in two browser windows (Ctrl-C stops it)."
	cd $(DEMO) && ../../$(BIN)/python -m daphne -b 127.0.0.1 -p 8000 chat_project.asgi:application

## make bench: typed-channels against upstream, side by side (results in benchmarks/results/).
bench: $(STAMP) $(UPSTREAM_STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(UPSTREAM) .nox .mypy_cache .pytest_cache .ruff_cache
