"""Work with the ORM Session: keep loaded objects current, and PATCH one record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, and_, inspect, select, types
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ColumnProperty, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from setwise.constraints import integrity_to_validation
from setwise.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    ProblemKind,
    SchemaError,
    ValidationError,
    closest,
)
from setwise.target import Target, resolve_target
from setwise.transaction import atomic, dialect_of
from setwise.validation import check_values

Model = TypeVar("Model")

Validator = Callable[[Mapping[str, Any]], Mapping[str, str] | None]
"""Takes the changes; returns {field: reason} for each value it rejects, or None."""


def loaded_objects(session: Session, target: Target) -> dict[tuple[Any, ...], Any]:
    """Objects in the session's identity map that hold rows of the target table, by key."""
    found: dict[tuple[Any, ...], Any] = {}
    for obj in list(session.identity_map.values()):
        state = inspect(obj)
        if _mapped_table(state.mapper, target) is not None and state.identity is not None:
            found[tuple(state.identity)] = obj
    return found


def synchronize(
    loaded: Mapping[tuple[Any, ...], Any], target: Target, written: Iterable[Mapping[str, Any]]
) -> int:
    """Give loaded objects the values just written to their rows. Returns how many."""
    key_names = [column.name for column in target.key]
    refreshed = 0
    for row in written:
        obj = loaded.get(tuple(row[name] for name in key_names))
        if obj is None:
            continue
        mapper = inspect(obj).mapper
        table = _mapped_table(mapper, target)
        for name, value in row.items():
            column = table.columns.get(name) if table is not None else None
            if column is None:
                continue
            prop = mapper._columntoproperty.get(column)
            if prop is not None:
                set_committed_value(obj, prop.key, value)
        refreshed += 1
    return refreshed


def patch(
    session: Session,
    model: type[Model],
    key: Any,
    changes: Mapping[str, Any],
    *,
    expected_version: Any = None,
    validate: Validator | None = None,
    version_column: str | None = None,
) -> Model:
    """Update the fields in ``changes`` of one row, and return the refreshed object.

    Fields absent from ``changes`` are untouched; ``None`` sets NULL. With a version
    column (the mapper's ``version_id_col`` or ``version_column``), the version is
    checked in the UPDATE's WHERE clause against ``expected_version`` when given, and
    bumped in the same statement. Raises ``ValidationError`` (nothing sent),
    ``NotFoundError`` or ``ConflictError`` (carrying the current version).
    """
    target = resolve_target(model, version_column=version_column)
    if target.mapper is None:
        raise SchemaError(f"patch needs an ORM mapped class, got {model!r}")
    key_values = target.key_tuple(key)
    values = _patch_values(target, target.mapper, changes, validate)

    matches_key = and_(
        *(column == value for column, value in zip(target.key, key_values, strict=True))
    )
    where: list[ColumnElement[bool]] = [matches_key]
    assignments: dict[Column[Any], Any] = dict(values)
    if target.version is not None:
        if expected_version is not None:
            where.append(target.version == expected_version)
        if assignments and isinstance(target.version.type, types.Integer):
            assignments[target.version] = target.version + 1
    elif expected_version is not None:
        raise SchemaError(
            f"{target.name!r} has no version column to check expected_version against; "
            "map one with version_id_col or pass version_column="
        )

    try:
        with atomic(session) as scope:
            hit = 0
            if assignments:
                statement = sql_update(target.table).where(*where).values(assignments)
                hit = scope.connection.execute(statement).rowcount
            if hit == 0:
                _explain_miss(scope.connection, target, matches_key, key, expected_version)
    except DBAPIError as exc:
        strategy = dialect_of(session)
        if not strategy.is_integrity_error(exc):
            raise
        named = {column.name: value for column, value in values.items()}
        raise integrity_to_validation(exc, target.table, strategy, named) from exc
    obj = session.get(model, key_values, populate_existing=True)
    if obj is None:  # deleted by someone else between our commit and this read
        raise NotFoundError(target.name, key=key)
    return obj


def _patch_values(
    target: Target, mapper: Mapper[Any], changes: Mapping[str, Any], validate: Validator | None
) -> dict[Column[Any], Any]:
    """Map field names to columns, and collect every problem before anything is sent."""
    problems: list[Problem] = []
    values: dict[Column[Any], Any] = {}
    fields = {prop.key: prop for prop in mapper.attrs if isinstance(prop, ColumnProperty)}
    key_names = {column.name for column in target.key}
    for name, value in changes.items():
        prop = fields.get(name)
        if prop is None:
            hint = closest(name, fields)
            reason = "no such field" + (f"; did you mean {hint!r}?" if hint else "")
            if name in mapper.attrs:
                reason = "a relationship, not a column: patch sets column fields only"
            kind = ProblemKind.UNKNOWN_COLUMN
            problems.append(Problem(column=name, value=value, reason=reason, kind=kind))
            continue
        column = target.table.columns.get(prop.columns[0].name)
        if column is None:
            reason = "not a column of the table"
            kind = ProblemKind.UNKNOWN_COLUMN
            problems.append(Problem(column=name, value=value, reason=reason, kind=kind))
        elif column.name in key_names:
            problems.append(
                Problem(column=name, value=value, reason="part of the primary key; cannot change")
            )
        elif target.version is not None and column is target.version:
            problems.append(
                Problem(column=name, value=value, reason="the version column; setwise bumps it")
            )
        else:
            values[column] = value
    problems += check_values(values)
    if validate is not None and not problems:
        for name, reason in (validate(dict(changes)) or {}).items():
            problems.append(Problem(column=name, value=changes.get(name), reason=reason))
    if problems:
        raise ValidationError(target.name, problems)
    return values


def _explain_miss(
    connection: Any, target: Target, matches_key: ColumnElement[bool], key: Any, expected: Any
) -> None:
    """No row was updated: say whether the row is missing or its version moved."""
    probe = target.version if target.version is not None else target.key[0]
    current = connection.execute(select(probe).where(matches_key)).first()
    if current is None:
        raise NotFoundError(target.name, key=key)
    if expected is not None and target.version is not None and current[0] != expected:
        raise ConflictError(
            target.name, key=key, expected_version=expected, current_version=current[0]
        )


def _mapped_table(mapper: Mapper[Any], target: Target) -> Any:
    """The table of ``mapper`` that is the target's table, matched by name."""
    for table in mapper.tables:
        if getattr(table, "fullname", None) == target.name:
            return table
    return None
