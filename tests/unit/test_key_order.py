"""Chunks are keyset ranges, in key order: the SQL that finds a chunk's keys, compiled
against each real dialect object (no connection), and keys as callers give them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, Date, Enum, Integer, MetaData, String, Table, and_, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from setwise import SchemaError
from setwise.target import resolve_target
from setwise.writers.keys import EVERYTHING, Span, key_in
from setwise.writers.setbased import SetUpdate

METADATA = MetaData()
BOOKS = Table("books", METADATA, Column("id", Integer, primary_key=True), Column("stock", Integer))
LEGS = Table(
    "legs",
    METADATA,
    Column("flight", String(10), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("seats", Integer),
)
DIALECTS = {
    # Not the backends' names: the run's summary counts tests per backend by id.
    "PostgreSQL-dialect": postgresql.psycopg.dialect(),
    "MySQL-dialect": mysql.pymysql.dialect(),
    "SQLite-dialect": sqlite.dialect(),
}


def sql(statement: Any, dialect: Dialect) -> str:
    """The statement's text with its parameters in line, on one line."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return " ".join(str(compiled).split())


@pytest.fixture(params=list(DIALECTS), ids=list(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


def test_a_chunk_of_a_single_key_is_after_its_lower_end_up_to_its_upper(
    dialect: Dialect,
) -> None:
    span = Span(lower=(10,), upper=(20,))
    assert sql(and_(*span.criteria([BOOKS.c.id])), dialect) == "books.id > 10 AND books.id <= 20"
    assert sql(and_(*Span(upper=(5,)).criteria([BOOKS.c.id])), dialect) == "books.id <= 5"
    assert EVERYTHING.criteria([BOOKS.c.id]) == []


def test_a_composite_key_is_compared_as_one_row_value(dialect: Dialect) -> None:
    key = list(LEGS.primary_key.columns)
    span = Span(lower=("AA1", dt.date(2024, 1, 1)), upper=("BA2", dt.date(2023, 5, 5)))
    assert sql(and_(*span.criteria(key)), dialect) == (
        "(legs.flight, legs.day) > ('AA1', '2024-01-01') "
        "AND (legs.flight, legs.day) <= ('BA2', '2023-05-05')"
    )


def test_the_next_chunks_keys_are_found_in_key_order_after_the_last(dialect: Dialect) -> None:
    writer = SetUpdate.from_statement(update(LEGS).values(seats=0).where(LEGS.c.seats > 5))
    text = sql(writer.keys_after(("AA1", dt.date(2024, 1, 1)), 500), dialect)
    assert text.startswith("SELECT legs.flight, legs.day FROM legs WHERE legs.seats > 5 AND ")
    assert "AND (legs.flight, legs.day) > ('AA1', '2024-01-01') " in text
    assert " ORDER BY legs.flight, legs.day LIMIT 500" in text
    # The first chunk starts at the table's beginning.
    first = sql(writer.keys_after(None, 500), dialect)
    assert "legs.flight, legs.day) >" not in first and "ORDER BY legs.flight, legs.day" in first


def test_rows_are_journaled_and_matched_in_key_order(dialect: Dialect) -> None:
    writer = SetUpdate.from_statement(update(BOOKS).values(stock=0))
    span = Span(lower=(10,), upper=(20,))
    for statement in (writer.journal_rows(span), writer.matched_keys(span)):
        text = sql(statement, dialect)
        assert "books.id > 10 AND books.id <= 20" in text
        assert text.endswith("ORDER BY books.id")


def test_keys_are_looked_up_as_a_list_or_a_list_of_row_values(dialect: Dialect) -> None:
    assert sql(key_in([BOOKS.c.id], [(3,), (1,)]), dialect) == "books.id IN (3, 1)"
    composite = key_in(list(LEGS.primary_key.columns), [("AA1", dt.date(2024, 1, 1))])
    text = sql(select(LEGS.c.seats).where(composite), dialect)
    assert "WHERE (legs.flight, legs.day) IN (" in text  # SQLite's list says VALUES first
    assert text.endswith("('AA1', '2024-01-01'))")


def test_a_key_given_as_a_mapping_a_tuple_or_a_scalar_is_put_in_key_order() -> None:
    legs = resolve_target(LEGS)
    day = dt.date(2024, 1, 1)
    assert [c.name for c in legs.key] == ["flight", "day"]
    assert legs.key_tuple({"day": day, "flight": "AA1"}) == ("AA1", day)
    assert legs.key_tuple(["AA1", day]) == ("AA1", day)
    assert resolve_target(BOOKS).key_tuple(7) == (7,)
    with pytest.raises(SchemaError, match=r"does not name the key columns \['flight', 'day'\]"):
        legs.key_tuple({"flight": "AA1", "dya": day})
    with pytest.raises(SchemaError, match=r"has 1 value\(s\); 'legs' is keyed by"):
        legs.key_tuple("AA1")


def test_a_composite_keys_values_are_bound_with_the_columns_types() -> None:
    kinds = Table(
        "kinds",
        MetaData(),
        Column("kind", Enum("a", "b", name="kind"), primary_key=True),
        Column("n", Integer, primary_key=True),
    )
    span = Span(lower=("a", 1), upper=("b", 2))
    condition = and_(*span.criteria(list(kinds.primary_key.columns)))
    assert "VARCHAR" not in str(condition.compile(dialect=DIALECTS["PostgreSQL-dialect"]))
