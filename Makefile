# Two entry points: `make demo` and `make test`. Each builds its own virtual
# environment (.venv) on first use and reinstalls when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-galera lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# CockroachDB's and YugabyteDB's dialects, for the compile-only tests in tests/dialects:
	# both pin SQLAlchemy<2.1 but work under 2.1, so they go in without their dependencies.
	$(BIN)/python -m pip install --quiet --no-deps "sqlalchemy-cockroachdb==2.0.4" \
		"sqlalchemy-yugabytedb==1.0.0.1"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m setwise.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy

# With CI=true the Galera cluster backend is started first and stopped afterwards
# (.ci/galera.sh; ../shared/galera beside the clone); without it, a cluster that is
# not running is a visible skip.
test: lint typecheck
ifeq ($(CI),true)
	bash .ci/galera.sh up
	$(BIN)/pytest; status=$$?; bash .ci/galera.sh down; exit $$status
else
	$(BIN)/pytest
endif

# The behaviour tests on the Galera cluster only, starting and stopping it as CI does.
test-galera: $(STAMP)
	bash .ci/galera.sh up
	$(BIN)/pytest -k galera; status=$$?; bash .ci/galera.sh down; exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) setwise.db .mypy_cache .ruff_cache .pytest_cache
