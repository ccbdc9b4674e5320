"""PostgreSQL's INSERT … OVERRIDING SYSTEM VALUE, compiled without a database."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Identity, Integer, MetaData, Table, select
from sqlalchemy.dialects import postgresql

from setwise.dialects.overriding import OverridingInsert, end_of_columns


def test_the_clause_follows_the_column_list_of_an_insert_select() -> None:
    table = Table(
        "odd (name)",
        MetaData(),
        Column("id", Integer, Identity(always=True), primary_key=True),
        Column('qty "x" (y)', Integer),
    )
    source = select(table.c.id, table.c['qty "x" (y)'])
    statement = OverridingInsert(table).from_select(["id", 'qty "x" (y)'], source)
    sql = str(statement.compile(dialect=postgresql.dialect()))
    head = 'INSERT INTO "odd (name)" (id, "qty ""x"" (y)") OVERRIDING SYSTEM VALUE SELECT'
    assert sql.startswith(head)


def test_the_clause_follows_the_column_list_of_an_insert_of_values() -> None:
    table = Table("t", MetaData(), Column("id", Integer, Identity(always=True), primary_key=True))
    sql = str(OverridingInsert(table).values(id=1).compile(dialect=postgresql.dialect()))
    assert sql.startswith("INSERT INTO t (id) OVERRIDING SYSTEM VALUE VALUES (")


def test_text_without_a_column_list_is_refused() -> None:
    with pytest.raises(ValueError, match="no column list"):
        end_of_columns('INSERT INTO "a (b" DEFAULT VALUES')
