"""The databases the tests run on, and how to give each test a fresh one.

URLs come from the environment, defaulting to the local servers:

    SETWISE_TEST_POSTGRESQL  postgresql+psycopg://root@127.0.0.1:5432/test
    SETWISE_TEST_MARIADB     mariadb+pymysql://root@127.0.0.1:3306/test
    SETWISE_TEST_GALERA      mariadb+pymysql://galera:galera@127.0.0.1:4306/test
    SETWISE_TEST_GALERA_READER  the same cluster through another node (default port 4308)

The Galera cluster (``../shared/galera/up.sh``) is written through one node and read
back through another: ``reader(engine)`` gives the engine checks should read through.
SQLite needs no server. A backend whose server does not answer is skipped with the
reason shown, or fails the run when CI=true: a green CI means every backend ran.
SETWISE_TEST_BACKENDS (comma-separated names) narrows a run to some backends, as the
run on the oldest SQLAlchemy does (``make test-oldest``: SQLite only).

A test that needs something only some databases do names it, not the databases:
``@pytest.mark.requires("packed_journal")`` runs it on the backends that have it,
``@pytest.mark.lacks("nul_in_text")`` on those that do not. ``CAPABILITIES`` says
what each name means and where it holds: read from the strategy's own flags where
setwise has one, so a test follows the flag; listed by backend where a probe or the
server decides. ``@pytest.mark.backends(...)`` stays for tests of one database's own
SQL or settings (CITEXT, a latin1 column, pysqlite's busy timeout).
"""

from __future__ import annotations

import importlib.util
import os
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from setwise.dialects import Strategy, get_strategy

NAMES = ("sqlite", "postgresql", "mariadb", "galera")

DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://root@127.0.0.1:5432/test",
    "mariadb": "mariadb+pymysql://root@127.0.0.1:3306/test",
    "galera": "mariadb+pymysql://galera:galera@127.0.0.1:4306/test",
    "galera_reader": "mariadb+pymysql://galera:galera@127.0.0.1:4308/test",
}

#: Reads through another node wait until that node has applied every earlier commit;
#: without it a check right after a commit may see the row as it was.
CAUSAL_READS = {"init_command": "SET SESSION wsrep_sync_wait = 1"}

#: The engine checks read through, per engine a test writes through (Galera's third node).
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def reader(engine: Engine) -> Engine:
    """The engine to check ``engine``'s writes through: another node on Galera."""
    return _READERS.get(engine, engine)


@cache
def selected() -> tuple[str, ...]:
    """The backends this run tests: SETWISE_TEST_BACKENDS, or all of them."""
    chosen = os.environ.get("SETWISE_TEST_BACKENDS", "").replace(" ", "")
    if not chosen:
        return NAMES
    names = tuple(chosen.split(","))
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"SETWISE_TEST_BACKENDS names {unknown}; the backends are {NAMES}")
    return names


def server_url(name: str) -> str:
    return os.environ.get(f"SETWISE_TEST_{name.upper()}", DEFAULT_URLS[name])


@dataclass(frozen=True)
class Capability:
    """Something only some databases do, that a test needs (or needs to be without)."""

    meaning: str
    """What the database does, for the reason of a skip."""
    flag: Callable[[Strategy], bool] | None = None
    """Whether a backend has it, read from its strategy; None: ``names`` say."""
    names: tuple[str, ...] = ()
    """The backends that have it, where no strategy flag tells (a probe decides)."""


def flagged(meaning: str, attribute: str) -> Capability:
    """A capability a strategy has when its attribute ``attribute`` is set (true, or
    anything but None and empty)."""
    return Capability(
        f"{meaning} (Strategy.{attribute})",
        flag=lambda strategy: bool(getattr(strategy, attribute)),
    )


CAPABILITIES = {
    "csv_files": flagged("reads a CSV file itself, by COPY FROM STDIN", "reads_csv_files"),
    "packed_journal": flagged("packs a chunk's journal into array parts", "packs_journal"),
    "kept_stage": flagged(
        "keeps an interrupted run's staging table for its resume", "kept_stage_prefixes"
    ),
    "snapshot_refuses_stale_writes": flagged(
        "refuses to write a row changed since the snapshot of a REPEATABLE READ transaction",
        "snapshot_chunks",
    ),
    "plain_reads_lag_writes": flagged(
        "reads an older snapshot with plain SELECTs while writes see the newest rows",
        "plain_reads_lag_writes",
    ),
    "single_writer": flagged("lets one transaction at a time write", "single_writer"),
    "nonfinite_floats": flagged(
        "stores NaN and infinities in a FLOAT column", "floats_hold_nonfinite"
    ),
    "nul_in_text": flagged("stores a NUL character in text", "text_holds_nul"),
    "typed_storage": Capability(
        "stores a value as its column's type makes it (CHAR pads, TIMESTAMP(0) drops "
        "the fraction), where SQLite keeps what it is given",
        names=("postgresql", "mariadb", "galera"),
    ),
    "column_charsets": Capability(
        "gives a text column a character set of its own (latin1 beside utf8mb4)",
        names=("mariadb", "galera"),
    ),
    "load_data_local": Capability(
        "stages through LOAD DATA LOCAL INFILE when the connection allows it "
        "(probed per connection: dialects/mysql_load.py)",
        names=("mariadb",),
    ),
    "foreign_keys_always": Capability(
        "enforces foreign keys on every connection, where SQLite does only on a connection "
        "that turns them on (the tests' engines do; the command line's do not)",
        names=("postgresql", "mariadb", "galera"),
    ),
    "cluster": Capability(
        "is a Galera cluster: certification aborts, a cap on rows per transaction "
        "(probed per connection: dialects/galera.py)",
        names=("galera",),
    ),
}


@cache
def strategy_of(name: str) -> Strategy:
    """The strategy setwise picks for the backend, from its URL: no connection is made."""
    url = "sqlite://" if name == "sqlite" else server_url(name)
    engine = create_engine(url)
    try:
        return get_strategy(engine.dialect)
    finally:
        engine.dispose()


def has(name: str, capability: str) -> bool:
    """Whether backend ``name`` has ``capability`` (a key of ``CAPABILITIES``)."""
    found = CAPABILITIES.get(capability)
    if found is None:
        raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
    if found.flag is not None:
        return found.flag(strategy_of(name))
    return name in found.names


def able(
    names: Iterable[str], requires: Iterable[str] = (), lacks: Iterable[str] = ()
) -> list[str]:
    """Those of ``names`` with every capability in ``requires`` and none in ``lacks``."""
    requires, lacks = list(requires), list(lacks)
    return [
        name
        for name in names
        if all(has(name, c) for c in requires) and not any(has(name, c) for c in lacks)
    ]


def needs(requires: Iterable[str] = (), lacks: Iterable[str] = ()) -> str:
    """What a test needs, in words: the reason it is skipped where nothing has it."""
    parts = [f"a database that {CAPABILITIES[c].meaning}" for c in requires]
    parts += [f"a database other than one that {CAPABILITIES[c].meaning}" for c in lacks]
    return "; ".join(parts)


def journals_in_update(engine: Engine) -> bool:
    """Whether a journaled chunk on ``engine`` journals its rows in its UPDATE
    (``WITH setwise_changed AS (UPDATE …) INSERT INTO journal …``): PostgreSQL 18 and
    later, read off the server here, not from setwise."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        number = connection.exec_driver_sql("SHOW server_version_num").scalar_one()
    return int(number) >= 180000


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Availability:
    ok: bool
    detail: str  # the server version, or why it could not be reached


@cache
def availability(name: str) -> Availability:
    """Whether the backend's server answers, asked once per test session."""
    if name == "sqlite":
        import sqlite3

        return Availability(True, f"SQLite {sqlite3.sqlite_version}")
    url = _admin_url(name)
    engine = create_engine(url, connect_args=_timeout_args(name))
    try:
        with engine.connect() as connection:
            version = str(connection.execute(text("SELECT version()")).scalar_one())
            if name == "galera":
                size = connection.execute(text(_CLUSTER_SIZE)).scalar()
                if size is None:
                    return Availability(False, f"{version} is not a Galera node")
                version += f", Galera cluster of {size} node(s)"
        return Availability(True, version.split(" on ")[0])
    except Exception as exc:
        reason = str(exc).splitlines()[0]
        return Availability(False, f"{make_url(url).render_as_string()}: {reason}")
    finally:
        engine.dispose()


_CLUSTER_SIZE = (
    "SELECT variable_value FROM information_schema.global_status "
    "WHERE variable_name = 'WSREP_CLUSTER_SIZE'"
)


def _timeout_args(name: str) -> dict[str, int]:
    return {"connect_timeout": 3}


def _admin_url(name: str) -> str:
    """Galera's user starts with no database of its own: connect to none."""
    url = server_url(name)
    if name == "galera":
        return make_url(url)._replace(database=None).render_as_string(hide_password=False)
    return url


#: The asyncio drivers a backend's tests marked ``async_twin`` run on too (tests/asynctwin.py).
ASYNC_DRIVERS = {
    "sqlite": ("aiosqlite",),
    "postgresql": ("psycopg_async", "asyncpg"),
    "mariadb": ("aiomysql",),
}


#: Other sync drivers a backend's tests marked ``driver_twin`` run on too, with the module
#: each imports: mysqlclient, the C driver of SQLAlchemy's ``mysql://`` URLs.
SYNC_DRIVERS = {"mariadb": {"mysqldb": "MySQLdb"}}


def is_async_driver(driver: str) -> bool:
    return any(driver in drivers for drivers in ASYNC_DRIVERS.values())


def missing_driver(driver: str) -> str | None:
    """The module of a ``SYNC_DRIVERS`` driver when it is not installed, else None."""
    for drivers in SYNC_DRIVERS.values():
        module = drivers.get(driver)
        if module is not None and importlib.util.find_spec(module) is None:
            return module
    return None


def engine_on(url: str | URL, driver: str, connect_args: dict[str, Any] | None = None) -> Engine:
    """An engine on ``url`` with the sync driver of its URL, another sync ``driver`` of
    ``SYNC_DRIVERS``, or an asyncio one: then the ``sync_engine`` of an AsyncEngine,
    usable in a greenlet only."""
    args = connect_args or {}
    if driver == "sync":
        return create_engine(url, connect_args=args)
    found = make_url(url)
    if not is_async_driver(driver):
        return create_engine(
            found.set(drivername=f"{found.get_backend_name()}+{driver}"), connect_args=args
        )
    if driver == "asyncpg" and "options" in args:  # asyncpg takes no libpq options
        path = args["options"].removeprefix("-csearch_path=")
        args = {"server_settings": {"search_path": path}}
    found = found.set(drivername=f"{found.get_backend_name()}+{driver}")
    return create_async_engine(found, connect_args=args).sync_engine


def _dispose(engine: Engine) -> None:
    if engine.dialect.is_async:
        await_only(AsyncEngine(engine).dispose())
    else:
        engine.dispose()


@contextmanager
def fresh_database(name: str, tmp_path: Path, driver: str = "sync") -> Iterator[Engine]:
    """An engine on an empty database (or schema) of its own, dropped afterwards;
    ``driver``: an asyncio driver of ``ASYNC_DRIVERS`` instead of the URL's."""
    if name == "sqlite":
        engine = engine_on(f"sqlite:///{tmp_path / 'test.db'}", driver)
        event.listen(engine, "connect", _sqlite_foreign_keys)
        try:
            yield engine
        finally:
            _dispose(engine)
        return

    label = f"sw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(name), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if name == "postgresql":
                connection.execute(text(f"CREATE SCHEMA {label}"))
            else:
                connection.execute(text(f"CREATE DATABASE {label}"))
        if name == "postgresql":
            engine = engine_on(server_url(name), driver, {"options": f"-csearch_path={label}"})
        else:
            engine = engine_on(make_url(server_url(name)).set(database=label), driver)
        if name == "galera":
            _READERS[engine] = _galera_reader(label)
        try:
            yield engine
        finally:
            if engine in _READERS:
                _READERS.pop(engine).dispose()
            _dispose(engine)
            with admin.connect() as connection:
                if name == "postgresql":
                    connection.execute(text(f"DROP SCHEMA {label} CASCADE"))
                else:
                    connection.execute(text(f"DROP DATABASE {label}"))
    finally:
        admin.dispose()


def _galera_reader(database: str) -> Engine:
    """An engine on ``database`` through the reading node, once that node has it.

    A connection names its database before ``wsrep_sync_wait`` applies, so right
    after CREATE DATABASE on the writing node it can fail with "Unknown database";
    one causal read with no database named waits for the node to catch up first.
    """
    url = make_url(server_url("galera_reader"))
    waiter = create_engine(url._replace(database=None), connect_args=CAUSAL_READS)
    try:
        with waiter.connect() as connection:
            known = connection.execute(
                text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name"),
                {"name": database},
            ).scalar_one()
    finally:
        waiter.dispose()
    if known != 1:
        raise RuntimeError(f"the Galera reading node lacks {database} after a causal read")
    return create_engine(url.set(database=database), connect_args=CAUSAL_READS)


def _sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    # SQLite enforces foreign keys only when asked, per connection.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def short_lock_waits(engine: Engine) -> None:
    """Make lock waits fail fast, as a busy production database would, to provoke retries."""
    dialect = engine.dialect.name

    @event.listens_for(engine, "connect")
    def short_waits(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if dialect == "postgresql":
            cursor.execute("SET SESSION lock_timeout = '300ms'")
        elif dialect in ("mysql", "mariadb"):
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        else:
            cursor.execute("PRAGMA busy_timeout = 100")
        cursor.close()
        dbapi_connection.commit()  # psycopg runs SET in a transaction: keep it
