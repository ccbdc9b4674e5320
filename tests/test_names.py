"""Long names: every table, column and index setwise names after a user's table or column
fits the database's identifier limit (PostgreSQL cuts at 63 bytes, MySQL takes 64
characters), and two long names stay apart."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, inspect, select

import setwise
from setwise.dialects import Strategy, get_strategy
from setwise.dialects.identifiers import shorten
from setwise.dialects.mysql import MariaDBStrategy
from setwise.dialects.postgresql import PostgreSQLStrategy
from setwise.dialects.sqlite import SQLiteStrategy
from setwise.journal.changes import Journal
from setwise.target import resolve_target

#: 30 two-byte characters: 30 characters but 60 bytes, so "setwise_journal_" + it
#: passes PostgreSQL's 63 bytes while staying under 63 characters.
ACCENTED = "é" * 30
#: Two column names of 62 bytes (32 characters) that differ only in their last
#: character: PostgreSQL takes them, but cut at 63 bytes after an "o_" they are one name.
SHARED_PREFIX = "ü" * 30 + "x"
LONG_ASCII = "c" * 60


def make_table(engine: Engine, name: str, columns: list[str], rows: int) -> Table:
    table = Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        *(Column(c, String(20)) for c in columns),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            [{"id": i, **dict.fromkeys(columns, f"v{i}")} for i in range(1, rows + 1)],
        )
    return table


def contents(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(select(table).order_by(table.c.id))]


def test_a_table_with_a_long_multibyte_name_is_journaled_twice_and_reverted(
    engine: Engine,
) -> None:
    table = make_table(engine, ACCENTED, ["label"], 6)
    before = contents(engine, table)
    first = setwise.apply(engine, table, [{"id": i, "label": f"a{i}"} for i in (1, 2, 3)])
    # As another process would: an engine that has not yet seen the journal tables.
    again = engine.execution_options()
    second = setwise.apply(again, table, [{"id": i, "label": f"b{i}"} for i in (3, 4)])
    assert (first.changed, second.changed) == (3, 2)
    setwise.revert(engine, second.run_id or "")
    setwise.revert(engine, first.run_id or "")
    assert contents(engine, table) == before
    journal = Journal().changes_table(resolve_target(table), get_strategy(engine.dialect))
    with engine.connect() as connection:
        assert journal.name in inspect(connection).get_table_names()  # as named: not cut


def test_long_multibyte_columns_sharing_a_prefix_are_journaled_apart(engine: Engine) -> None:
    columns = [f"{SHARED_PREFIX}a", f"{SHARED_PREFIX}b"]
    table = make_table(engine, "wide", columns, 4)
    before = contents(engine, table)
    changes = [{"id": i, columns[0]: f"x{i}", columns[1]: f"y{i}"} for i in (1, 2, 4)]
    done = setwise.apply(engine, table, changes)
    assert done.changed == 3
    after = contents(engine, table)
    assert after[0] == (1, "x1", "y1") and after[2] == (3, "v3", "v3")
    # Chunked: a packed journal (PostgreSQL) is unpacked into a table of its own first.
    setwise.revert(engine, done.run_id or "", chunk_rows=2)
    assert contents(engine, table) == before


def test_a_sixty_character_column_in_a_chunked_run_and_its_chunked_revert(
    engine: Engine,
) -> None:
    table = make_table(engine, "tall", [LONG_ASCII], 12)
    before = contents(engine, table)
    changes = [{"id": i, LONG_ASCII: f"n{i}"} for i in range(1, 12)]
    done = setwise.apply(engine, table, changes, chunk_rows=4)
    assert (done.changed, done.chunks) == (11, 3)
    undone = setwise.revert(engine, done.run_id or "", chunk_rows=5)
    assert (undone.changed, undone.chunks) == (11, 3)
    assert contents(engine, table) == before


# -- the names themselves, without a database ------------------------------------------

STRATEGIES = [PostgreSQLStrategy, MariaDBStrategy, SQLiteStrategy, Strategy]


def _sizes(name: str) -> tuple[int, int]:
    return len(name), len(name.encode())


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: f"{s.name} strategy")
def test_a_derived_name_fits_its_database_and_two_long_ones_stay_apart(
    strategy: type[Strategy],
) -> None:
    limit = strategy.max_identifier_length
    size = 1 if strategy.identifier_units == "bytes" else 0
    for name in (f"setwise_journal_{ACCENTED}", f"o_{SHARED_PREFIX}a", f"o_{LONG_ASCII}xyz"):
        short = strategy.identifier(strategy.__new__(strategy), name)
        assert _sizes(short)[size] <= limit
        assert short == name or short.startswith(name[:10])
    one, two = (
        strategy.identifier(strategy.__new__(strategy), f"n_{SHARED_PREFIX * 2}{end}")
        for end in "ab"
    )
    assert one != two


def test_postgresql_shortens_by_bytes_mysql_and_sqlite_by_characters() -> None:
    accented = f"setwise_journal_{ACCENTED}"  # 46 characters, 76 bytes
    assert shorten(accented, 63, "characters") == accented
    cut = shorten(accented, 63, "bytes")
    assert len(cut.encode()) <= 63 and cut.startswith("setwise_journal_éé")
    assert cut.endswith("_" + hashlib.sha1(accented.encode()).hexdigest()[:8])
    # A two-byte character is never cut in half: the start stays valid text.
    for limit in range(20, 64):
        assert len(shorten(accented, limit, "bytes").encode()) <= limit


def test_names_that_fit_and_long_ascii_names_keep_the_names_earlier_versions_gave() -> None:
    # Earlier versions cut every name at 63 characters: its first 54, "_", 8 hex digits
    # of the SHA-1 of the whole. A journal table they created keeps its name.
    long_ascii = f"setwise_journal_{'t' * 60}"
    kept = "setwise_journal_tttttttttttttttttttttttttttttttttttttt_a0cc730d"
    fits = "setwise_journal_" + "é" * 23  # 62 bytes
    for strategy in STRATEGIES:
        assert strategy.identifier(strategy.__new__(strategy), long_ascii) == kept
        assert strategy.identifier(strategy.__new__(strategy), fits) == fits
    for strategy in (MariaDBStrategy, SQLiteStrategy):  # 46 characters: whole there
        accented = f"setwise_journal_{ACCENTED}"
        assert strategy.identifier(strategy.__new__(strategy), accented) == accented
