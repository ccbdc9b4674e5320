"""``setwise.patch``: PATCH one record of an ORM mapped class, checked and versioned."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from sqlalchemy import Column, ColumnElement, Connection, Table, and_, inspect, select, types
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ColumnProperty, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from setwise.dialects import Strategy
from setwise.dialects.integrity import integrity_to_validation
from setwise.engine.transaction import Scope, atomic, dialect_of, engine_of
from setwise.errors import ConflictError, NotFoundError, SchemaError, SetwiseError, ValidationError
from setwise.messages import closest
from setwise.problems import Problem, ProblemKind
from setwise.staging.validation import Storable, check_values
from setwise.target import Target, resolve_target

Model = TypeVar("Model")

Validator = Callable[[Mapping[str, Any]], Mapping[str, str] | None]
"""Takes the changes; returns {field: reason} for each value it rejects, or None."""


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
    """Update the fields in ``changes`` of one row, and return its object as stored.

    Fields absent from ``changes`` are untouched; ``None`` sets NULL. With a version
    column (the mapper's ``version_id_col`` or ``version_column``), the version is
    checked in the UPDATE's WHERE clause against ``expected_version`` when given, and
    bumped in the same statement (an integer by one; another type, such as a UUID, by
    the mapper's ``version_id_generator``, from the version read locked). Raises
    ``ValidationError`` (nothing sent), ``NotFoundError`` or ``ConflictError``
    (carrying the current version), decided by a locking read, never by the caller's
    snapshot. A write the database refuses because the row changed after the caller's
    transaction began (PostgreSQL's REPEATABLE READ, SERIALIZABLE) is a
    ``ConflictError`` too. A class sharing its table with others (single-table
    inheritance) finds rows of its own kind only; a class with a table of its own under
    a parent's (joined-table inheritance) writes its own table, and checks and moves
    the version the parent's row keeps. The returned object is read in the
    patch's transaction; after a failure the object shows nothing unsaved.
    """
    target = resolve_target(model, version_column=version_column)
    if target.mapper is None:
        raise SchemaError(f"patch needs an ORM mapped class, got {model!r}")
    key_values = target.key_tuple(key)
    strategy = dialect_of(session)
    storable = Storable.on(strategy)
    parent = _parent_version(target, target.mapper) if version_column is None else None
    given = _argument_problems(target, key_values, parent, expected_version, storable)
    values = _patch_values(target, target.mapper, given, changes, validate, storable)

    matches_key = and_(
        *(column == value for column, value in zip(target.key, key_values, strict=True)),
        *_of_class(target.mapper),
    )
    where: list[ColumnElement[bool]] = [matches_key]
    assignments: dict[Column[Any], Any] = dict(values)
    generator = _version_generator(target, target.mapper) if assignments else None
    if target.version is not None:
        if expected_version is not None:
            where.append(target.version == expected_version)
        if assignments and isinstance(target.version.type, types.Integer):
            assignments[target.version] = target.version + 1
    elif expected_version is not None and parent is None:
        raise SchemaError(
            f"{target.name!r} has no version column to check expected_version against; "
            "map one with version_id_col or pass version_column="
        )

    stored: Any = None
    try:
        with atomic(session) as scope:
            hit = 0
            if parent is not None:
                moves = bool(assignments)
                _move_parent_version(
                    scope, target, parent, key_values, key, expected_version, moves
                )
            if generator is not None and target.version is not None:
                # The next version is the mapper's generator's (a UUID, a timestamp),
                # from the version the row holds: read it locked, and write only over it.
                now = _current_version(
                    scope, target, target.version, target.table, matches_key, key
                )
                _check_version(target, key, expected_version, now)
                assignments[target.version] = generator(now)
                where.append(target.version == now)
                expected_version = now  # a version moved anyway is a conflict
            if assignments:
                statement = sql_update(target.table).where(*where).values(assignments)
                hit = scope.connection.execute(statement).rowcount
            if hit == 0:
                _explain_miss(
                    scope.connection, strategy, target, matches_key, key, expected_version
                )
            # Read in the patch's own transaction, where the row is locked: the values as
            # stored, before anyone else can change them.
            current = strategy.lock_rows(select(model).where(matches_key), target.table)
            stored = session.execute(current.execution_options(populate_existing=True)).scalar_one()
            state = inspect(stored)
            as_stored = {
                prop.key: state.dict[prop.key]
                for prop in state.mapper.column_attrs
                if prop.key in state.dict
            }
    except BaseException as exc:
        if stored is not None and stored in session:
            session.expire(stored)  # read, then rolled back: it must not show unsaved values
        if not isinstance(exc, DBAPIError):
            raise
        if strategy.is_integrity_error(exc):
            named = {column.name: value for column, value in values.items()}
            raise integrity_to_validation(exc, target.table, strategy, named) from exc
        if strategy.is_serialization_failure(exc):
            raise _moved(session, target, matches_key, key, expected_version) from exc
        raise
    # Committing a transaction setwise began expired the object (expire_on_commit): it
    # keeps the values it stored rather than reading the row again, changed or gone.
    for name, value in as_stored.items():
        set_committed_value(stored, name, value)
    return cast(Model, stored)


def _argument_problems(
    target: Target,
    key_values: tuple[Any, ...],
    parent_version: Column[Any] | None,
    expected_version: Any,
    storable: Storable,
) -> list[Problem]:
    """The key's values and ``expected_version``, checked against their columns as the
    changes are: a text key for an integer column would fail in PostgreSQL's driver,
    and MariaDB and SQLite would compare it as a number."""
    problems = [
        Problem(p.column, p.value, f"the key given: {p.reason}", kind=p.kind)
        for p in check_values(dict(zip(target.key, key_values, strict=True)), storable=storable)
    ]
    version = target.version if target.version is not None else parent_version
    if version is not None and expected_version is not None:
        problems += [
            Problem(p.column, p.value, f"expected_version: {p.reason}", kind=p.kind)
            for p in check_values({version: expected_version}, storable=storable)
        ]
    return problems


def _patch_values(
    target: Target,
    mapper: Mapper[Any],
    given: list[Problem],
    changes: Mapping[str, Any],
    validate: Validator | None,
    storable: Storable,
) -> dict[Column[Any], Any]:
    """Map field names to columns, and collect every problem before anything is sent,
    after those of the arguments (``given``)."""
    problems = list(given)
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
        mapped = [c for c in prop.columns if isinstance(c, Column)]
        column = next((c for c in mapped if c.table is target.table), None)
        if column is None:
            owner = getattr(prop.columns[0], "table", None)
            reason = "not a column of the table"
            if isinstance(owner, Table):  # joined-table inheritance: a parent's column
                reason = f"a column of {owner.fullname!r}; patch writes {target.name!r} only"
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
    problems += check_values(values, storable=storable)
    if validate is not None and not problems:
        for name, reason in (validate(dict(changes)) or {}).items():
            problems.append(Problem(column=name, value=changes.get(name), reason=reason))
    if problems:
        raise ValidationError(target.name, problems)
    return values


def _of_class(mapper: Mapper[Any]) -> list[ColumnElement[bool]]:
    """A class sharing its table with others (single-table inheritance) patches rows of
    its own kind only: another class's row of that key is not found."""
    if not mapper.single or mapper.polymorphic_on is None:
        return []
    kinds = [m.polymorphic_identity for m in mapper.self_and_descendants]
    return [mapper.polymorphic_on.in_([kind for kind in kinds if kind is not None])]


def _version_generator(target: Target, mapper: Mapper[Any]) -> Callable[[Any], Any] | None:
    """The mapper's ``version_id_generator``, when setwise must call it to move the
    target's version: a version column the SQL ``version + 1`` cannot move (a UUID, a
    timestamp), kept by the mapper rather than by the server (``False``)."""
    version = target.version
    mapped = mapper.version_id_col
    if version is None or mapped is None or mapped.name != version.name:
        return None
    if isinstance(version.type, types.Integer):
        return None
    generator = mapper.version_id_generator
    return generator if callable(generator) else None


def _current_version(
    scope: Scope,
    target: Target,
    version: Column[Any],
    table: Table,
    matches_key: ColumnElement[bool],
    key: Any,
) -> Any:
    """The ``version`` the row of ``table`` holds now, read locked; NotFoundError when
    there is no row."""
    locked = scope.strategy.lock_rows(select(version).where(matches_key), table)
    current = scope.connection.execute(locked).first()
    if current is None:
        raise NotFoundError(target.name, key=key)
    return current[0]


def _parent_version(target: Target, mapper: Mapper[Any]) -> Column[Any] | None:
    """The mapper's version column when it lives in a parent class's table (joined-table
    inheritance), where the ORM checks and moves it whatever table a flush writes."""
    version = mapper.version_id_col
    if version is None or target.version is not None or version.table is target.table:
        return None
    return cast("Column[Any]", version)


def _move_parent_version(
    scope: Scope,
    target: Target,
    version: Column[Any],
    key_values: tuple[Any, ...],
    key: Any,
    expected: Any,
    moves: bool,
) -> None:
    """Check the version kept in the parent's table against ``expected``, and move it
    when the patch writes (``moves``), as a flush of the object would."""
    assert target.mapper is not None
    mapper, table = target.mapper, version.table
    parent_key = []
    for column, value in zip(target.key, key_values, strict=True):
        same = mapper.get_property_by_column(column).columns
        parent_key += [c == value for c in same if c.table is table]
    if len(parent_key) != len(table.primary_key.columns):
        raise SchemaError(
            f"the version of {target.name!r} is kept in {table.fullname!r}, whose key "
            "columns are not those of the same attributes: patch cannot find its row"
        )
    matches = and_(*parent_key)
    now = _current_version(scope, target, version, table, matches, key)
    _check_version(target, key, expected, now)
    if not moves:
        return
    generator = mapper.version_id_generator
    moved = version + 1 if isinstance(version.type, types.Integer) else None
    if moved is None and callable(generator):
        moved = generator(now)
    if moved is None:
        return  # the server moves it (version_id_generator=False)
    statement = sql_update(table).where(matches, version == now).values({version: moved})
    if scope.connection.execute(statement).rowcount == 0:
        current = _current_version(scope, target, version, table, matches, key)
        raise ConflictError(target.name, key=key, expected_version=now, current_version=current)


def _check_version(target: Target, key: Any, expected: Any, current: Any) -> None:
    """ConflictError when the caller expected another version than the row's."""
    if expected is not None and current != expected:
        raise ConflictError(
            target.name, key=key, expected_version=expected, current_version=current
        )


def _explain_miss(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    matches_key: ColumnElement[bool],
    key: Any,
    expected: Any,
) -> None:
    """No row was updated: say whether the row is missing or its version moved.

    A locking read, like the UPDATE it explains: under REPEATABLE READ a plain SELECT
    reads the transaction's snapshot (InnoDB), which may still hold the version the
    UPDATE did not find. PostgreSQL refuses the locking read of a row changed since the
    snapshot with a serialization failure, which ``patch`` turns into ``_moved``.
    """
    probe = target.version if target.version is not None else target.key[0]
    locked = strategy.lock_rows(select(probe).where(matches_key), target.table)
    current = connection.execute(locked).first()
    if current is None:
        raise NotFoundError(target.name, key=key)
    if target.version is not None:
        _check_version(target, key, expected, current[0])


def _moved(
    session: Session, target: Target, matches_key: ColumnElement[bool], key: Any, expected: Any
) -> SetwiseError:
    """The error for a patch the database refused because the row changed after the
    transaction's snapshot (PostgreSQL's REPEATABLE READ and SERIALIZABLE).

    That transaction can no longer read the row as it is now (its snapshot shows the old
    version, a locking read fails the same way), so the row is read on a connection of
    setwise's own, in a new transaction: ``current_version`` is the latest committed
    version, and a row deleted since is ``NotFoundError``.
    """
    probe = target.version if target.version is not None else target.key[0]
    with engine_of(session).connect() as connection:
        current = connection.execute(select(probe).where(matches_key)).first()
    if current is None:
        return NotFoundError(target.name, key=key)
    version = current[0] if target.version is not None else None
    return ConflictError(target.name, key=key, expected_version=expected, current_version=version)
