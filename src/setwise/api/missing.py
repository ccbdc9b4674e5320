"""``missing=`` of ``apply`` and ``plan``: what a changeset's keys with no row do.

The argument is checked here, recorded with the run (a resume must ask the same), and
with "insert" the staged rows to insert are checked before anything is written
(``staging.required``): every problem is one ``ValidationError``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection

from setwise.dialects import Strategy
from setwise.engine.options import MISSING_MODES
from setwise.errors import InvalidArgumentError, SchemaError, SetwiseError
from setwise.staging.required import insert_problems
from setwise.staging.table import Stage


def check_missing(
    missing: Any, where: ColumnElement[bool] | None, *, changeset: bool = True
) -> None:
    """Refuse a ``missing`` that is none of the modes, or "insert" with ``where``; any but
    the default without a ``changeset`` (an UPDATE or DELETE statement)."""
    if not changeset and missing != "report":
        raise InvalidArgumentError("missing= is for changesets", argument="missing")
    if missing not in MISSING_MODES:
        modes = ", ".join(repr(mode) for mode in MISSING_MODES)
        raise InvalidArgumentError(
            f"missing must be one of {modes}, not {missing!r}", argument="missing"
        )
    if missing == "insert" and where is not None:
        raise InvalidArgumentError(
            "missing='insert' with where=: where says which found rows are written, and a "
            "row with a new key is found by none; apply the new rows apart, without where",
            argument="where",
        )


def missing_argument(arguments: dict[str, Any], missing: str) -> dict[str, Any]:
    """A run's recorded ``arguments`` with its ``missing`` mode, unless the default
    (the record of a run that reports missing keys stays as it always was)."""
    return arguments if missing == "report" else {**arguments, "missing": missing}


def checked_inserts(
    connection: Connection,
    strategy: Strategy,
    staged: Stage | None,
    missing: str,
    *,
    journal: bool,
    committed: bool = False,
) -> Stage | None:
    """``staged``, once the rows it would insert (``missing="insert"``) are checked:
    a ValidationError names each row and column an insert lacks (``staging.required``),
    a SchemaError says when the journal could not name them; either takes the staging
    table away when it was ``committed``."""
    if staged is None or missing != "insert":
        return staged
    target = staged.target
    given = {c.name for c in (*target.key, *staged.columns)}
    unnamed = [c.name for c in target.identity if c.name not in given]
    error: SetwiseError | None = None
    if journal and unnamed:
        # The journal keeps a row by its primary key, written before the row is.
        error = SchemaError(
            f"missing='insert' journals each inserted row by the primary key of "
            f"{target.name!r} ({', '.join(unnamed)}), which the changes do not give: give "
            "its values, or go without a journal (no revert)",
            argument=("journal", False),
        )
    else:
        problems = insert_problems(connection, staged)
        error = problems.error(target.name) if problems else None
    if error is None:
        return staged
    if committed:
        connection.rollback()
        staged.drop(connection, strategy)
        connection.commit()
    raise error
