"""``setwise.delete``: one set-based DELETE, with guardrails, a journal of whole rows and
session sync."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, Unpack

from sqlalchemy import Delete, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.visitors import iterate

from setwise.api.cascades import refuse_cascades
from setwise.api.update import statement_arguments
from setwise.dialects import Strategy
from setwise.dialects.integrity import delete_refused
from setwise.engine.health import HealthOptions, health_of
from setwise.engine.options import RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, dialect_of, engine_of, reading_connection
from setwise.errors import RunError, SchemaError, UnboundedUpdateError
from setwise.journal.changes import Journal, tagged
from setwise.report import ProgressCallback, Report
from setwise.writers.delete import SetDelete


def delete(
    bind: Bind,
    statement: Delete,
    *,
    all_rows: bool = False,
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
    tag: str | None = None,
    source: str | None = None,
    **health: Unpack[HealthOptions],
) -> Report:
    """Run ``statement`` (an ORM or Core DELETE) as set-based SQL.

    Refuses a DELETE without WHERE unless ``all_rows=True`` (``UnboundedUpdateError``,
    its ``statement`` ``"DELETE"``). ``expect_rows`` is the fewest rows that must match
    (else ``NotFoundError``); ``max_rows`` the most that may be deleted (else
    ``TooManyRowsError``, before anything is deleted). The report's ``matched`` and
    ``changed`` are both the rows deleted. With a Session, loaded objects of deleted
    rows are expunged from it.

    Without ``chunk_rows`` the delete is one transaction; with ``chunk_rows=N`` or
    ``"auto"`` (chunks of about ``chunk_seconds``) it runs in key ranges, each committed
    on its own, resumable with ``resume=run_id``. ``journal`` (on by default) keeps
    every deleted row whole, so that ``setwise.revert(bind, report.run_id)`` inserts
    them again exactly. A row another table still refers to makes the database refuse
    the delete: that is a ``ValidationError`` naming the foreign key and the referring
    table, and nothing of the statement is deleted; in a chunked run, nothing of the
    failed chunk, and its note says which chunk and how to resume or revert the run.
    With a journal, rows that another table's rows refer to through a foreign key with
    ON DELETE CASCADE, SET NULL or SET DEFAULT are refused before anything is written
    (``ValidationError`` naming the key, its table and how many rows): the journal would
    not keep the rows the database deletes or changes for them. Delete those first, or
    pass ``journal=False``.
    ``tag`` and ``source`` are kept with the run, as for ``setwise.update``, and a
    chunked delete waits on the database's health between chunks as an update does
    (``**health``: ``max_lag_seconds``, ``throttle_query``, ... see ``setwise.update``).
    """
    plan = prepare(statement, all_rows=all_rows, journal=journal)
    target = plan.target
    chunked = chunk_rows is not None or resume is not None
    strategy = dialect_of(bind)
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
        arguments=tagged(_arguments(plan, strategy, source), tag) if journal or chunked else {},
        health=health_of(strategy, health, chunked=chunked),
    )
    if options.chunked:
        _check_chunkable(plan)
    if journal:
        with reading_connection(bind) as connection:
            refuse_cascades(connection, strategy, plan)
    try:
        report = run(
            bind,
            target,
            lambda connection, strategy: plan,
            options,
            repeatable=True,
            strategy=strategy,
            journal=Journal(journal_prefix),
        )
    except (DBAPIError, RunError) as exc:
        cause = exc.cause if isinstance(exc, RunError) else exc
        if not (isinstance(cause, DBAPIError) and strategy.is_integrity_error(cause)):
            raise
        # On a connection of its own: the run's transaction may be aborted (PostgreSQL).
        with engine_of(bind).connect() as connection:
            refused = delete_refused(cause, target.table, strategy, connection)
        if isinstance(exc, RunError):
            refused.add_note(str(exc))  # which chunk; the chunks before it stand
        raise refused from exc
    return replace(report, deleted=report.changed)


def prepare(statement: Delete, *, all_rows: bool, journal: bool) -> SetDelete:
    """``statement`` taken apart and checked before anything is sent: refused without
    WHERE unless ``all_rows``, and without a primary key where a journal must find each
    row again."""
    plan = SetDelete.from_statement(statement)
    if plan.where is None and not all_rows:
        raise UnboundedUpdateError(plan.target.name, statement="DELETE")
    if journal and not plan.target.table.primary_key.columns:
        raise SchemaError(
            f"{plan.target.name!r} has no primary key, by which the journal would find each "
            "deleted row again: run it with journal=False (--no-journal), and nothing can "
            "be reverted"
        )
    return plan


def _check_chunkable(plan: SetDelete) -> None:
    """Refuse what chunks could not do exactly as the single statement would."""
    name = plan.target.name
    if not plan.target.key:
        raise SchemaError(f"{name!r} has no primary key to chunk by")
    if plan.where is None:
        return
    for element in iterate(plan.where):
        if getattr(element, "is_selectable", False) and plan.table in _tables_read(element):
            raise SchemaError(
                f"the DELETE reads {name!r} itself through a subquery: each chunk would see "
                "the rows the chunks before it deleted, unlike one statement. Run it "
                "without chunk_rows"
            )


def _tables_read(element: Any) -> set[Any]:
    return {e for e in iterate(element) if isinstance(e, Table)}


def _arguments(plan: SetDelete, strategy: Strategy, source: str | None = None) -> dict[str, Any]:
    """What identifies the run's statement (``update.statement_arguments``)."""
    return statement_arguments(plan.delete(), strategy, source)
