"""What a statement does, read from its SQLAlchemy tree.

A journaled chunk sends the writer's own UPDATE right after the journal's INSERT, in
place of a join of the journal, only when the UPDATE computes the same rows and values
again (``repeatable``) and reads nothing another writer could change in between once
the INSERT locked the target's rows (``reads_only``): ``ChunkWrite._rewrites_journaled_rows``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import iterate

#: Functions that give the same result for the same arguments in every statement. Any
#: other (now(), random(), a user's function) might not, and text setwise cannot read
#: might hold one: an UPDATE with those is not run twice in the hope of one result.
DETERMINISTIC_FUNCTIONS = frozenset(
    {"abs", "coalesce", "ifnull", "nullif", "lower", "upper", "length", "substr", "trim"}
    | {"ltrim", "rtrim", "replace", "round", "max", "min", "count", "sum", "avg"}
    | {"cast", "convert"}  # the stored-value comparisons of dialects/ (MySQL's CONVERT … USING)
)


def repeatable(statement: UpdateBase) -> bool:
    """True when ``statement`` finds the same rows and computes the same values each
    time it runs over the same data."""
    for element in iterate(statement):
        if isinstance(element, TextClause):
            return False
        name = str(getattr(element, "name", "")).lower()
        if isinstance(element, FunctionElement) and name not in DETERMINISTIC_FUNCTIONS:
            return False
    return True


def reads_only(statement: UpdateBase, target: Table, private_schema: str | None) -> bool:
    """True when ``statement`` reads no table but ``target`` (and setwise's own, in
    ``private_schema``), and no subquery: nothing another writer could change once the
    rows of ``target`` it reads are locked."""
    for element in iterate(statement):
        if isinstance(element, Table):
            if element._deannotate() is not target and element.schema != private_schema:
                return False
        elif getattr(element, "is_selectable", False) and not isinstance(element, FunctionElement):
            return False
    return True
