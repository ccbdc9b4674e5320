"""PostgreSQL 18's RETURNING of old and new values: an UPDATE that journals as it writes.

From PostgreSQL 18 an UPDATE returns each row's values as they were before it
(``RETURNING old.c``) and as it stored them (``new.c``). A data-modifying CTE then
carries them into the journal in the same statement::

    WITH setwise_changed AS (UPDATE target SET … RETURNING target.k, old.c, new.c)
    INSERT INTO journal … SELECT … FROM setwise_changed

The target is read once, not once by the journal's INSERT and again by the UPDATE,
and the journal holds exactly the rows the UPDATE wrote and the values it overwrote.

Whether the server can is asked of it (``server_version_num``), once per connection,
never taken from the SQLAlchemy dialect: a server older than 18 refuses ``old.c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Select, Table, Update, func, select
from sqlalchemy.sql.expression import column, table
from sqlalchemy.sql.visitors import iterate

#: The first server_version_num whose UPDATE can return old values.
RETURNS_OLD_FROM = 180000
_KNOWN = "setwise_returns_old"
#: What an UPDATE's RETURNING calls the row before it and after it: a table of either
#: name in the statement would be read instead (the old path serves it).
_ROW_NAMES = frozenset({"old", "new"})
#: The CTE of the UPDATE; a subquery's name, within the statement only.
CHANGED = "setwise_changed"


def returns_old(connection: Connection) -> bool:
    """Whether the server on ``connection`` returns an UPDATE's old values: asked once,
    kept in the connection's ``info`` (it lives as long as the pooled connection)."""
    known = connection.info.get(_KNOWN)
    if known is None:
        number = connection.execute(select(func.current_setting("server_version_num")))
        known = connection.info[_KNOWN] = int(number.scalar_one()) >= RETURNS_OLD_FROM
    return bool(known)


def returned_rows(
    update: Update, key: Sequence[Column[Any]], written: Sequence[Column[Any]]
) -> Select[Any] | None:
    """The journal rows ``update`` returns as it writes: ``key``, then old and new of each
    of ``written``, one row per row written; None when a table of the statement is named
    ``old`` or ``new``."""
    for element in iterate(update):
        if isinstance(element, Table) and element.name in _ROW_NAMES:
            return None
    before, after = (
        table(name, *(column(c.name, c.type) for c in written)) for name in ("old", "new")
    )
    returned = [k.label(f"k{i}") for i, k in enumerate(key)]
    for i, c in enumerate(written):
        returned += [before.c[c.name].label(f"o{i}"), after.c[c.name].label(f"n{i}")]
    changed = update.returning(*returned).cte(CHANGED)
    return select(*changed.c)
