"""setwise's statements compiled by the SQLAlchemy dialects of CockroachDB and YugabyteDB,
without a server.

Both packages (sqlalchemy-cockroachdb 2.0.4, sqlalchemy-yugabytedb 1.0.0.1) pin
SQLAlchemy below 2.1, so they are not in the dev extras: the resolver would take the
project's SQLAlchemy back a minor version. Both work under 2.1 (YugabyteDB's wants
psycopg2-yugabytedb only to connect), so ``make test`` installs them with
``pip install --no-deps``. docs/scaling.md says what the statements mean on each engine.
"""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy.engine import Dialect

from setwise.dialects import get_strategy
from tests.dialects.statements import DOUBLE_FICTION, journaled_chunk, merge_from_stage, sql

#: module and class of each engine's dialect; CockroachDB's types its parameters
#: (``%(x)s::INTEGER``), YugabyteDB's writes them as PostgreSQL's does.
ENGINES = {
    "cockroachdb": ("sqlalchemy_cockroachdb.psycopg", "CockroachDBDialect_psycopg"),
    "yugabytedb": ("sqlalchemy_yugabytedb.psycopg2", "YugabyteDBDialect_psycopg2"),
}


@pytest.fixture(params=sorted(ENGINES))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    module_name, class_name = ENGINES[request.param]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        pytest.skip(
            f"{module_name.split('.')[0]} is not installed (not in the dev extras: it "
            "pins SQLAlchemy < 2.1; make test installs it with --no-deps)"
        )
    instance: Dialect = getattr(module, class_name)()
    return instance


def typed(text: str, dialect: Dialect) -> str:
    """``text`` with ``{int}``/``{str}`` as the parameter casts ``dialect`` writes."""
    casts = dialect.name == "cockroachdb"
    return text.format(int="::INTEGER" if casts else "", str="::VARCHAR" if casts else "")


def test_setwise_serves_them_with_its_generic_strategy_for_now(dialect: Dialect) -> None:
    # Neither dialect name is in the registry: rows are written by key, and no error is
    # retried, 40001 included (docs/scaling.md says what a strategy would change).
    strategy = get_strategy(dialect)
    assert strategy.name == "generic"
    assert not strategy.supports_update_from
    assert strategy.retryable_codes == frozenset()


def test_a_set_based_update_compiles(dialect: Dialect) -> None:
    assert sql(DOUBLE_FICTION.update(), dialect) == typed(
        "UPDATE books SET price=(books.price * %(price_1)s{int}), "
        "version=(books.version + %(version_1)s{int}) "
        "WHERE books.genre = %(genre_1)s{str} "
        "AND books.price IS DISTINCT FROM books.price * %(price_1)s{int}",
        dialect,
    )


def test_a_changeset_merges_with_update_from_its_temporary_stage(dialect: Dialect) -> None:
    assert sql(merge_from_stage(), dialect) == typed(
        "UPDATE books SET price=pg_temp.setwise_stage.price, "
        "version=(books.version + %(version_1)s{int}) FROM pg_temp.setwise_stage "
        "WHERE books.id = pg_temp.setwise_stage.id "
        "AND books.price IS DISTINCT FROM pg_temp.setwise_stage.price",
        dialect,
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["one transaction", "chunked"])
def test_a_journaled_chunk_packs_the_rows_it_reads_then_updates_them(
    dialect: Dialect, chunked: bool
) -> None:
    copy_rows, apply_rows, from_journal = journaled_chunk(dialect, chunked=chunked)
    # In one transaction the rows are locked as they are journaled, in key order; a
    # chunk of a chunked run reads them on its REPEATABLE READ snapshot instead, in any
    # order, since it locks nothing.
    lock = "" if chunked else " ORDER BY books.id FOR UPDATE OF books"
    copied = sql(copy_rows, dialect)
    # The rows read…
    assert (
        typed(
            "FROM (SELECT books.id AS id, books.price AS price, books.price * %(price_1)s{int} "
            "AS anon_3, books.version AS version, books.version + %(version_1)s{int} AS anon_4 "
            "FROM books WHERE books.genre = %(genre_1)s{str} "
            "AND books.price IS DISTINCT FROM books.price * %(price_1)s{int} "
            "AND books.id <= %(id_1)s{int}" + lock + ") AS journaled",
            dialect,
        )
        in copied
    )
    # …packed as arrays, a table row per part of up to 1,000 of them (PostgreSQL's
    # integer division; CockroachDB's "/" gives a DECIMAL, see docs/scaling.md).
    assert copied.startswith(
        "INSERT INTO setwise_journal_books (run_id, chunk, part, k_id, o_price, n_price, "
        "o_version, n_version, op) SELECT "
    )
    assert (
        typed("(row_number() OVER () - %(param_4)s{int}) / %(param_5)s{int} AS part", dialect)
        in copied
    )
    assert "array_agg(CAST(numbered.anon_3 AS NUMERIC(10, 2)))" in copied
    assert copied.endswith(
        "GROUP BY numbered.part RETURNING cardinality(setwise_journal_books.k_id) AS cardinality_1"
    )
    # The statement reads only the rows the INSERT read: it runs again as it is.
    assert sql(apply_rows, dialect) == typed(
        "UPDATE books SET price=(books.price * %(price_1)s{int}), "
        "version=(books.version + %(version_1)s{int}) "
        "WHERE books.genre = %(genre_1)s{str} "
        "AND books.price IS DISTINCT FROM books.price * %(price_1)s{int} "
        "AND books.id <= %(id_1)s{int}",
        dialect,
    )
    # When it writes other rows than the journal holds, the chunk writes from the journal,
    # unpacked one row per changed row.
    from_sql = sql(from_journal, dialect)
    assert from_sql.startswith(
        "UPDATE books SET price=setwise_journal_books_rows.n_price, "
        "version=setwise_journal_books_rows.n_version FROM (SELECT "
        "setwise_journal_books.run_id AS run_id, setwise_journal_books.chunk AS chunk, "
        "changed.k_id AS k_id, "
    )
    assert "FROM setwise_journal_books JOIN unnest(setwise_journal_books.k_id, " in from_sql
    assert from_sql.endswith(
        typed(
            "ON true) AS setwise_journal_books_rows "
            "WHERE setwise_journal_books_rows.run_id = %(run_id_1)s{str} "
            "AND setwise_journal_books_rows.k_id <= %(k_id_1)s{int} "
            "AND setwise_journal_books_rows.chunk = %(chunk_1)s{int} "
            "AND books.id = setwise_journal_books_rows.k_id",
            dialect,
        )
    )
