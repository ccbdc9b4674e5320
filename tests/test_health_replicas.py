"""Replica lag and load on real servers: a chunked run pauses while a replica stops
replaying, goes on when it replays again, and the replica ends with the very rows of
the primary. The primary + replica pairs are started here (``tests.replicas``)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text, update

import setwise
from setwise.dialects import get_strategy
from tests import backends
from tests.models import Book, create_books, snapshot
from tests.replicas import Pair, Unavailable, mariadb_pair, postgresql_pair

ROWS = 300
CHUNK = 10
#: Chunks of 10 rows with 50 ms between them: 30 chunks, 1.5 s or more, long enough for
#: a lag of 0.5 s to build up while replay is stopped.
THROTTLE = 0.05
MAX_LAG = 0.5
STATEMENT = update(Book).where(Book.id > 0).values(price=Book.price + Decimal("0.75"))


def _pair(name: str, start: Callable[[], Any]) -> Iterator[Pair]:
    if name not in backends.selected():
        pytest.skip(f"{name} is not among SETWISE_TEST_BACKENDS")
    try:
        with start() as pair:
            yield pair
    except Unavailable as exc:
        if backends.in_ci():
            pytest.fail(f"{name} replica pair: {exc} (CI=true requires it)", pytrace=False)
        pytest.skip(f"{name} replica pair not available: {exc}")


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[Pair]:
    yield from _pair("postgresql", postgresql_pair)


@pytest.fixture(scope="module")
def maria_pair() -> Iterator[Pair]:
    yield from _pair("mariadb", mariadb_pair)


def _database(pair: Pair, create: str) -> tuple[Engine, Engine]:
    """Engines on a new database of the primary and on the replica's copy of it."""
    name = f"h_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pair.primary, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(create.format(name=name)))
    admin.dispose()
    primary = create_engine(make_url(pair.primary).set(database=name))
    replica = create_engine(make_url(pair.replica).set(database=name))
    deadline = time.monotonic() + 30
    while True:  # the replica creates the database when it replays its creation
        try:
            with replica.connect():
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return primary, replica


def _caught_up(primary: Engine, replica: Engine) -> list[tuple[object, ...]]:
    """The replica's books once they equal the primary's (or after 30 s, as they are)."""
    want = snapshot(primary)
    deadline = time.monotonic() + 30
    while (found := _books(replica)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _books(engine: Engine) -> list[tuple[object, ...]]:
    try:
        return snapshot(engine)
    except Exception:  # the table not replayed yet
        return []


class ReplayStopper:
    """A progress callback that stops the replica's replay after chunk 2 and starts it
    again once the run has shown its pause ``after`` times."""

    def __init__(self, replica: Engine, stop: str, start: str, after: int = 2) -> None:
        self.replica, self.stop, self.start, self.after = replica, stop, start, after
        self.shown: list[str] = []
        self.chunks: list[int] = []
        self.paused_at: float | None = None
        self.chunk_times: list[float] = []
        self.stopped_at: float | None = None
        self.started_at: float | None = None

    def run(self, statement: str) -> None:
        with self.replica.connect() as connection:
            connection.exec_driver_sql(statement)
            connection.commit()

    def __call__(self, step: setwise.Progress) -> None:
        if step.paused is not None:
            self.shown.append(step.paused)
            self.paused_at = self.paused_at or time.monotonic()
            if len(self.shown) == self.after:
                self.run(self.start)
                self.started_at = time.monotonic()
            return
        self.chunks.append(step.chunk)
        self.chunk_times.append(time.monotonic())
        if step.chunk == 2 and self.stopped_at is None:
            self.run(self.stop)
            self.stopped_at = time.monotonic()


def _expected(primary: Engine) -> list[tuple[object, ...]]:
    return [
        (*row[:4], row[4] + Decimal("0.75"), *row[5:8], row[8] + 1)  # type: ignore[operator]
        for row in snapshot(primary)
    ]


def _paused_run(
    primary: Engine, replica: Engine, stopper: ReplayStopper, **health: Any
) -> setwise.Report:
    create_books(primary, ROWS)
    _caught_up(primary, replica)
    want = _expected(primary)
    report = setwise.update(
        primary,
        STATEMENT,
        chunk_rows=CHUNK,
        throttle_seconds=THROTTLE,
        progress=stopper,
        max_lag_seconds=MAX_LAG,
        check_interval=0.1,
        max_wait=60,
        **health,
    )
    assert report.changed == ROWS
    assert snapshot(primary) == want
    assert _caught_up(primary, replica) == want
    return report


@pytest.mark.parametrize("read_on", ["primary", "replica"])
def test_postgresql_run_pauses_while_replay_is_paused(pg_pair: Pair, read_on: str) -> None:
    primary, replica = _database(pg_pair, 'CREATE DATABASE "{name}"')
    stopper = ReplayStopper(
        replica, "SELECT pg_wal_replay_pause()", "SELECT pg_wal_replay_resume()"
    )
    urls = {"replica_urls": [str(replica.url)]} if read_on == "replica" else {}
    try:
        _paused_run(primary, replica, stopper, **urls)
    finally:
        stopper.run("SELECT pg_wal_replay_resume()")
        primary.dispose()
        replica.dispose()

    assert stopper.shown, "the run never paused"
    assert all(r.startswith("replica lag ") and f"> {MAX_LAG:g} s" in r for r in stopper.shown)
    assert_waited(stopper)


def assert_waited(stopper: ReplayStopper) -> None:
    """No chunk ran from the first pause until the replica was started again."""
    paused, started = stopper.paused_at, stopper.started_at
    assert paused is not None and started is not None
    assert not [t for t in stopper.chunk_times if paused < t < started]
    assert max(stopper.chunk_times) > started


def test_mariadb_run_pauses_while_the_replica_sql_thread_is_stopped(maria_pair: Pair) -> None:
    primary, replica = _database(maria_pair, "CREATE DATABASE `{name}`")
    stopper = ReplayStopper(replica, "STOP REPLICA SQL_THREAD", "START REPLICA SQL_THREAD")
    port = replica.url.port
    try:
        _paused_run(primary, replica, stopper, replica_urls=[str(replica.url)])
    finally:
        stopper.run("START REPLICA SQL_THREAD")
        primary.dispose()
        replica.dispose()

    assert_waited(stopper)
    assert set(stopper.shown) == {
        f"replica 127.0.0.1:{port} not replicating: its SQL thread is stopped"
    }


def _waits_while_busy(primary: Engine, sleep: str, **health: Any) -> list[str]:
    """Run the update while another session sleeps for a second from chunk 2; the
    pauses shown. The run takes that second at least: it waited it out."""
    create_books(primary, 40)
    want = _expected(primary)
    limit = get_strategy(primary.dialect)
    with primary.connect() as connection:  # the server's own threads, if it counts any
        idle = limit.active_sessions(connection)
    shown: list[str] = []
    sleeper: list[threading.Thread] = []

    def busy() -> None:
        with primary.connect() as connection:
            connection.execute(text(sleep))

    def progress(step: setwise.Progress) -> None:
        if step.paused is not None:
            shown.append(step.paused)
        elif step.chunk == 2 and not sleeper:
            sleeper.append(threading.Thread(target=busy))
            sleeper[0].start()
            time.sleep(0.2)  # the statement is running when the next chunk checks

    started = time.monotonic()
    setwise.update(
        primary,
        STATEMENT,
        chunk_rows=CHUNK,
        progress=progress,
        max_active_sessions=idle,
        check_interval=0.1,
        **health,
    )
    took = time.monotonic() - started
    sleeper[0].join()
    assert snapshot(primary) == want
    assert took >= 0.9
    assert shown and set(shown) == {f"active sessions {idle + 1} > {idle}"}
    return shown


def test_postgresql_run_waits_while_another_session_is_busy(pg_pair: Pair) -> None:
    primary, replica = _database(pg_pair, 'CREATE DATABASE "{name}"')
    try:
        _waits_while_busy(primary, "SELECT pg_sleep(1)", wait_for_autovacuum=True)
    finally:
        primary.dispose()
        replica.dispose()


def test_mariadb_run_waits_while_another_session_is_busy(maria_pair: Pair) -> None:
    primary, replica = _database(maria_pair, "CREATE DATABASE `{name}`")
    try:
        _waits_while_busy(primary, "SELECT SLEEP(1)")
    finally:
        primary.dispose()
        replica.dispose()


def test_replica_url_of_a_primary_is_refused_before_any_write(pg_pair: Pair) -> None:
    primary, replica = _database(pg_pair, 'CREATE DATABASE "{name}"')
    create_books(primary, 10)
    before = snapshot(primary)
    try:
        with pytest.raises(setwise.InvalidArgumentError, match="not a replica") as raised:
            setwise.update(
                primary,
                STATEMENT,
                chunk_rows=CHUNK,
                max_lag_seconds=1,
                replica_urls=[str(primary.url)],
            )
        assert raised.value.argument == "replica_urls"
        assert snapshot(primary) == before
    finally:
        primary.dispose()
        replica.dispose()
