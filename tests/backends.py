"""The databases the tests run on, and how to give each test a fresh one.

URLs come from the environment, defaulting to the local servers:

    SETWISE_TEST_POSTGRESQL  postgresql+psycopg://root@127.0.0.1:5432/test
    SETWISE_TEST_MARIADB     mariadb+pymysql://root@127.0.0.1:3306/test

SQLite needs no server. A backend whose server does not answer is skipped with the
reason shown, or fails the run when CI=true: a green CI means every backend ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text

NAMES = ("sqlite", "postgresql", "mariadb")

DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://root@127.0.0.1:5432/test",
    "mariadb": "mariadb+pymysql://root@127.0.0.1:3306/test",
}


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
    url = server_url(name)
    engine = create_engine(url, connect_args=_timeout_args(name))
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version()")).scalar_one()
        return Availability(True, str(version).split(" on ")[0])
    except Exception as exc:
        reason = str(exc).splitlines()[0]
        return Availability(False, f"{make_url(url).render_as_string()}: {reason}")
    finally:
        engine.dispose()


def _timeout_args(name: str) -> dict[str, int]:
    return {"connect_timeout": 3}


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
    admin = create_engine(server_url(name), isolation_level="AUTOCOMMIT")
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
        try:
            yield engine
        finally:
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
