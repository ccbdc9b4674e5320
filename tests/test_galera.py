"""A MariaDB Galera cluster: write-set caps, certification conflicts, reads through
another node. Written through node 1 (the ``engine``), checked through node 3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text, update
from sqlalchemy.exc import DBAPIError

import setwise
from setwise.dialects import get_strategy
from setwise.journal.changes import Journal
from setwise.target import resolve_target
from tests.backends import CAUSAL_READS, reader
from tests.models import Book, create_books, snapshot

pytestmark = pytest.mark.requires("cluster")

#: The cap the tests set on node 1: a run of 2,500 changed rows needs 5,000 journaled
#: row writes, five times the cap.
CAP = 1000
#: (CAP - 3 bookkeeping rows) // 2 writes per changed row (the row and its journal row).
FITS = 498


@contextmanager
def wsrep_cap(engine: Engine, setting: str, value: int) -> Iterator[None]:
    """Set node 1's ``setting`` (a ``wsrep_max_ws_*`` cap) for the block, and put the old
    value back."""
    assert setting in ("wsrep_max_ws_rows", "wsrep_max_ws_size")
    with engine.connect() as connection:
        before = connection.execute(text(f"SELECT @@global.{setting}")).scalar_one()
        connection.execute(text(f"SET GLOBAL {setting} = :value"), {"value": value})
    try:
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"SET GLOBAL {setting} = :value"), {"value": before})


def max_ws_rows(engine: Engine, rows: int) -> AbstractContextManager[None]:
    return wsrep_cap(engine, "wsrep_max_ws_rows", rows)


def node(engine: Engine, port: int) -> Engine:
    """The same database through another node of the cluster."""
    return create_engine(engine.url.set(port=port), connect_args=CAUSAL_READS)


def journal_of(engine: Engine, run_id: str) -> list[tuple[Any, ...]]:
    """Key, old and new price of every journaled row of the run, in key order."""
    table = Journal().changes_table(resolve_target(Book), get_strategy(engine.dialect))
    statement = (
        select(table.c.k_id, table.c.o_price, table.c.n_price)
        .where(table.c.run_id == run_id)
        .order_by(table.c.k_id)
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def test_a_changeset_past_the_cap_is_applied_in_chunks_and_read_through_node_3(
    engine: Engine,
) -> None:
    create_books(engine, 3000)
    before = snapshot(engine)
    changes = [{"id": i, "price": Decimal(i) / 4} for i in range(1, 2501)]
    with max_ws_rows(engine, CAP):
        report = setwise.apply(engine, Book, changes, chunk_rows="auto")

    assert report.changed == 2500
    assert report.chunks == 6  # 2,500 rows in chunks of at most 498
    # A changed row gets its new price, and its version moves on.
    expected = [
        (*row[:4], Decimal(row[0]) / 4, *row[5:8], 2) if row[0] <= 2500 else row for row in before
    ]
    assert snapshot(engine) == expected  # read through node 3
    journal = journal_of(reader(engine), report.run_id or "")
    assert journal == [(row[0], row[4], Decimal(row[0]) / 4) for row in before[:2500]]
    info, chunks = setwise.run_details(reader(engine), report.run_id or "")
    assert info.status == "done"
    assert max(chunk.rows for chunk in chunks) == FITS


def test_a_fixed_chunk_size_past_the_cap_is_lowered_to_fit(engine: Engine) -> None:
    create_books(engine, 1200)
    with max_ws_rows(engine, CAP):
        report = setwise.update(
            engine, update(Book).where(Book.id > 0).values(stock=0), chunk_rows=1000
        )
    assert report.changed == 1200
    assert report.chunks == 3  # 498 + 498 + 204
    assert {row[5] for row in snapshot(engine)} == {0}


def test_an_unchunked_run_past_the_cap_is_refused_before_writing(engine: Engine) -> None:
    create_books(engine, 600)
    before = snapshot(engine)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    with max_ws_rows(engine, CAP), pytest.raises(setwise.TransactionTooLargeError) as refused:
        setwise.update(engine, statement)

    error = refused.value
    assert (error.would_change, error.fits) == (600, FITS)
    assert error.setting == f"wsrep_max_ws_rows = {CAP}"
    assert f"chunk_rows={FITS}" in str(error)
    assert "nothing was written" in str(error)
    assert snapshot(engine) == before
    assert setwise.runs(reader(engine)) == []


def test_without_a_journal_twice_as_many_rows_fit(engine: Engine) -> None:
    create_books(engine, 900)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    with max_ws_rows(engine, CAP):
        report = setwise.update(engine, statement, journal=False)
    assert report.changed == 900  # under (1000 - 3) // 1 = 997
    assert [row[5] for row in snapshot(engine)] == [i * 3 + 1 for i in range(1, 901)]


def test_a_changeset_past_the_size_cap_is_applied_in_chunks_that_fit(engine: Engine) -> None:
    # Rows of about 50 bytes get titles of 190 characters: the 2,000 changed rows write
    # about 1.1 MB of journaled write set, 17 times a 64 KiB wsrep_max_ws_size. The
    # chunks are sized from the rows' measured length; one over the cap would fail
    # with "Maximum writeset size exceeded" and the run with it.
    create_books(engine, 2000)
    before = snapshot(engine)
    title = "a long title, " * 13 + "the end"
    changes = [{"id": i, "title": title} for i in range(1, 2001)]
    with wsrep_cap(engine, "wsrep_max_ws_size", 64 * 1024):
        report = setwise.apply(engine, Book, changes, chunk_rows="auto")

    assert report.changed == 2000
    assert report.chunks > 17
    assert report.retries == 0
    assert snapshot(engine) == [(*row[:2], title, *row[3:8], 2) for row in before]
    assert len(journal_of(reader(engine), report.run_id or "")) == 2000


def test_two_runs_on_two_nodes_over_the_same_rows_both_finish(engine: Engine) -> None:
    # Nodes never make each other wait: the loser of each clash gets error 1213 at a
    # statement or at COMMIT, and its chunk runs again on the rows as they are now.
    # Whether two runs clash is up to timing, so they fight again (a bounded number
    # of rounds) until one did; every round must end with every row moved twice.
    create_books(engine, 400)
    second = node(engine, 4307)
    retries = 0
    try:
        for _round in range(5):
            before = {row[0]: row[5] for row in snapshot(engine)}
            reports, failures = _fight(engine, second)
            assert failures == []
            assert [r.changed for r in reports] == [400, 400]
            after = {row[0]: row[5] for row in snapshot(engine)}
            assert after == {k: v + 2 for k, v in before.items()}
            retries += sum(r.retries for r in reports)
            if retries:
                break
    finally:
        second.dispose()
    assert retries > 0  # they did clash, and both still finished correctly


def _fight(first: Engine, second: Engine) -> tuple[list[setwise.Report], list[BaseException]]:
    """Two runs over the same rows at once, one through each node."""
    start = threading.Barrier(2)
    reports: list[setwise.Report] = []
    failures: list[BaseException] = []

    def run(through: Engine) -> None:
        start.wait()
        try:
            statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
            reports.append(setwise.update(through, statement, chunk_rows=20, retries=30))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return reports, failures


def test_a_certification_failure_at_commit_is_an_error_a_chunk_retries(engine: Engine) -> None:
    # The retry loop catches what leaving ``with connection.begin():`` raises.
    create_books(engine, 5)
    second = node(engine, 4307)
    try:
        with engine.connect() as loser, pytest.raises(DBAPIError) as failed, loser.begin():
            loser.execute(update(Book).where(Book.id == 1).values(stock=100))
            with second.begin() as winner:
                winner.execute(update(Book).where(Book.id == 1).values(stock=200))
        assert get_strategy(engine.dialect).is_retryable(failed.value)
    finally:
        second.dispose()
    assert snapshot(engine)[0][5] == 200
