"""Upserts and their reverts over random tables and changesets, on every backend: apply
with ``missing="insert"``, then revert, gives back the original table exactly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, insert

import setwise
from tests.test_roundtrip import ROWS, VALUES, contents, make_table, nullable, rows_strategy

#: Keys up to twice the table's rows: about half of a changeset's keys are new.
upserts_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2 * ROWS),
        st.dictionaries(st.sampled_from(sorted(VALUES)), st.none(), min_size=1).flatmap(
            lambda columns: st.fixed_dictionaries(
                {name: nullable(VALUES[name]) for name in columns}
            )
        ),
    ),
    min_size=1,
    max_size=2 * ROWS,
    unique_by=lambda change: change[0],
)


@contextmanager
def filled(engine: Engine, rows: list[dict[str, Any]]) -> Iterator[Table]:
    """A new table holding ``rows`` (ids 1, 2…), dropped afterwards."""
    table = make_table(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(table), [{"id": i + 1, **row} for i, row in enumerate(rows)])
        yield table
    finally:
        table.drop(engine)


EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(rows=rows_strategy, changes=upserts_strategy, chunked=st.booleans())
def test_upsert_then_revert_gives_back_the_table(
    engine: Engine, rows: list[dict[str, Any]], changes: list[Any], chunked: bool
) -> None:
    with filled(engine, rows) as table:
        original = contents(engine, table)
        changeset = [{"id": key, **values} for key, values in changes]
        chunk_rows = 4 if chunked else None
        report = setwise.apply(engine, table, changeset, missing="insert", chunk_rows=chunk_rows)
        new = sorted(key for key, _ in changes if key > ROWS)
        assert (report.inserted, report.matched) == (len(new), len(changes) - len(new))
        assert (report.missing, report.missing_keys) == (0, ())
        after = {row[0]: row for row in contents(engine, table)}
        assert sorted(after) == sorted({*range(1, ROWS + 1), *new})
        for key, values in changes:  # every row holds what the changes gave it
            row = dict(zip(table.c.keys(), after[key], strict=True))
            assert {name: row[name] for name in values} == values
        undo = setwise.revert(engine, report.run_id or "")
        assert undo.changed == report.changed + report.inserted
        assert contents(engine, table) == original
