"""Run the statements a plan built, and count what they did."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, select

from setwise.dialects import Strategy
from setwise.errors import SetwiseError, TooManyRowsError
from setwise.plan import SetUpdate, key_in


@dataclass
class Outcome:
    """What one run of a set-based UPDATE did."""

    strategy: str
    matched: int
    changed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Every matched row's requested columns, unchanged and changed alike, in key order."""
    written: list[dict[str, Any]] = field(default_factory=list)
    """The rows written, with their key and the new values of every written column."""

    @property
    def unchanged(self) -> int:
        return self.matched - self.changed


def run_set_update(
    connection: Connection,
    strategy: Strategy,
    plan: SetUpdate,
    *,
    returning: Sequence[Column[Any]] = (),
    want_written: bool = False,
    max_rows: int | None = None,
) -> Outcome:
    """Run ``plan`` as one UPDATE (or one lock and one keyed UPDATE where needed)."""
    matched, would_change = (int(n) for n in connection.execute(plan.tally()).one())
    if max_rows is not None and would_change > max_rows:
        raise TooManyRowsError(plan.table.fullname, limit=max_rows, would_change=would_change)
    unchanged = matched - would_change

    if not returning and not want_written:
        result = connection.execute(plan.update())
        # With the "changes something" filter in the WHERE clause, rows matched by this
        # statement are rows changed, even where rowcount counts matched rows (MySQL).
        return Outcome("update", matched=unchanged + result.rowcount, changed=result.rowcount)

    key = list(plan.target.key)
    written_columns = _unique([*key, *plan.assignments, *plan.bumps, *_maintained(plan)])
    unchanged_rows: list[dict[str, Any]] = []
    if returning:
        read = _unique([*key, *returning])
        unchanged_rows = _dicts(connection.execute(plan.locked_unchanged(read)).all(), read)
        unchanged = len(unchanged_rows)
    back = _unique([*written_columns, *returning])

    if strategy.supports_update_returning:
        written = _dicts(connection.execute(plan.update().returning(*back)).all(), back)
        name = "update-returning"
    else:
        written = _locked_update(connection, strategy, plan, back)
        name = "locked-update"

    key_names = [column.name for column in key]
    matched_rows = sorted(
        [*unchanged_rows, *written], key=lambda row: tuple(row[name] for name in key_names)
    )
    names = [column.name for column in returning]
    rows = [{name: row[name] for name in names} for row in matched_rows] if returning else []
    return Outcome(
        name,
        matched=unchanged + len(written),
        changed=len(written),
        rows=rows,
        written=written,
    )


def _locked_update(
    connection: Connection, strategy: Strategy, plan: SetUpdate, back: Sequence[Column[Any]]
) -> list[dict[str, Any]]:
    """Without UPDATE … RETURNING: lock the rows that will change, update them by key,
    and read them back. The lock keeps anyone else from writing in between."""
    key = plan.target.key
    keys = [tuple(row) for row in connection.execute(plan.locked_keys()).all()]
    written: list[dict[str, Any]] = []
    per_batch = max(1, strategy.max_bind_params // (len(key) + len(plan.assignments) + 1))
    for batch in _batches(keys, per_batch):
        result = connection.execute(plan.update_keys(batch))
        if strategy.supports_sane_rowcount and result.rowcount != len(batch):
            raise SetwiseError(
                f"the database reported {result.rowcount} row(s) updated in {plan.table.fullname!r}"
                f" for {len(batch)} locked key(s); the transaction was rolled back"
            )
        rows = connection.execute(select(*back).where(key_in(key, batch)).order_by(*key)).all()
        written.extend(_dicts(rows, back))
    return written


def _maintained(plan: SetUpdate) -> list[Column[Any]]:
    """Columns the database or SQLAlchemy sets on UPDATE by themselves (``onupdate``)."""
    return [
        c for c in plan.table.columns if c.onupdate is not None or c.server_onupdate is not None
    ]


def _dicts(rows: Sequence[Any], columns: Sequence[Column[Any]]) -> list[dict[str, Any]]:
    names = [column.name for column in columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _unique(columns: Sequence[Column[Any]]) -> list[Column[Any]]:
    seen: dict[str, Column[Any]] = {}
    for column in columns:
        seen.setdefault(column.name, column)
    return list(seen.values())


def _batches(items: Sequence[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
