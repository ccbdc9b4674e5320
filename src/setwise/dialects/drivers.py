"""The driver's own connection, for the calls SQLAlchemy has no API for, sync or asyncio.

setwise reaches past SQLAlchemy for a few fast or fine paths: COPY, LOAD DATA LOCAL,
SQLite's progress handler. With an asyncio driver (aiosqlite, psycopg's
``AsyncConnection``, asyncpg, aiomysql) SQLAlchemy's ``dbapi_connection`` is its own
sync adapter, which has none of these; the driver's connection has them as
coroutines. setwise.asyncio runs the sync engine in SQLAlchemy's greenlet, where
``await_only`` awaits a coroutine on the event loop, as SQLAlchemy's adapters do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.util import await_only


def driver_connection(connection: Connection) -> Any:
    """The driver's own connection under ``connection`` (psycopg's, aiosqlite's,
    asyncpg's ...): the DBAPI connection itself with a sync driver."""
    return connection.connection.driver_connection


def is_async(connection: Connection) -> bool:
    """Whether the driver is an asyncio one, whose calls return coroutines."""
    return bool(connection.dialect.is_async)


def awaited(connection: Connection, value: Any) -> Any:
    """``value`` as a sync driver returns it, or a coroutine's result with an asyncio
    driver (run inside setwise.asyncio's greenlet)."""
    return await_only(value) if is_async(connection) else value


def call(connection: Connection, method: str, *args: Any) -> Any:
    """``driver_connection(connection).method(*args)``, awaited with an asyncio driver."""
    return awaited(connection, getattr(driver_connection(connection), method)(*args))
