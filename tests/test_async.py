"""setwise.asyncio itself, on each backend's asyncio drivers: the AsyncSession's loaded
objects, cancellation, COPY on the async PostgreSQL drivers, watch on an AsyncEngine.

Each test runs in a greenlet on an event loop (tests/asynctwin.py), where ``await_only``
awaits a coroutine as the body of an ``async def`` would. The behaviour tests of
update, apply, patch, plan and revert run through setwise.asyncio too (their modules
are marked ``async_twin``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import asyncpg
import psycopg
import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.util import await_only

import setwise
import setwise.asyncio
from tests import backends
from tests.models import Book, book_row, create_books, snapshot
from tests.test_resume import journal_of

pytestmark = pytest.mark.async_twin("only")

T = TypeVar("T")


def wait(coroutine: Coroutine[Any, Any, T]) -> T:
    """``await coroutine``, from the test's greenlet."""
    return await_only(coroutine)


@pytest.fixture
def books(engine: Engine) -> AsyncEngine:
    create_books(engine, 40)
    return AsyncEngine(engine)


def prices(engine: AsyncEngine) -> dict[int, Decimal]:
    async def read() -> dict[int, Decimal]:
        async with engine.connect() as connection:
            rows = await connection.execute(select(Book.id, Book.price))
            return dict(rows.all())  # type: ignore[arg-type]

    return wait(read())


# -- the session's loaded objects ---------------------------------------------------


@pytest.mark.parametrize("how", ["in-their-transaction", "after-a-commit", "chunked"])
def test_loaded_objects_show_the_new_values_without_refresh(books: AsyncEngine, how: str) -> None:
    # In the session's transaction (autobegun by the SELECT) setwise works in a
    # savepoint; after the caller's commit (which expired the objects) in a transaction
    # of its own; a chunked run on a connection of its own. Each time the objects of
    # the rows written are loaded with their new values: reading them needs no await.
    async def scenario() -> list[tuple[int, Decimal, int, str]]:
        async with AsyncSession(books, expire_on_commit=how != "chunked") as session:
            loaded = (await session.scalars(select(Book).where(Book.id <= 10))).all()
            if how != "in-their-transaction":
                await session.commit()
            await setwise.asyncio.update(
                session,
                update(Book).where(Book.id <= 20).values(price=Book.price + 1, stock=0),
                chunk_rows=7 if how == "chunked" else None,
            )
            # Plain attribute reads: a lazy load here would raise MissingGreenlet.
            return [(b.id, b.price, b.stock, b.title) for b in loaded]

    seen = wait(scenario())
    expected = [
        (i, book_row(i)["price"] + 1, 0, book_row(i)["title"])  # type: ignore[operator]
        for i in range(1, 11)
    ]
    assert seen == expected


def test_apply_in_the_callers_transaction_keeps_it_open_and_objects_current(
    books: AsyncEngine,
) -> None:
    async def scenario() -> tuple[list[Decimal], bool]:
        async with AsyncSession(books) as session, session.begin():
            loaded = (await session.scalars(select(Book).where(Book.id <= 3))).all()
            rows = [{"id": i, "price": Decimal("5.25")} for i in (1, 2, 3)]
            report = await setwise.asyncio.apply(session, Book, rows)
            assert report.changed == 3
            return [b.price for b in loaded], session.in_transaction()

    found, still_open = wait(scenario())
    assert found == [Decimal("5.25")] * 3 and still_open
    assert [prices(books)[i] for i in (1, 2, 3)] == [Decimal("5.25")] * 3


def test_patch_on_an_async_session_returns_the_stored_object(books: AsyncEngine) -> None:
    async def scenario() -> tuple[Decimal, int, type[BaseException]]:
        async with AsyncSession(books) as session:
            book = await setwise.asyncio.patch(
                session, Book, 5, {"price": Decimal("9.99")}, expected_version=1
            )
            stored = (book.price, book.version)
            try:
                await setwise.asyncio.patch(session, Book, 5, {"stock": 1}, expected_version=1)
            except setwise.ConflictError as exc:
                # Rolled back, as after any rollback of a Session the objects are
                # expired: refreshed with an await.
                await session.refresh(book)
                assert (book.price, book.version, exc.current_version) == (*stored, 2)
                return (*stored, type(exc))
            raise AssertionError("a stale version was written")

    price, version, error = wait(scenario())
    assert (price, version, error) == (Decimal("9.99"), 2, setwise.ConflictError)


def test_a_sync_bind_is_refused_with_the_function_to_call_instead(engine: Engine) -> None:
    with pytest.raises(TypeError, match=r"call setwise\.runs itself"):
        wait(setwise.asyncio.runs(engine))  # type: ignore[arg-type]


# -- cancellation --------------------------------------------------------------------


def cancelled_apply(books: AsyncEngine, changes: list[dict[str, Any]], after: int) -> str:
    """Apply ``changes`` in chunks of 6 rows, the task cancelled once chunk ``after`` is
    reported: the CancelledError reaches the run inside the next chunk's driver call."""

    async def scenario() -> str:
        task = asyncio.current_task()
        assert task is not None

        def cancel(progress: setwise.Progress) -> None:
            if progress.chunk == after:
                task.cancel()

        try:
            await setwise.asyncio.apply(books, Book, changes, chunk_rows=6, progress=cancel)
        except asyncio.CancelledError as exc:
            task.uncancel()
            stopped = exc.__cause__
            assert isinstance(stopped, setwise.RunInterrupted) and stopped.marked
            assert any(f"resume={stopped.run_id!r}" in note for note in exc.__notes__)
            return stopped.run_id
        raise AssertionError("the run was not cancelled")

    return wait(scenario())


def test_a_cancelled_run_resumes_to_what_an_uninterrupted_run_gives(
    books: AsyncEngine, engine: Engine, backend: str, driver: str, tmp_path: Path
) -> None:
    changes = [{"id": i, "price": Decimal(i) / 4, "stock": 1000 + i} for i in range(1, 41)]
    run_id = cancelled_apply(books, changes, after=3)
    (info,) = wait(setwise.asyncio.runs(books, status="interrupted"))
    assert (info.run_id, info.chunks) == (run_id, 3)
    done = {i for i in range(1, 41) if prices(books)[i] == Decimal(i) / 4}
    assert done == set(range(1, 19))  # chunks 1-3 whole; chunk 4 rolled back whole
    report = wait(setwise.asyncio.apply(books, Book, changes, chunk_rows=6, resume=run_id))
    assert (report.run_id, report.chunks) == (run_id, 7)

    (tmp_path / "twin").mkdir()
    with backends.fresh_database(backend, tmp_path / "twin", driver) as other:
        create_books(other, 40)
        whole = wait(setwise.asyncio.apply(AsyncEngine(other), Book, changes, chunk_rows=6))
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, run_id) == journal_of(other, whole.run_id or "")


def test_a_timeout_stops_the_run_between_statements_and_it_resumes(
    books: AsyncEngine, engine: Engine
) -> None:
    changes = [{"id": i, "stock": -i} for i in range(1, 41)]
    # 40 chunks, 10 ms apart at least: the deadline comes in the middle of the run.
    slow = setwise.asyncio.apply(books, Book, changes, chunk_rows=1, throttle_seconds=0.01)

    async def scenario() -> None:
        await asyncio.wait_for(slow, timeout=0.05)

    with pytest.raises(TimeoutError):
        wait(scenario())
    runs = wait(setwise.asyncio.runs(books))
    if runs:  # cancelled once the run was recorded (else before: nothing to resume)
        (info,) = runs
        assert info.status == "interrupted"
        wait(setwise.asyncio.apply(books, Book, changes, chunk_rows=1, resume=info.run_id))
    else:
        wait(setwise.asyncio.apply(books, Book, changes, chunk_rows=1))
    with engine.connect() as connection:
        stocks = dict(connection.execute(select(Book.id, Book.stock)).all())
    assert stocks == {i: -i for i in range(1, 41)}


def test_the_event_loop_runs_other_tasks_while_a_throttled_run_waits(books: AsyncEngine) -> None:
    async def scenario() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        running = asyncio.create_task(ticker())
        changes = [{"id": i, "stock": -i} for i in range(1, 41)]
        report = await setwise.asyncio.apply(
            books, Book, changes, chunk_rows=10, throttle_seconds=0.2
        )
        running.cancel()
        return report.chunks, ticks

    chunks, ticks = wait(scenario())
    # 0.6 s of throttle between the 4 chunks: some 120 ticks; a blocking sleep, none.
    assert chunks == 4 and ticks >= 40


# -- COPY on the asyncio drivers of PostgreSQL --------------------------------------


class RecordingConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's own connection, noting the tables it COPYs into (asyncpg's documented
    ``connection_class`` hook): the COPY itself runs as ever."""

    copied: ClassVar[list[str]] = []

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> Any:
        RecordingConnection.copied.append(f"text {table_name}")
        return await super().copy_to_table(table_name, **kwargs)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        RecordingConnection.copied.append(f"records {table_name}")
        return await super().copy_records_to_table(table_name, **kwargs)


@contextmanager
def observed_engine(engine: Engine, driver: str, tmp_path: Path) -> Iterator[AsyncEngine]:
    """An AsyncEngine on the test's schema whose driver tells what it sent: asyncpg's
    COPY calls (``RecordingConnection.copied``), psycopg's wire protocol as libpq traces
    it (in tmp_path / "libpq.trace")."""
    with engine.connect() as connection:
        schema = connection.scalar(text("SELECT current_schema()"))
    if driver == "asyncpg":
        RecordingConnection.copied.clear()
        args: dict[str, Any] = {
            "server_settings": {"search_path": schema},
            "connection_class": RecordingConnection,
        }
    else:
        args = {"options": f"-csearch_path={schema}"}
    observed = create_async_engine(engine.url, connect_args=args)
    trace = open(tmp_path / "libpq.trace", "w")  # noqa: SIM115
    if driver == "psycopg_async":

        @event.listens_for(observed.sync_engine, "connect")
        def traced(_: Any, record: Any) -> None:
            pgconn = record.driver_connection.pgconn
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    try:
        yield observed
    finally:
        wait(observed.dispose())
        trace.close()


@pytest.mark.backends("postgresql")
def test_a_changeset_is_staged_by_copy_on_each_async_driver(
    engine: Engine, driver: str, tmp_path: Path
) -> None:
    create_books(engine, 40)
    changes = [
        {"id": i, "title": f"tab\there, \\ and 'quotes' {i}", "price": Decimal(i) / 4}
        for i in range(1, 41)
    ]
    with observed_engine(engine, driver, tmp_path) as observed:
        sent: list[str] = []
        event.listen(observed.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        report = wait(setwise.asyncio.apply(observed, Book, changes))
    assert report.changed == 40
    assert not [s for s in sent if s.lstrip().upper().startswith("INSERT INTO SETWISE_STAGE")]
    if driver == "asyncpg":
        assert RecordingConnection.copied == ["text setwise_stage"]
    else:
        trace = (tmp_path / "libpq.trace").read_text()
        (copy,) = [line for line in trace.splitlines() if "Query" in line and "COPY" in line]
        assert copy.endswith(
            '"COPY pg_temp.setwise_stage (setwise_row, setwise_present, id, '
            'title, price) FROM STDIN"'
        ), copy
        assert "CopyInResponse" in trace and "CopyData" in trace and '"COPY 40"' in trace
    with engine.connect() as connection:
        stored = connection.execute(select(Book.id, Book.title, Book.price).order_by(Book.id))
        assert [tuple(row) for row in stored] == [
            (c["id"], c["title"], c["price"]) for c in changes
        ]


@pytest.mark.backends("postgresql")
def test_values_copy_text_cannot_hold_go_by_the_drivers_own_adapters(
    engine: Engine, driver: str, tmp_path: Path
) -> None:
    # An aware timestamp is not one bulktext formats: its batch goes row by row through
    # the driver (psycopg's write_row, asyncpg's copy_records_to_table).
    metadata = MetaData()
    events = Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("at", DateTime(timezone=True)),
    )
    metadata.create_all(engine)
    utc = dt.UTC
    with engine.begin() as connection:
        connection.execute(
            insert(events), [{"id": i, "at": dt.datetime(2020, 1, i, tzinfo=utc)} for i in (1, 2)]
        )
    moved = {1: dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=utc), 2: None}
    with observed_engine(engine, driver, tmp_path) as observed:
        changes = [{"id": key, "at": at} for key, at in moved.items()]
        assert wait(setwise.asyncio.apply(observed, events, changes)).changed == 2
    if driver == "asyncpg":
        assert "records setwise_stage" in RecordingConnection.copied
    with engine.connect() as connection:
        assert dict(connection.execute(select(events.c.id, events.c.at)).all()) == moved


# -- watch -----------------------------------------------------------------------------


def test_watch_on_an_async_engine_finds_a_row_by_row_loop(books: AsyncEngine) -> None:
    async def loop() -> list[Any]:
        async with (
            setwise.asyncio.watch(books, threshold=10) as seen,
            AsyncSession(books) as session,
            session.begin(),
        ):
            for i in range(1, 21):
                await session.execute(update(Book).where(Book.id == i).values(stock=i))
        return seen.findings

    (finding,) = wait(loop())
    assert finding.count == 20 and finding.table == "books"
