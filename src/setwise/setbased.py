"""``setwise.update``: one set-based UPDATE, with guardrails and session sync."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter

from setwise.constraints import integrity_to_validation
from setwise.errors import NotFoundError, UnboundedUpdateError, ValidationError
from setwise.executor import run_set_update
from setwise.orm import loaded_objects, synchronize
from setwise.plan import SetUpdate
from setwise.report import Report
from setwise.target import Target
from setwise.transaction import Bind, atomic, dialect_of
from setwise.validation import check_assignments

ColumnRef = str | Column[Any] | Any


def update(
    bind: Bind,
    statement: Update,
    *,
    all_rows: bool = False,
    returning: Sequence[ColumnRef] = (),
    expect_rows: int | None = None,
    max_rows: int | None = None,
) -> Report:
    """Run ``statement`` (an ORM or Core UPDATE) as one set-based statement.

    Refuses an UPDATE without WHERE unless ``all_rows=True``. Literal values are
    checked against their columns first; every problem is raised together in a
    ``ValidationError``. Rows that already hold the new values are not written.
    ``expect_rows`` is the fewest rows that must match (else ``NotFoundError``);
    ``max_rows`` the most that may change (else ``TooManyRowsError``, before any write).
    ``returning`` names columns to hand back for every matched row in ``Report.rows``.
    With a Session, loaded objects of changed rows get the new values. See
    ``setwise.transaction`` for who commits.
    """
    started = time.perf_counter()
    plan = SetUpdate.from_statement(statement)
    target = plan.target
    if plan.where is None and not all_rows:
        raise UnboundedUpdateError(target.name)
    problems = check_assignments(plan.assignments)
    if problems:
        raise ValidationError(target.name, problems)
    returned = [_returning_column(target, ref) for ref in returning]

    try:
        with atomic(bind) as scope:
            loaded = loaded_objects(scope.session, target) if scope.session is not None else {}
            outcome = run_set_update(
                scope.connection,
                scope.strategy,
                plan,
                returning=returned,
                want_written=bool(loaded),
                max_rows=max_rows,
            )
            if expect_rows is not None and outcome.matched < expect_rows:
                raise NotFoundError(target.name, expected=expect_rows, matched=outcome.matched)
            synchronize(loaded, target, outcome.written)
    except DBAPIError as exc:
        strategy = dialect_of(bind)
        if not strategy.is_integrity_error(exc):
            raise
        literals = {
            column.name: value.value
            for column, value in plan.assignments.items()
            if isinstance(value, BindParameter)
        }
        raise integrity_to_validation(exc, target.table, strategy, literals) from exc

    return Report(
        table=target.name,
        strategy=outcome.strategy,
        matched=outcome.matched,
        changed=outcome.changed,
        unchanged=outcome.unchanged,
        elapsed_s=time.perf_counter() - started,
        rows=tuple(outcome.rows),
    )


def _returning_column(target: Target, ref: ColumnRef) -> Column[Any]:
    """A column to return, given by name, Column or ORM attribute."""
    if isinstance(ref, str):
        return target.column(ref)
    name = getattr(ref, "name", None) or getattr(ref, "key", None)
    return target.column(str(name))
