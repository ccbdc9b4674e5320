"""Properties a user relies on, over random tables and changesets, on every backend:
apply then revert gives back the original table exactly (types, NULLs, Decimals, text)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    insert,
    select,
)

import setwise

ROWS = 12
names = itertools.count()

# Text that breaks naive CSV, COPY or quoting: quotes, backslashes, tabs, newlines, unicode.
awkward_text = st.text(
    alphabet=st.sampled_from(list("ab'\"\\\t\n,;é✓😀 ")), min_size=0, max_size=12
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "qty": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "amount": st.decimals(
        min_value=Decimal("-99999999.999"),
        max_value=Decimal("99999999.999"),
        places=3,
        allow_nan=False,
        allow_infinity=False,
    ),
    "label": awkward_text,
    "day": st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2999, 12, 31)),
    "flag": st.booleans(),
}


def make_table(engine: Engine) -> Table:
    table = Table(
        f"prop_{next(names)}",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("qty", Integer),
        Column("amount", Numeric(11, 3)),
        Column("label", String(40)),
        Column("day", Date),
        Column("flag", Boolean),
    )
    table.create(engine)
    return table


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


rows_strategy = st.lists(
    st.fixed_dictionaries({name: nullable(values) for name, values in VALUES.items()}),
    min_size=ROWS,
    max_size=ROWS,
)
changes_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=ROWS + 3),  # a few keys that do not exist
        st.dictionaries(
            st.sampled_from(sorted(VALUES)),
            st.none(),
            min_size=1,
        ).flatmap(
            lambda columns: st.fixed_dictionaries(
                {name: nullable(VALUES[name]) for name in columns}
            )
        ),
    ),
    min_size=1,
    max_size=ROWS,
    unique_by=lambda change: change[0],
)


def contents(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(table.c.id))]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, changes=changes_strategy, chunked=st.booleans())
def test_apply_then_revert_gives_back_the_table(
    engine: Engine, rows: list[dict[str, Any]], changes: list[Any], chunked: bool
) -> None:
    table = make_table(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(table), [{"id": i + 1, **row} for i, row in enumerate(rows)])
        original = contents(engine, table)
        changeset = [{"id": key, **values} for key, values in changes]
        report = setwise.apply(engine, table, changeset, chunk_rows=3 if chunked else None)
        plan_free = contents(engine, table)
        assert report.matched == sum(1 for key, _ in changes if key <= ROWS)
        if report.changed:
            assert plan_free != original
        undo = setwise.revert(engine, report.run_id or "")
        assert undo.changed == report.changed
        assert contents(engine, table) == original
    finally:
        table.drop(engine)


@pytest.mark.parametrize("count", [0, 1])
def test_reverting_nothing_changes_nothing(engine: Engine, count: int) -> None:
    table = make_table(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "qty": 1}])
    report = setwise.apply(engine, table, [{"id": 1, "qty": 1 + count}])
    assert report.changed == count
    assert setwise.revert(engine, report.run_id or "").changed == count
    assert contents(engine, table)[0][1] == 1
