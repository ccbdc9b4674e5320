"""Data migrations in Alembic: chunked, journaled, resumable and revertible runs, each
tagged with the revision that made it.

In a migration (``import setwise.alembic``; ``import setwise`` never imports Alembic)::

    def upgrade():
        setwise.alembic.update(
            sa.update(books).where(books.c.genre == "fiction").values(price=books.c.price * 2),
            key_range=(1, 2_000_000),  # read only by `alembic upgrade --sql`
        )

    def downgrade():
        setwise.alembic.revert_revision()

Online, each call is the ``setwise`` run of the same name, chunked (``chunk_rows="auto"``
unless given) and journaled, with the tag ``alembic:<revision>:<step>`` (``step``: 1 for
the revision's first setwise call, 2 for its second…). ``alembic upgrade`` killed
half-way leaves its run unfinished and the revision not stamped; the next ``alembic
upgrade`` finds the run by its tag and resumes it, and skips the steps that finished.
``revert_revision`` reverts the revision's runs, newest first.

The rule for the migration's own transaction: a chunked run commits chunk by chunk, on
connections of its own, so setwise first commits the transaction the migration runs in
(Alembic's ``autocommit_block``). Anything the migration did before (DDL included) is
then committed while the revision is not yet stamped: had setwise run beside that open
transaction instead, it would wait on its locks (PostgreSQL's ALTER TABLE, SQLite's
one writer) or not see its tables. So keep a data migration in a revision of its own,
after the revision that changes the schema (``transaction_per_migration=True`` in
env.py makes every revision commit on its own anyway). setwise's connections come from
the migration's Engine: a setting made on the migration's connection alone (a ``SET``
in env.py) does not reach them; put it in the URL or a connect event.

Offline (``alembic upgrade --sql``) nothing is run: each call prints the statements a
DBA would run, a ``BEGIN``/``COMMIT`` around each chunk, values written out as literals,
after a comment saying what setwise would have journaled (``setwise.alembic_offline``).
"""

from __future__ import annotations

import json
import logging
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alembic import op
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Update

from setwise.alembic_offline import key_spans, print_apply, print_update
from setwise.api.apply import apply as apply_changes
from setwise.api.revert import revert
from setwise.api.update import _arguments, prepare
from setwise.api.update import update as update_rows
from setwise.engine.transaction import Bind, dialect_of, reading_connection
from setwise.errors import ConflictError, InvalidArgumentError, RunStateError
from setwise.journal.changes import Journal, RunInfo
from setwise.report import Report
from setwise.target import TargetLike, resolve_target

log = logging.getLogger("setwise")

#: How a migration's runs are tagged: ``alembic:<revision>:<step>``; a downgrade's
#: reverts are tagged ``alembic:<revision>:downgrade``.
TAG_PREFIX = "alembic:"
DOWNGRADE_STEP = "downgrade"

#: Setwise calls made so far per revision, per running migration: the step of the next.
_STEPS: weakref.WeakKeyDictionary[MigrationContext, Counter[str]] = weakref.WeakKeyDictionary()


def update(
    statement: Update,
    *,
    revision: str | None = None,
    key_range: tuple[int, int] | None = None,
    chunk_rows: int | Literal["auto"] | None = "auto",
    all_rows: bool = False,
    journal_prefix: str = "setwise_",
    **options: Any,
) -> Report | None:
    """Run ``statement`` as ``setwise.update`` does, as a step of the running migration.

    Returns the run's Report, or None when nothing ran: the step finished in an earlier
    ``alembic upgrade``, or the migration runs offline. ``revision``: the revision the
    run is tagged with, by default the ``revision`` of the migration module calling
    (found on the call stack: Alembic tells an operation nothing of the revision it
    runs for until ``upgrade()`` has returned). ``key_range=(lowest, highest)``: the
    keys offline chunks are cut from, required offline (setwise cannot ask the
    database); the first chunk is open below and the last open above, so a key outside
    the range is still updated. Offline, ``chunk_rows="auto"`` is chunks of
    ``AUTO_START_ROWS`` keys. Every other option is ``setwise.update``'s.
    """
    context = op.get_context()
    tag = _next_tag(context, _revision(revision))
    settings = {"chunk_rows": chunk_rows, "journal_prefix": journal_prefix, **options}
    if context.as_sql:
        print_update(context, statement, tag, key_range, all_rows, settings)
        return None

    def identity(engine: Engine) -> tuple[str, str, dict[str, Any] | None]:
        plan = prepare(statement, all_rows=all_rows, journal=settings.get("journal", True))
        return "update", plan.target.name, {**_arguments(plan, dialect_of(engine)), "tag": tag}

    step = _Step(context, tag, identity, update_rows, (statement,), settings)
    return step.run(all_rows=all_rows)


def apply(
    target: TargetLike,
    changes: Any,
    key: Sequence[str] | str | None = None,
    *,
    revision: str | None = None,
    chunk_rows: int | Literal["auto"] | None = "auto",
    journal_prefix: str = "setwise_",
    csv_null: str | None = "",
    **options: Any,
) -> Report | None:
    """Apply ``changes`` to ``target`` as ``setwise.apply`` does, as a step of the
    running migration; see ``update`` for the Report, ``revision`` and resuming.

    Offline, ``target`` must be an ORM class or a Table (a name is reflected from the
    database), the changes are read and checked as online, and each row becomes an
    UPDATE by key of the columns it sets, ``chunk_rows`` rows (``AUTO_START_ROWS`` for
    "auto") to a transaction; rows that carry versions are refused there (a version
    conflict is reported by a run, not by a script).
    """
    context = op.get_context()
    tag = _next_tag(context, _revision(revision))
    settings = {"chunk_rows": chunk_rows, "journal_prefix": journal_prefix, **options}
    if context.as_sql:
        print_apply(context, target, changes, key, tag, csv_null, settings)
        return None

    def identity(engine: Engine) -> tuple[str, str, dict[str, Any] | None]:
        with reading_connection(engine) as connection:
            name = resolve_target(target, connection).name
        return "apply", name, None

    step = _Step(context, tag, identity, apply_changes, (target, changes, key), settings)
    return step.run(csv_null=csv_null)


def revert_revision(
    revision: str | None = None,
    *,
    force: bool = False,
    chunk_rows: int | Literal["auto"] | None = "auto",
    journal_prefix: str = "setwise_",
    **options: Any,
) -> list[Report]:
    """Revert every run of ``revision`` (by default the calling migration's, as for
    ``update``), newest first, as ``setwise.revert`` does; returns their Reports.

    Rows changed since a run raise ``ConflictError`` and that run is not reverted,
    unless ``force=True``; the runs reverted before it stay reverted, and the next
    downgrade goes on with the rest. Offline nothing can be read from the journal: a
    comment says so and how to revert the runs by hand.
    """
    context = op.get_context()
    revision = _revision(revision)
    prefix = f"{TAG_PREFIX}{revision}:"
    if context.as_sql:
        context.impl.static_output(
            f"-- setwise: the data changes of revision {revision} are NOT reverted by this"
            f" script: the old values are in setwise's journal. Revert each run tagged"
            f" {prefix}<step> (`setwise runs`) with `setwise revert RUN`."
        )
        return []
    engine = _engine(context)
    reports: list[Report] = []
    with context.autocommit_block():
        for info in revision_runs(engine, revision, journal_prefix=journal_prefix):
            if info.reverted_by is not None:
                continue
            log.info("revision %s: reverting run %s (%s)", revision, info.run_id, info.tag)
            try:
                report = revert(
                    engine,
                    info.run_id,
                    force=force,
                    chunk_rows=chunk_rows,
                    journal_prefix=journal_prefix,
                    tag=prefix + DOWNGRADE_STEP,
                    **options,
                )
            except ConflictError as exc:
                done = ", ".join(r.run_id or "" for r in reports) or "none"
                exc.add_note(
                    f"revision {revision}: run {info.run_id} ({info.tag}) not reverted; runs"
                    f" reverted before it: {done}. Downgrade again once the rows are as the"
                    " run left them, or pass force=True to revert_revision"
                )
                raise
            reports.append(report)
    return reports


def revision_runs(bind: Bind, revision: str, *, journal_prefix: str = "setwise_") -> list[RunInfo]:
    """The runs the upgrades of ``revision`` made (not its downgrades' reverts), newest
    first, reverted ones included."""
    prefix = f"{TAG_PREFIX}{revision}:"
    strategy = dialect_of(bind)
    with reading_connection(bind) as connection, strategy.causal_reads(connection):
        found = Journal(journal_prefix).tagged(connection, prefix, prefix=True)
    return [info for info in found if (info.tag or "")[len(prefix) :].isdigit()]


# -- online -------------------------------------------------------------------------


Identity = Callable[[Engine], tuple[str, str, dict[str, Any] | None]]
"""What a step runs: kind, table, and the arguments its run records (None: unchecked)."""


@dataclass(frozen=True)
class _Step:
    """One setwise call of a migration: which run it is, and how to make it."""

    context: MigrationContext
    tag: str
    identity: Identity
    call: Callable[..., Report]
    """``setwise.update`` or ``setwise.apply``, called with the Engine, ``args``,
    ``settings`` and the run's ``resume`` and ``tag``."""
    args: tuple[Any, ...]
    settings: dict[str, Any]

    def run(self, **extra: Any) -> Report | None:
        """Run the step on the migration's Engine, outside the migration's transaction:
        resume its unfinished run, or skip it when its run finished."""
        context, tag = self.context, self.tag
        engine = _engine(context)
        with context.autocommit_block():
            latest = self._latest(engine)
            resume = None
            if latest is not None and latest.reverted_by is None:
                if latest.status == "abandoned":
                    raise RunStateError(
                        f"run {latest.run_id} ({tag}) was abandoned with its {latest.chunks}"
                        " committed chunk(s) in place: revert it (`setwise revert"
                        f" {latest.run_id}`) and upgrade again to run the step anew",
                        run_id=latest.run_id,
                        action="resume",
                        status=latest.status,
                        chunks=latest.chunks,
                    )
                if latest.status == "done":
                    _same_step(latest, tag, *self.identity(engine))
                    log.info(
                        "%s: run %s finished in an earlier upgrade; skipped", tag, latest.run_id
                    )
                    return None
                log.info("%s: resuming run %s after chunk %d", tag, latest.run_id, latest.chunks)
                resume = latest.run_id
            return self.call(engine, *self.args, resume=resume, tag=tag, **self.settings, **extra)

    def _latest(self, engine: Engine) -> RunInfo | None:
        """The newest run of the step (not a revert of it), if any."""
        strategy = dialect_of(engine)
        journal = Journal(self.settings["journal_prefix"])
        with reading_connection(engine) as connection, strategy.causal_reads(connection):
            found = [i for i in journal.tagged(connection, self.tag) if i.kind != "revert"]
        return found[0] if found else None


def _same_step(
    info: RunInfo, tag: str, kind: str, table: str, arguments: dict[str, Any] | None
) -> None:
    """Refuse to skip a step whose finished run did something else: the migration
    changed since (a resume checks the same itself)."""
    # What the run read or was written as (``source``) is a record, not an identity.
    recorded = {k: v for k, v in info.arguments.items() if k not in ("journal", "source")}
    if arguments is not None:
        arguments = {k: v for k, v in arguments.items() if k != "source"}
    same_arguments = arguments is None or recorded == json.loads(json.dumps(arguments, default=str))
    if info.kind != kind or info.table != table or not same_arguments:
        raise RunStateError(
            f"{tag} finished as run {info.run_id}, a {info.kind} of {info.table!r} with"
            f" arguments {info.arguments}, but the migration now makes it a {kind} of"
            f" {table!r}: downgrade the revision (or `setwise revert {info.run_id}`) before"
            " changing what it does",
            run_id=info.run_id,
            action="skip",
            status=info.status,
            chunks=info.chunks,
        )


def _engine(context: MigrationContext) -> Engine:
    """The Engine behind the migration's connection: setwise's runs take connections of
    their own from it, outside the migration's transaction."""
    connection = context.connection
    assert connection is not None  # None only offline (as_sql), which returns before
    return connection.engine


# -- the revision and the step ------------------------------------------------------


def _revision(given: str | None) -> str:
    """``given``, or the ``revision`` of the migration module on the call stack."""
    if given is not None:
        return given
    frame = sys._getframe(1)
    while frame is not None:
        found = frame.f_globals
        if found.get("__name__") != __name__ and "down_revision" in found:
            revision = found.get("revision")
            if isinstance(revision, str):
                return revision
        frame = frame.f_back  # type: ignore[assignment]
    raise InvalidArgumentError(
        "setwise.alembic could not tell which revision is running: call it from a"
        " migration's upgrade() or downgrade(), or pass revision='...'",
        argument="revision",
    )


def _next_tag(context: MigrationContext, revision: str) -> str:
    """The tag of the revision's next setwise call in this migration run: the same
    calls in the same order get the same tags in the next ``alembic upgrade``."""
    steps = _STEPS.setdefault(context, Counter())
    steps[revision] += 1
    return f"{TAG_PREFIX}{revision}:{steps[revision]}"


__all__ = ["apply", "key_spans", "revert_revision", "revision_runs", "update"]
