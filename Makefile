# fleetlog — the two entry points a newcomer needs: `make demo` and `make test`.
# Both create (or reuse) the virtualenv in .venv by themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint typecheck check clean venv bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## demo: simulator + logger + web app on SQLite (Ctrl-C stops it)
demo: $(STAMP)
	$(BIN)/fleetlog demo

## test: lint, format check, type check and the whole test suite
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## bench: every benchmark, one run; writes bench/out/report.md and report.json (not a test)
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
