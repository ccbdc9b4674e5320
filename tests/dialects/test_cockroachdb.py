"""setwise's statements compiled by CockroachDB's own SQLAlchemy dialect, without a server.

sqlalchemy-cockroachdb is not in the dev extras: it pins SQLAlchemy below 2.1, so
installing it would take the project's SQLAlchemy back a minor version. Install it
beside the project (``pip install --no-deps sqlalchemy-cockroachdb``) to run these.
See docs/scaling.md for what the statements mean on CockroachDB.
"""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, Numeric, Table, update
from sqlalchemy.sql.expression import ClauseElement

from setwise.dialects import get_strategy
from setwise.dialects.postgresql import PostgreSQLStrategy
from setwise.executor import Executor, RunOptions
from setwise.journal import Journal
from setwise.merge import ROW, STAGE_NAME, Merge
from setwise.plan import SetUpdate, Span
from setwise.target import resolve_target
from tests.models import Book

cockroachdb = pytest.importorskip(
    "sqlalchemy_cockroachdb.psycopg",
    reason="sqlalchemy-cockroachdb is not installed (not in the dev extras: it pins "
    "SQLAlchemy < 2.1)",
)
dialect = cockroachdb.CockroachDBDialect_psycopg()

DOUBLE_FICTION = SetUpdate.from_statement(
    update(Book).where(Book.genre == "fiction").values(price=Book.price * 2)
)


def sql(statement: ClauseElement) -> str:
    """The statement as CockroachDB's dialect writes it, on one line."""
    return " ".join(str(statement.compile(dialect=dialect)).split())


def test_setwise_serves_cockroachdb_with_its_generic_strategy_for_now() -> None:
    # No "cockroachdb" entry in the registry: rows are written by key, and no error is
    # retried, 40001 included (docs/scaling.md says what a strategy would change).
    strategy = get_strategy(dialect)
    assert strategy.name == "generic"
    assert not strategy.supports_update_from
    assert strategy.retryable_codes == frozenset()


def test_a_set_based_update_compiles_with_typed_parameters() -> None:
    assert sql(DOUBLE_FICTION.update()) == (
        "UPDATE books SET price=(books.price * %(price_1)s::INTEGER), "
        "version=(books.version + %(version_1)s::INTEGER) "
        "WHERE books.genre = %(genre_1)s::VARCHAR "
        "AND books.price IS DISTINCT FROM books.price * %(price_1)s::INTEGER"
    )


def test_a_changeset_merges_with_update_from_its_temporary_stage() -> None:
    target = resolve_target(Book)
    stage = Table(
        STAGE_NAME,
        MetaData(),
        Column(ROW, BigInteger),
        Column("id", Integer),
        Column("price", Numeric(10, 2)),
        prefixes=["TEMPORARY"],
        schema="pg_temp",
    )
    merge = Merge(target, stage, (target.column("price"),), False, False)
    assert sql(merge.merge()) == (
        "UPDATE books SET price=pg_temp.setwise_stage.price, "
        "version=(books.version + %(version_1)s::INTEGER) FROM pg_temp.setwise_stage "
        "WHERE books.id = pg_temp.setwise_stage.id "
        "AND books.price IS DISTINCT FROM pg_temp.setwise_stage.price"
    )


def test_a_journaled_chunk_locks_its_rows_in_key_order_then_updates_from_the_journal() -> None:
    journal = Journal()
    executor = Executor(
        PostgreSQLStrategy(dialect),
        DOUBLE_FICTION,
        RunOptions(chunk_rows=100),
        journal,
        journal.changes_table(resolve_target(Book)),
    )
    executor.run_id = "run-1"
    copy_rows, apply_rows = executor.chunk_statements(Span(None, (100,)), chunk=1)
    assert sql(copy_rows) == (
        "INSERT INTO setwise_journal_books (k_id, o_price, n_price, o_version, n_version, "
        "run_id, chunk) SELECT books.id, books.price, books.price * %(price_1)s::INTEGER "
        "AS anon_1, books.version, books.version + %(version_1)s::INTEGER AS anon_2, "
        "%(param_1)s::VARCHAR AS anon_3, %(param_2)s::INTEGER AS anon_4 FROM books "
        "WHERE books.genre = %(genre_1)s::VARCHAR "
        "AND books.price IS DISTINCT FROM books.price * %(price_1)s::INTEGER "
        "AND books.id <= %(id_1)s::INTEGER ORDER BY books.id FOR UPDATE OF books"
    )
    assert sql(apply_rows) == (
        "UPDATE books SET price=setwise_journal_books.n_price, "
        "version=setwise_journal_books.n_version FROM setwise_journal_books "
        "WHERE setwise_journal_books.run_id = %(run_id_1)s::VARCHAR "
        "AND setwise_journal_books.chunk = %(chunk_1)s::INTEGER "
        "AND books.id = setwise_journal_books.k_id"
    )
