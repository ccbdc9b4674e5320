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
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text

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


@contextmanager
def fresh_database(name: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database (or schema) of its own, dropped afterwards."""
    if name == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'test.db'}")
        event.listen(engine, "connect", _sqlite_foreign_keys)
        try:
            yield engine
        finally:
            engine.dispose()
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
            engine = create_engine(
                server_url(name), connect_args={"options": f"-csearch_path={label}"}
            )
        else:
            engine = create_engine(make_url(server_url(name)).set(database=label))
        if name == "galera":
            read_url = make_url(server_url("galera_reader")).set(database=label)
            _READERS[engine] = create_engine(read_url, connect_args=CAUSAL_READS)
        try:
            yield engine
        finally:
            if engine in _READERS:
                _READERS.pop(engine).dispose()
            engine.dispose()
            with admin.connect() as connection:
                if name == "postgresql":
                    connection.execute(text(f"DROP SCHEMA {label} CASCADE"))
                else:
                    connection.execute(text(f"DROP DATABASE {label}"))
    finally:
        admin.dispose()


def _sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    # SQLite enforces foreign keys only when asked, per connection.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
