"""``setwise.update``: one set-based UPDATE, with guardrails, a journal and session sync."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal, Unpack

from sqlalchemy import Column, Table, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.visitors import iterate

from setwise.api.stamps import stamp_values
from setwise.dialects import Strategy
from setwise.dialects.integrity import integrity_to_validation
from setwise.engine.health import HealthOptions, health_of
from setwise.engine.options import RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, dialect_of
from setwise.engine.verify import refuse_unjournaled, verified
from setwise.errors import SchemaError, UnboundedUpdateError, ValidationError
from setwise.journal.changes import Journal, tagged
from setwise.report import ProgressCallback, Report
from setwise.staging.validation import ANYWHERE, Storable, check_assignments
from setwise.target import Target
from setwise.writers.setbased import SetUpdate

ColumnRef = str | Column[Any] | Any

#: Characters of an update's SQL and text its run record keeps for ``setwise show``: a
#: statement of a thousand ORed terms is 70 KB, and MariaDB's TEXT column for the
#: record's arguments holds 64 KB in all.
SOURCE_CHARS = 4_000

#: Characters of the parameters' JSON a record keeps whole (an IN list of 12,000 ids
#: is 100 KB); longer, they are kept as ``_identifying`` keeps a statement.
PARAMS_CHARS = 16_000


def update(
    bind: Bind,
    statement: Update,
    *,
    all_rows: bool = False,
    returning: Sequence[ColumnRef] = (),
    expect_rows: int | None = None,
    max_rows: int | None = None,
    chunk_rows: int | Literal["auto"] | None = None,
    chunk_seconds: float = 0.5,
    throttle_seconds: float = 0.0,
    journal: bool = True,
    journal_prefix: str = "setwise_",
    retries: int = 5,
    progress: ProgressCallback | None = None,
    resume: str | None = None,
    actor: str | None = None,
    stamp_column: str | None = None,
    actor_column: str | None = None,
    tag: str | None = None,
    verify: bool = False,
    source: str | None = None,
    **health: Unpack[HealthOptions],
) -> Report:
    """Run ``statement`` (an ORM or Core UPDATE) as set-based SQL.

    Refuses an UPDATE without WHERE unless ``all_rows=True``. Literal values are
    checked against their columns first; every problem is raised together in a
    ``ValidationError``. Rows that already hold the new values are not written.
    ``expect_rows`` is the fewest rows that must match (else ``NotFoundError``);
    ``max_rows`` the most that may change (else ``TooManyRowsError``, before any write).
    ``returning`` names columns to hand back for every matched row in ``Report.rows``.
    With a Session, loaded objects of changed rows get the new values.

    Without ``chunk_rows`` the update is one transaction (see ``setwise.engine.transaction``
    for who commits). With ``chunk_rows=N`` or ``"auto"`` (chunks of about
    ``chunk_seconds``), it runs in key ranges, each committed on its own, resumable
    with ``resume=run_id``. ``journal`` (on by default) keeps the old values so that
    ``setwise.revert(bind, report.run_id)`` can undo the run. ``stamp_column`` is set
    to the run's start time and ``actor_column`` to ``actor`` on every row written.
    ``tag`` is kept with the run (``RunInfo.tag``): what it was for, a ticket or an
    Alembic revision (``setwise.alembic``); a resume must give the same tag.
    ``source``: what the statement was written as (the command line passes its
    ``--set``/``--where`` text), kept with the run beside its SQL (``RunInfo.source``).
    ``verify``: after the run, read the rows it wrote again and compare them with what
    it wrote (``Report.verified``; ``VerificationError`` when one differs or is gone;
    needs the journal). A running chunked run can be paused, stopped or tuned from
    another process: ``setwise.pause``, ``setwise.stop``, ``setwise.tune``.
    ``**health``: the health signals a chunked run reads between chunks, waiting while
    one says the database is busy (``max_lag_seconds``, ``replica_urls``,
    ``max_active_sessions``, ``max_flow_control``, ``wait_for_autovacuum``,
    ``throttle_query``, ``throttle_file``, ``throttle_check``, ``max_wait``,
    ``check_interval``: see ``setwise.engine.health``).
    """
    refuse_unjournaled(verify, journal)
    strategy = dialect_of(bind)
    plan = prepare(statement, all_rows=all_rows, journal=journal, storable=Storable.on(strategy))
    target = plan.target
    returned = [_returning_column(target, ref) for ref in returning]
    chunked = chunk_rows is not None or resume is not None
    options = RunOptions(
        chunk_rows=chunk_rows,
        chunk_seconds=chunk_seconds,
        throttle_seconds=throttle_seconds,
        journal=journal,
        journal_prefix=journal_prefix,
        retries=retries,
        progress=progress,
        resume=resume,
        actor=actor,
        expect_rows=expect_rows,
        max_rows=max_rows,
        stamps=stamp_values(target, stamp_column, actor_column, actor),
        # What a run's record keeps: no compiling for a run that keeps none.
        arguments=tagged(_arguments(plan, strategy, source), tag) if journal or chunked else {},
        health=health_of(strategy, health, chunked=chunked),
    )
    if options.chunked:
        _check_chunkable(plan, returned)
    try:
        report = run(
            bind,
            target,
            lambda connection, strategy: plan.with_comparison(
                strategy.stored_comparison(connection, plan.table)
            ),
            options,
            returning=returned,
            repeatable=True,
            strategy=strategy,
            journal=Journal(journal_prefix),
        )
    except DBAPIError as exc:
        if not strategy.is_integrity_error(exc):
            raise
        literals = {
            column.name: value.value
            for column, value in plan.assignments.items()
            if isinstance(value, BindParameter)
        }
        raise integrity_to_validation(exc, target.table, strategy, literals) from exc
    return verified(bind, report, journal_prefix=journal_prefix) if verify else report


def prepare(
    statement: Update, *, all_rows: bool, journal: bool, storable: Storable = ANYWHERE
) -> SetUpdate:
    """``statement`` taken apart and checked before anything is sent: refused without
    WHERE unless ``all_rows``, or when it changes a row's key and ``journal`` would
    record it, and every literal value checked against its column (and against what
    the database stores, ``storable``)."""
    plan = SetUpdate.from_statement(statement)
    if plan.where is None and not all_rows:
        raise UnboundedUpdateError(plan.target.name)
    moved = _moved(plan, plan.target.identity)
    if journal and moved:
        raise SchemaError(
            f"the UPDATE changes the key column(s) {moved} of {plan.target.name!r}, by "
            "which the journal finds each row again to revert it: run it with "
            "journal=False (--no-journal), and nothing can be reverted"
        )
    problems = check_assignments(plan.assignments, storable)
    if problems:
        raise ValidationError(plan.target.name, problems)
    return plan


def _check_chunkable(plan: SetUpdate, returning: Sequence[Column[Any]]) -> None:
    """Refuse what chunks could not do exactly as the single statement would."""
    name = plan.target.name
    if returning:
        raise SchemaError(
            f"returning rows needs a single-transaction run; drop chunk_rows ({name})"
        )
    if not plan.target.key:
        raise SchemaError(f"{name!r} has no primary key to chunk by")
    moved = _moved(plan, plan.target.key)
    if moved:
        raise SchemaError(
            f"the UPDATE changes the key column(s) {moved} of {name!r}, which chunks are "
            "ranged over; run it without chunk_rows"
        )
    expressions = [*plan.assignments.values(), *([plan.where] if plan.where is not None else [])]
    for expression in expressions:
        for element in iterate(expression):
            if getattr(element, "is_selectable", False) and plan.table in _tables_read(element):
                raise SchemaError(
                    f"the UPDATE reads {name!r} itself through a subquery: each chunk would "
                    "see the changes of the chunks before it, unlike one statement. Run it "
                    "without chunk_rows"
                )


def _moved(plan: SetUpdate, key: Sequence[Column[Any]]) -> list[str]:
    """The columns of ``key`` the UPDATE assigns."""
    names = {column.name for column in key}
    return [column.name for column in plan.assignments if column.name in names]


def _tables_read(element: Any) -> set[Any]:
    return {e for e in iterate(element) if isinstance(e, Table)}


def _arguments(plan: SetUpdate, strategy: Strategy, source: str | None = None) -> dict[str, Any]:
    """What identifies the run's statement (see ``statement_arguments``)."""
    return statement_arguments(plan.update(), strategy, source)


def statement_arguments(
    statement: ClauseElement, strategy: Strategy, source: str | None = None
) -> dict[str, Any]:
    """What identifies a run's ``statement``, so that a resume can check it is the
    same, and what it was written as (``RunInfo.source``: the SQL with its
    placeholders' names, the values apart in ``params``)."""
    compiled = statement.compile(dialect=strategy.dialect)
    params = {name: _identifying(repr(value)) for name, value in sorted(compiled.params.items())}
    listed = json.dumps(params)
    # The SQL kept as written: placeholders by name (``:price_1``), whatever style the
    # driver takes (``?``, ``%s``), the values apart.
    named_style: Any = type(strategy.dialect)
    named = str(statement.compile(dialect=named_style(paramstyle="named")))
    written = {"sql": _kept(named)} | ({"text": _kept(source)} if source is not None else {})
    return {
        "sql": _identifying(str(compiled)),
        "params": params if len(listed) <= PARAMS_CHARS else _identifying(listed),
        "source": written,
    }


def _identifying(text: str) -> str:
    """``text`` as a run's record keeps it to tell statements apart: whole up to
    ``SOURCE_CHARS``, else its start, its length and its SHA-256, so that two
    statements that differ anywhere still differ."""
    if len(text) <= SOURCE_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:SOURCE_CHARS]} ... ({len(text):,} characters in all, sha256 {digest})"


def _kept(text: str) -> str:
    """``text`` as the run's record keeps it: whole up to ``SOURCE_CHARS``, else its
    start and its length (the record is for a person; a resume never compares it)."""
    if len(text) <= SOURCE_CHARS:
        return text
    return f"{text[:SOURCE_CHARS]} ... ({len(text):,} characters in all)"


def _returning_column(target: Target, ref: ColumnRef) -> Column[Any]:
    """A column to return, given by name, Column or ORM attribute."""
    if isinstance(ref, str):
        return target.column(ref)
    name = getattr(ref, "name", None) or getattr(ref, "key", None)
    return target.column(str(name))
