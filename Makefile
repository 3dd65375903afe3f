# Every target sets up the virtualenv itself on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test coverage lint fmt check bench screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/jobtrail serve --print-token --demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The same run under coverage.py, then its report: a third slower (its tracer), so not `test`.
coverage: $(STAMP)
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report --skip-covered --sort=cover

lint: check

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The README's pictures of the dashboard, taken by its test in Chromium, into docs/.
screenshots: $(STAMP)
	JOBTRAIL_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/service/dashboard -k screenshots

# Every part on SQLite, then on PostgreSQL (127.0.0.1:5432, one and two instances; needs wrk).
bench: $(STAMP)
	$(BIN)/python -m bench --backend both

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
