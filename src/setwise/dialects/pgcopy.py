"""COPY … FROM STDIN on each PostgreSQL driver: psycopg, psycopg's AsyncConnection, asyncpg.

One stream per COPY, written block by block while Python formats the next (the server
parses one while the client converts another). The caller formats the text
(``bulktext``) or hands rows the driver adapts itself (``write_rows``), and sees one
``CopyStream`` whatever the driver:

- psycopg: ``cursor.copy(statement)``, as it is;
- psycopg's AsyncConnection: the same object's coroutines, awaited in setwise.asyncio's
  greenlet (``drivers.awaited``);
- asyncpg: ``copy_to_table`` reading an asynchronous iterator the blocks are queued to,
  run as a task beside the greenlet; rows go by ``copy_records_to_table`` (asyncpg's
  binary codecs, as psycopg's adapters do for ``write_row``), between two streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from sqlalchemy import Connection, Table
from sqlalchemy.util import await_only

from setwise.dialects.drivers import awaited, driver_connection, is_async

#: Blocks queued ahead of asyncpg's COPY: one being sent while the next is formatted,
#: as with psycopg's own writer; more would only hold memory.
QUEUED_BLOCKS = 2


class CopyStream(Protocol):
    def write(self, data: str | bytes) -> None:
        """Send a block of text in the COPY's format."""

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Send rows of Python values, adapted by the driver."""


@contextmanager
def copy_in(
    connection: Connection, table: Table, names: Sequence[str], *, csv: bool = False
) -> Iterator[CopyStream]:
    """A COPY of ``names`` into ``table`` from the client, in text format (``csv``:
    CSV without a header, an empty field NULL, quoted or not, UTF-8), in the
    connection's transaction; it ends when the block does, and fails with it.

    Cancelled (a KeyboardInterrupt, an asyncio task's CancelledError) in the middle of
    the driver's COPY, the connection is in no state to be used: it is invalidated, as
    SQLAlchemy does when its own statements are cancelled, and the interrupt goes on."""
    try:
        with _copy_in(connection, table, names, csv=csv) as stream:
            yield stream
    except BaseException as exc:
        if not isinstance(exc, Exception):
            connection.invalidate(exc)
        raise


@contextmanager
def _copy_in(
    connection: Connection, table: Table, names: Sequence[str], *, csv: bool
) -> Iterator[CopyStream]:
    if connection.dialect.driver == "asyncpg":
        with _asyncpg_copy(connection, table, names, csv=csv) as stream:
            yield stream
        return
    preparer = connection.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in names)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"
    if csv:
        statement += (
            f" (FORMAT csv, HEADER false, NULL '', FORCE_NULL ({columns}), ENCODING 'UTF8')"
        )
    raw: Any = driver_connection(connection)
    if not is_async(connection):
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            yield _PsycopgStream(connection, copy)
        return
    cursor = raw.cursor()
    manager = cursor.copy(statement)
    copy = await_only(manager.__aenter__())
    try:
        yield _PsycopgStream(connection, copy)
    except Exception as exc:
        await_only(manager.__aexit__(type(exc), exc, exc.__traceback__))
        await_only(cursor.close())
        raise
    await_only(manager.__aexit__(None, None, None))
    await_only(cursor.close())


class _PsycopgStream:
    """psycopg's Copy; an AsyncConnection's, its coroutines awaited."""

    def __init__(self, connection: Connection, copy: Any) -> None:
        self.connection = connection
        self.copy = copy

    def write(self, data: str | bytes) -> None:
        awaited(self.connection, self.copy.write(data))

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            awaited(self.connection, self.copy.write_row(row))


class _Stop(Exception):
    """Sent into asyncpg's COPY to end it without its rows (the caller failed)."""


@contextmanager
def _asyncpg_copy(
    connection: Connection, table: Table, names: Sequence[str], *, csv: bool
) -> Iterator[CopyStream]:
    # asyncpg sends a COPY outside SQLAlchemy's adapter, which begins its transaction
    # at the first statement: begin it now, or the COPY would commit on its own.
    raw: Any = driver_connection(connection)
    if connection.in_transaction() and not raw.is_in_transaction():
        connection.exec_driver_sql("SELECT 1")
    options: dict[str, Any] = {"format": "text"}
    if csv:
        options = {
            "format": "csv",
            "header": False,
            "null": "",
            "force_null": list(names),
            "encoding": "UTF8",
        }
    stream = _AsyncpgStream(raw, table, list(names), options)
    try:
        yield stream
    except Exception:
        stream.close(failed=True)
        raise
    except BaseException:
        stream.abandon()  # interrupted: the connection goes, and its COPY with it
        raise
    stream.close(failed=False)


class _AsyncpgStream:
    """Text blocks queued to one ``copy_to_table`` at a time; rows between two."""

    def __init__(self, raw: Any, table: Table, names: list[str], options: dict[str, Any]):
        self.raw = raw
        self.table = table
        self.names = names
        self.options = options
        self.queue: asyncio.Queue[bytes | _Stop | None] | None = None
        self.task: asyncio.Task[Any] | None = None

    def write(self, data: str | bytes) -> None:
        if self.task is None:
            self.queue = asyncio.Queue(QUEUED_BLOCKS)
            copying = self.raw.copy_to_table(
                self.table.name,
                source=self._blocks(self.queue),
                columns=self.names,
                schema_name=self.table.schema,
                **self.options,
            )
            self.task = asyncio.get_running_loop().create_task(copying)
        assert self.queue is not None
        block = data.encode() if isinstance(data, str) else data
        if self.task.done():  # failed early: its error, not a queue nobody reads
            await_only(self.task)
        await_only(self.queue.put(block))

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self.close(failed=False)
        copying = self.raw.copy_records_to_table(
            self.table.name,
            records=[tuple(row) for row in rows],
            columns=self.names,
            schema_name=self.table.schema,
        )
        await_only(copying)

    def close(self, *, failed: bool) -> None:
        """End the stream: its rows written, or (``failed``) none of them."""
        task, queue = self.task, self.queue
        self.task = self.queue = None
        if task is None or queue is None:
            return
        if not failed:
            await_only(queue.put(None))
            await_only(task)
            return
        if not task.done():
            await_only(queue.put(_Stop()))
        with suppress(Exception):  # the caller's own error is the one to see
            await_only(task)

    def abandon(self) -> None:
        """Stop the stream without waiting for it (the caller was interrupted)."""
        task, self.task, self.queue = self.task, None, None
        if task is not None:
            task.cancel()
            task.add_done_callback(_retrieved)

    @staticmethod
    async def _blocks(queue: asyncio.Queue[bytes | _Stop | None]) -> AsyncIterator[bytes]:
        while True:
            block = await queue.get()
            if block is None:
                return
            if isinstance(block, _Stop):
                raise block
            yield block


def is_data_error(error: BaseException) -> bool:
    """Whether the driver's ``error`` is PostgreSQL's class 22 (a bad value, a short
    record), raised by a COPY as the driver raises it."""
    code = getattr(error, "sqlstate", None)  # psycopg's errors and asyncpg's alike
    return isinstance(code, str) and code.startswith("22")


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Take a task's outcome, so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
