"""``setwise.apply``: per-row changes keyed by id, at the speed of the database's bulk path.

The input is read as a stream and staged in batches into a temporary table, every
value checked on the way. Problems are collected, not raised one by one; when the
whole input has been read, any problem (a bad value, an unknown column, a missing or
duplicate key) fails the call with one ``ValidationError`` and nothing is written.
Otherwise the staged rows are counted against the target and merged in one
set-based UPDATE that skips rows already holding the new values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Column, Connection, bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DBAPIError

from setwise.coerce import Coercer, Unfit, coercer_for
from setwise.constraints import integrity_to_validation
from setwise.dialects import Strategy
from setwise.errors import (
    MAX_PROBLEMS,
    NotFoundError,
    Problem,
    SchemaError,
    TooManyRowsError,
    ValidationError,
    closest,
)
from setwise.merge import MAX_SPARSE_COLUMNS, PRESENT, Merge
from setwise.orm import loaded_objects, synchronize
from setwise.plan import key_in
from setwise.report import Report
from setwise.sources import Row, Unreadable, open_source
from setwise.target import Target, TargetLike, resolve_target
from setwise.transaction import Bind, atomic, dialect_of

#: Rows converted and staged per round trip. 5,000 rows keeps the Python objects of
#: one batch to a few MB whatever the width, and larger batches staged no faster
#: (benchmarks/bench_apply.py).
STAGE_BATCH_ROWS = 5_000

#: Keys listed in ``Report.missing_keys`` and ``Report.conflicts``; the counts are exact.
KEY_SAMPLE = 1_000


def apply(
    bind: Bind,
    target: TargetLike,
    changes: Any,
    key: Sequence[str] | str | None = None,
    *,
    returning: Sequence[Any] = (),
    expect_rows: int | None = None,
    max_rows: int | None = None,
    version_column: str | None = None,
    csv_null: str | None = "",
) -> Report:
    """Apply per-row ``changes`` to ``target``, matching rows by ``key``.

    ``target``: an ORM class, a Table, or a table name reflected from the database.
    ``key``: the primary key by default, or any unique column(s). ``changes``: see
    ``setwise.sources``. Only the columns present in the changes are written, and only
    on rows where a value differs. With a version column on the target and versions in
    the rows, a row whose version moved is not written and is listed in ``conflicts``.
    """
    started = time.perf_counter()
    key_names = (key,) if isinstance(key, str) else key
    source = open_source(changes, csv_null=csv_null)
    strategy = dialect_of(bind)
    with atomic(bind) as scope:
        connection = scope.connection
        resolved = resolve_target(target, connection, key=key_names, version_column=version_column)
        if not resolved.key:
            raise SchemaError(f"{resolved.name!r} has no primary key: pass key=")
        try:
            merge = _stage(connection, strategy, resolved, source.rows, source.lenient)
            if merge is None:
                return _empty_report(resolved, started)
            report = _merge(
                connection,
                strategy,
                merge,
                returning=returning,
                expect_rows=expect_rows,
                max_rows=max_rows,
                started=started,
            )
        except DBAPIError as exc:
            if not strategy.is_integrity_error(exc):
                raise
            raise integrity_to_validation(exc, resolved.table, strategy, {}) from exc
        if scope.session is not None:
            _sync_session(connection, scope.session, merge)
        merge.drop(connection, strategy)
        return report


class _Intake:
    """Turns raw rows into staging tuples, collecting every problem on the way."""

    def __init__(self, target: Target, lenient: bool, fields: Sequence[str]) -> None:
        self.target = target
        self.lenient = lenient
        self.problems: list[Problem] = []
        self.total_problems = 0
        self.unknown_reported: set[str] = set()
        self.key = list(target.key)
        key_names = {c.name for c in target.key}
        version = target.version
        self.expects_version = version is not None and version.name in fields
        self.version = version if self.expects_version else None
        self.columns: list[Column[Any]] = []
        for name in fields:
            column = self._known(name)
            if column is None or column.name in key_names:
                continue
            if version is not None and column is version:
                continue
            if column.name not in {c.name for c in self.columns}:
                self.columns.append(column)
        self.coercers: dict[str, Coercer] = {
            c.name: coercer_for(c, lenient=lenient)
            for c in [
                *self.key,
                *self.columns,
                *([self.version] if self.version is not None else []),
            ]
        }
        self.sparse = False

    def _known(self, field: str) -> Column[Any] | None:
        """The target column a field names: a column name, or an ORM attribute."""
        column = self.target.table.columns.get(field)
        mapper = self.target.mapper
        if column is None and mapper is not None and field in mapper.column_attrs:
            column = self.target.table.columns.get(mapper.column_attrs[field].columns[0].name)
        return column

    def problem(self, row: int, column: str | None, value: Any, reason: str) -> None:
        self.total_problems += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(column=column, value=value, reason=reason, row=row))

    def convert(self, number: int, fields: dict[str, Any] | Unreadable) -> tuple[Any, ...] | None:
        """The staging tuple for one row, or None when the row has problems."""
        if isinstance(fields, Unreadable):
            self.problem(number, None, None, fields.reason)
            return None
        ok = True
        for name in fields:
            if name not in self.coercers and self._unknown(number, name, fields[name]):
                ok = False
        values: list[Any] = [number]
        for column in self.key:
            value = fields.get(column.name)
            if value is None:
                self.problem(number, column.name, value, "missing key value")
                ok = False
                continue
            ok = self._coerce(number, column.name, value, values) and ok
        mask = 0
        for index, column in enumerate(self.columns):
            if column.name in fields:
                mask |= 1 << index
                ok = self._coerce(number, column.name, fields[column.name], values) and ok
            else:
                values.append(None)
        if self.version is not None:
            name = self.version.name
            if fields.get(name) is None:
                self.problem(number, name, None, "rows carry versions; this one has none")
                ok = False
            else:
                ok = self._coerce(number, name, fields[name], values) and ok
        if mask != (1 << len(self.columns)) - 1:
            self.sparse = True
        if not ok:
            return None
        return (values[0], mask, *values[1:])

    def _coerce(self, number: int, name: str, value: Any, values: list[Any]) -> bool:
        try:
            values.append(self.coercers[name](value))
            return True
        except Unfit as unfit:
            self.problem(number, name, value, unfit.reason)
            values.append(None)
            return False

    def _unknown(self, number: int, name: str, value: Any) -> bool:
        """Report a field that is no column of the target (once per field). Returns True
        when the field is a real problem, False for a known column the row may carry."""
        column = self._known(name)
        if column is not None and column.name in self.coercers:
            return False
        if column is not None and self.target.version is not None and column is self.target.version:
            return False
        if name not in self.unknown_reported:
            self.unknown_reported.add(name)
            hint = closest(name, self.target.table.columns.keys())
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            if column is not None:
                reason = "a column first seen after the first batch; put it in the first row"
            else:
                reason = f"no such column in {self.target.name!r}{suggestion}"
            self.problem(number, name, value, reason)
        return True


def _stage(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    rows: Iterator[Row],
    lenient: bool,
) -> Merge | None:
    """Read, check and stage every row. Raises ValidationError listing every problem."""
    first = list(islice(rows, STAGE_BATCH_ROWS))
    if not first:
        return None
    fields: dict[str, None] = {}
    for _, row in first:
        if isinstance(row, dict):
            fields.update(dict.fromkeys(row))
    intake = _Intake(target, lenient, list(fields))
    if len(intake.columns) > MAX_SPARSE_COLUMNS:
        raise SchemaError(f"a changeset may set at most {MAX_SPARSE_COLUMNS} columns at once")
    converted = [intake.convert(number, row) for number, row in first]
    merge = Merge.create(
        connection,
        strategy,
        target,
        intake.columns,
        expects_version=intake.expects_version,
        sparse=True,
    )
    batch: list[tuple[Any, ...] | None] = converted
    while batch:
        staged = [row for row in batch if row is not None]
        if staged and not intake.total_problems:
            strategy.stage_rows(connection, merge.stage, staged)
        batch = [intake.convert(number, row) for number, row in islice(rows, STAGE_BATCH_ROWS)]
    if not intake.total_problems:
        _find_duplicates(connection, merge, intake)
    if intake.total_problems:
        raise ValidationError(target.name, intake.problems, intake.total_problems)
    if not intake.sparse:
        merge = Merge(merge.target, merge.stage, merge.columns, merge.expects_version, False)
    return merge


def _find_duplicates(connection: Connection, merge: Merge, intake: _Intake) -> None:
    names = [column.name for column in merge.target.key]
    for row, first_row, *key in connection.execute(merge.duplicate_rows(MAX_PROBLEMS)):
        value = key[0] if len(key) == 1 else tuple(key)
        intake.problem(row, ", ".join(names), value, f"duplicate key: also in row {first_row}")


def _merge(
    connection: Connection,
    strategy: Strategy,
    merge: Merge,
    *,
    returning: Sequence[Any],
    expect_rows: int | None,
    max_rows: int | None,
    started: float,
) -> Report:
    target = merge.target
    matched, would_change, conflicted, staged = (
        int(n) for n in connection.execute(merge.tally()).one()
    )
    if max_rows is not None and would_change > max_rows:
        raise TooManyRowsError(target.name, limit=max_rows, would_change=would_change)
    if expect_rows is not None and matched < expect_rows:
        raise NotFoundError(target.name, expected=expect_rows, matched=matched)
    missing = staged - matched
    missing_keys = _keys(connection, merge.missing_keys(KEY_SAMPLE)) if missing else ()
    conflicts = _keys(connection, merge.conflict_keys(KEY_SAMPLE)) if conflicted else ()

    if strategy.supports_update_from:
        changed = connection.execute(merge.merge()).rowcount
        name = f"{strategy.name}: stage + UPDATE … FROM"
    else:
        changed = _merge_by_key(connection, merge)
        name = f"{strategy.name}: stage + UPDATE by key"

    rows: tuple[dict[str, Any], ...] = ()
    if returning:
        columns = [target.column(_name_of(ref)) for ref in returning]
        result = connection.execute(merge.matched_rows(columns))
        rows = tuple(dict(zip([c.name for c in columns], row, strict=True)) for row in result)
    return Report(
        table=target.name,
        strategy=name,
        matched=matched,
        changed=changed,
        unchanged=matched - changed - conflicted,
        missing=missing,
        missing_keys=missing_keys,
        conflicts=conflicts,
        elapsed_s=time.perf_counter() - started,
        rows=rows,
    )


def _merge_by_key(connection: Connection, merge: Merge) -> int:
    """For databases without UPDATE … FROM: read the rows that change, in key order,
    and update them by key with one executemany per set of columns present."""
    target = merge.target
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in connection.execute(merge.changed_rows()).mappings():
        params = {f"k_{c.name}": row[c.name] for c in target.key}
        present = row[PRESENT] if merge.sparse else (1 << len(merge.columns)) - 1
        params |= {f"v_{c.name}": row[c.name] for c in merge.columns}
        if merge.expects_version and target.version is not None:
            params["k_version"] = row[target.version.name]
        groups.setdefault(present, []).append(params)
    changed = 0
    for present, rows in groups.items():
        statement = sql_update(target.table).where(
            *(c == bindparam(f"k_{c.name}") for c in target.key)
        )
        if merge.expects_version and target.version is not None:
            statement = statement.where(target.version == bindparam("k_version"))
        values: dict[Column[Any], Any] = {
            c: bindparam(f"v_{c.name}") for i, c in enumerate(merge.columns) if present & (1 << i)
        }
        if target.version is not None and target.version not in values:
            values[target.version] = target.version + 1
        connection.execute(statement.values(values), rows)
        changed += len(rows)
    return changed


def _sync_session(connection: Connection, session: Any, merge: Merge) -> None:
    """Give objects loaded in the session the values their rows hold now."""
    loaded = loaded_objects(session, merge.target)
    if not loaded:
        return
    target = merge.target
    columns = [*target.key, *merge.columns]
    if target.version is not None and target.version not in columns:
        columns.append(target.version)
    keys = list(loaded)
    written = []
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        result = connection.execute(select(*columns).where(key_in(target.key, batch)))
        names = [c.name for c in columns]
        written += [dict(zip(names, row, strict=True)) for row in result]
    synchronize(loaded, target, written)


def _keys(connection: Connection, statement: Any) -> tuple[Any, ...]:
    rows = connection.execute(statement).all()
    return tuple(row[0] if len(row) == 1 else tuple(row) for row in rows)


def _name_of(ref: Any) -> str:
    return ref if isinstance(ref, str) else str(getattr(ref, "name", None) or ref.key)


def _empty_report(target: Target, started: float) -> Report:
    return Report(
        table=target.name,
        strategy="nothing to apply",
        matched=0,
        changed=0,
        unchanged=0,
        elapsed_s=time.perf_counter() - started,
        chunks=0,
    )
