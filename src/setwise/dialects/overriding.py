"""PostgreSQL's ``INSERT … OVERRIDING SYSTEM VALUE``, which SQLAlchemy does not build.

A column ``GENERATED ALWAYS AS IDENTITY`` refuses a value in an INSERT unless the
statement says ``OVERRIDING SYSTEM VALUE`` after its column list; a revert that puts a
deleted row back must give the row its key again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert

CLAUSE = " OVERRIDING SYSTEM VALUE"


class OverridingInsert(Insert):
    """An INSERT whose values replace those an identity column would generate."""

    inherit_cache = True


@compiles(OverridingInsert, "postgresql")
def _overriding(element: OverridingInsert, compiler: SQLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_insert(element, **kw)  # type: ignore[no-untyped-call]
    end = end_of_columns(sql) + 1
    return sql[:end] + CLAUSE + sql[end:]


def end_of_columns(sql: str) -> int:
    """The index of the parenthesis that closes the column list of INSERT ``sql``:
    the first one outside a quoted name (``"a (b)"``; a doubled quote stays inside)
    after the first opening one outside a quoted name."""
    quoted, opened = False, False
    for index, character in enumerate(sql):
        if character == '"':
            quoted = not quoted
        elif not quoted and character == "(":
            opened = True
        elif not quoted and character == ")" and opened:
            return index
    raise ValueError(f"no column list in {sql[:80]!r}")
