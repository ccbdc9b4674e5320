"""Keep the objects a Session has loaded current with the rows a run wrote.

The rows are read back by key after the write, in its transaction (a run's
``returning`` rows are read the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, inspect, select
from sqlalchemy.orm import Mapper, Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from setwise.target import Target
from setwise.writers.keys import key_in

#: Keys per SELECT when reading rows back by key: far below every bind-parameter limit.
READ_BACK_KEYS = 500


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
    key_names = [column.name for column in target.identity]
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


def read_back(
    connection: Connection,
    target: Target,
    keys: Sequence[tuple[Any, ...]],
    columns: list[Column[Any]],
) -> list[dict[str, Any]]:
    """``columns`` of the rows with ``keys``, as they are now, in key order."""
    wanted = _unique([*target.identity, *columns])
    found: list[dict[str, Any]] = []
    names = [c.name for c in wanted]
    for start in range(0, len(keys), READ_BACK_KEYS):
        batch = keys[start : start + READ_BACK_KEYS]
        statement = select(*wanted).where(key_in(target.identity, batch)).order_by(*target.identity)
        found += [dict(zip(names, row, strict=True)) for row in connection.execute(statement)]
    found.sort(key=lambda row: tuple(row[c.name] for c in target.identity))
    return [{c.name: row[c.name] for c in columns} for row in found]


def sync(
    connection: Connection,
    target: Target,
    loaded: dict[tuple[Any, ...], Any],
    keys: Sequence[tuple[Any, ...]],
    *,
    deleting: bool = False,
) -> None:
    """Give the loaded objects of ``keys`` the values their rows hold now. Those whose
    rows are gone are expunged after a run that deletes (``deleting``), so that the
    Session neither shows them nor writes them back; otherwise (an UPDATE that moved
    the key, a row deleted apart from the run) they are expired: the row they held is
    no more, and an expired object says so when read, rather than show what it was."""
    rows = read_back(connection, target, keys, list(target.table.columns))
    synchronize(loaded, target, rows)
    names = [column.name for column in target.identity]
    there = {tuple(row[name] for name in names) for row in rows}
    for key in keys:
        obj = loaded.get(key)
        session = object_session(obj) if obj is not None else None
        if key in there or session is None:
            continue
        if deleting:
            session.expunge(obj)
        else:
            session.expire(obj)


def _mapped_table(mapper: Mapper[Any], target: Target) -> Any:
    """The table of ``mapper`` that is the target's table, matched by name."""
    for table in mapper.tables:
        if getattr(table, "fullname", None) == target.name:
            return table
    return None


def _unique(columns: Sequence[Column[Any]]) -> list[Column[Any]]:
    seen: dict[str, Column[Any]] = {}
    for column in columns:
        seen.setdefault(column.name, column)
    return list(seen.values())
