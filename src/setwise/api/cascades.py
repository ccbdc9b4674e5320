"""Refuse a journaled delete whose rows a foreign key's ON DELETE CASCADE, SET NULL or
SET DEFAULT would carry into rows of another table: the journal keeps the rows the
DELETE matches, not the rows the database deletes or changes for it, so a revert would
give back the parents and not their children."""

from __future__ import annotations

from sqlalchemy import Connection, and_, column, exists, func, literal, select, table

from setwise.dialects import Strategy
from setwise.dialects.foreign_keys import WritingKey, writing_keys
from setwise.errors import ValidationError
from setwise.problems import Problem, ProblemKind
from setwise.writers.delete import SetDelete

#: Rows to delete that are counted as referred to, at most, per foreign key: enough to
#: tell a handful from many, while a refusal of a huge delete stops counting early.
COUNTED = 1000


def refuse_cascades(connection: Connection, strategy: Strategy, plan: SetDelete) -> None:
    """Raise ``ValidationError`` when rows that ``plan`` deletes are referred to by rows
    of a table whose foreign key writes them on delete; a key that no referring row
    uses is let be (it loses nothing). One reflection, then one query per such key."""
    problems: list[Problem] = []
    refusing: list[WritingKey] = []
    for key in writing_keys(connection, strategy, plan.table):
        referred = _referred_rows(connection, plan, key)
        if referred:
            refusing.append(key)
            problems.append(_problem(plan, key, referred))
    if problems:
        first = refusing[0] if len(refusing) == 1 else None
        raise ValidationError(
            plan.target.name,
            problems,
            constraint=first.name if first else None,
            referenced_by=_shown(first) if first else None,
        )


def _referred_rows(connection: Connection, plan: SetDelete, key: WritingKey) -> int:
    """How many rows the DELETE matches that rows of ``key``'s table refer to, counted
    up to ``COUNTED``. On a key of the table to itself every referring row counts, even
    one the DELETE matches too: a chunk may delete its parent, and with it the row,
    before the row's chunk journals it; and SQLite and MariaDB cascade within one DELETE
    before it reaches the row, so that it counts fewer rows than the journal holds."""
    parent = plan.table
    child = table(key.table, *(column(name) for name in key.columns), schema=key.schema)
    child_alias = child.alias("setwise_referring")
    refers = and_(
        *(
            child_alias.c[name] == parent.c[referred]
            for name, referred in zip(key.columns, key.referred, strict=True)
        )
    )
    matched = (
        select(literal(1))
        .select_from(parent)
        .where(*plan.criteria(exists().where(refers)))
        .limit(COUNTED)
        .subquery()
    )
    return int(connection.execute(select(func.count()).select_from(matched)).scalar_one())


def _problem(plan: SetDelete, key: WritingKey, referred: int) -> Problem:
    rows = f"at least {referred:,}" if referred >= COUNTED else f"{referred:,}"
    name = f"foreign key {key.name!r}" if key.name else "a foreign key"
    referring = _shown(key)
    reason = (
        f"{rows} of the rows the DELETE would remove {'is' if referred == 1 else 'are'} "
        f"referred to by rows of {referring!r} ({', '.join(key.columns)}) through {name} "
        f"with ON DELETE {key.action}: the database would {_done(key)}, which the journal "
        "does not keep, and a revert could not give back. Delete the referring rows of "
        f"{referring!r} first with setwise.delete (journaled, revertible), or delete "
        "without a journal, which cannot be reverted"
    )
    return Problem(
        column=None,  # the row of the table deleted from: the columns are the other's
        value=None,
        reason=reason,
        kind=ProblemKind.CONSTRAINT,
        fix=("journal", False),
    )


def _shown(key: WritingKey) -> str:
    """The referring table's name, with its schema when that is not the deleted one's."""
    return f"{key.schema}.{key.table}" if key.schema else key.table


def _done(key: WritingKey) -> str:
    """What the database does to the referring rows, in words."""
    if key.action == "CASCADE":
        return "delete them too"
    columns = ", ".join(key.columns)
    value = "NULL" if key.action == "SET NULL" else "its default"
    return f"set their ({columns}) to {value}"
