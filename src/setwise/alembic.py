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
after a comment saying what setwise would have journaled.
"""

from __future__ import annotations

import json
import logging
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from alembic import op
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ColumnElement, Dialect, Engine, Update, literal, literal_column, or_, types
from sqlalchemy import update as sql_update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from setwise.api.apply import apply as apply_changes
from setwise.api.apply import checked_rows
from setwise.api.revert import revert
from setwise.api.update import _arguments, prepare
from setwise.api.update import update as update_rows
from setwise.dialects import get_strategy
from setwise.engine.sizing import AUTO_START_ROWS
from setwise.engine.transaction import Bind, dialect_of, reading_connection
from setwise.errors import ConflictError, SchemaError, SetwiseError
from setwise.journal.changes import Journal, RunInfo
from setwise.report import Report
from setwise.target import Target, TargetLike, resolve_target
from setwise.writers.setbased import EVERYTHING, Span
from setwise.writers.stamps import stamp_values

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
        _print_update(context, statement, tag, key_range, all_rows, settings)
        return None

    def identity(engine: Engine) -> tuple[str, str, dict[str, Any] | None]:
        plan = prepare(statement, all_rows=all_rows, journal=settings.get("journal", True))
        return "update", plan.target.name, {**_arguments(plan, engine), "tag": tag}

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
        _print_apply(context, target, changes, key, tag, csv_null, settings)
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
                    raise SetwiseError(
                        f"run {latest.run_id} ({tag}) was abandoned with its {latest.chunks}"
                        " committed chunk(s) in place: revert it (`setwise revert"
                        f" {latest.run_id}`) and upgrade again to run the step anew"
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
    recorded = {k: v for k, v in info.arguments.items() if k != "journal"}
    same_arguments = arguments is None or recorded == json.loads(json.dumps(arguments, default=str))
    if info.kind != kind or info.table != table or not same_arguments:
        raise SetwiseError(
            f"{tag} finished as run {info.run_id}, a {info.kind} of {info.table!r} with"
            f" arguments {info.arguments}, but the migration now makes it a {kind} of"
            f" {table!r}: downgrade the revision (or `setwise revert {info.run_id}`) before"
            " changing what it does"
        )


def _engine(context: MigrationContext) -> Engine:
    """The Engine behind the migration's connection: setwise's runs take connections of
    their own from it, outside the migration's transaction."""
    connection = context.connection
    if connection is None:  # pragma: no cover - only offline, handled before
        raise SetwiseError("setwise.alembic needs the migration's connection")
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
    raise SetwiseError(
        "setwise.alembic could not tell which revision is running: call it from a"
        " migration's upgrade() or downgrade(), or pass revision='...'"
    )


def _next_tag(context: MigrationContext, revision: str) -> str:
    """The tag of the revision's next setwise call in this migration run: the same
    calls in the same order get the same tags in the next ``alembic upgrade``."""
    steps = _STEPS.setdefault(context, Counter())
    steps[revision] += 1
    return f"{TAG_PREFIX}{revision}:{steps[revision]}"


# -- offline --------------------------------------------------------------------------


def key_spans(low: int, high: int, size: int) -> list[Span]:
    """Chunks of ``size`` keys between ``low`` and ``high``, in order: the first open
    below and the last open above, so every key falls in one whatever the range given."""
    if size < 1:
        raise SetwiseError(f"chunk_rows must be a positive number or 'auto', not {size!r}")
    if high < low:
        raise SetwiseError(f"key_range=({low}, {high}): the lowest key comes first")
    uppers: list[tuple[Any, ...] | None] = [(u,) for u in range(low - 1 + size, high, size)]
    lowers = [None, *uppers]
    return [Span(lower, upper) for lower, upper in zip(lowers, [*uppers, None], strict=True)]


def _offline_size(chunk_rows: int | Literal["auto"] | None) -> int | None:
    """Rows (keys) per offline chunk: None for one transaction; "auto" has no chunk
    times to adapt to, so it keeps the size an automatic run starts at."""
    if chunk_rows == "auto":
        return AUTO_START_ROWS
    return chunk_rows


def _print_update(
    context: MigrationContext,
    statement: Update,
    tag: str,
    key_range: tuple[int, int] | None,
    all_rows: bool,
    options: dict[str, Any],
) -> None:
    plan = prepare(statement, all_rows=all_rows, journal=options.get("journal", True))
    target = plan.target
    plan = plan.with_comparison(get_strategy(context.dialect).offline_comparison(plan.table))
    size = _offline_size(options["chunk_rows"])
    spans = [EVERYTHING]
    ranged = ""
    if size is not None:
        key = target.key
        if len(key) != 1 or not isinstance(key[0].type, types.Integer):
            raise SchemaError(
                f"offline, chunks are ranges of an integer key, and {target.name!r} is keyed"
                f" by {[c.name for c in key]}: pass chunk_rows=None for one transaction"
            )
        if key_range is None:
            raise SetwiseError(
                f"{tag} runs offline (alembic --sql), where setwise cannot ask the database"
                f" for the keys of {target.name!r}: pass key_range=(lowest, highest) of"
                f" {key[0].name} to setwise.alembic.update, to cut chunks of {size} keys from"
            )
        spans = key_spans(*key_range, size)
        ranged = f" by {key[0].name} from {key_range[0]} to {key_range[1]}"
    stamps = _stamps(target, options)
    statements = [[plan.direct_update(span, stamps)] for span in spans]
    _print(
        context,
        tag,
        target,
        [c.name for c in plan.written_columns()],
        f"update of {target.name!r} in {len(spans)} chunk(s) of {size or 'all'} key(s){ranged}",
        options["journal_prefix"],
        statements,
    )


def _print_apply(
    context: MigrationContext,
    target_like: TargetLike,
    changes: Any,
    key: Sequence[str] | str | None,
    tag: str,
    csv_null: str | None,
    options: dict[str, Any],
) -> None:
    key_names = (key,) if isinstance(key, str) else key
    target = resolve_target(
        target_like, key=key_names, version_column=options.get("version_column")
    )
    checked = checked_rows(target, changes, csv_null=csv_null)
    if checked.expects_version:
        raise SchemaError(
            f"offline, the rows of {target.name!r} cannot carry versions: a script cannot"
            " report the rows whose version moved; run the migration online"
        )
    compare = get_strategy(context.dialect).offline_comparison(target.table)
    stamps = _stamps(target, options)
    version = target.version
    width = len(target.key)
    statements: list[Update] = []
    for mask, *values in checked.rows:
        keys, news = values[:width], values[width:]
        set_here = [(i, c) for i, c in enumerate(checked.columns) if mask >> i & 1]
        if not set_here:  # a key alone: matched, nothing to write
            continue
        new: dict[Any, ColumnElement[Any]] = {
            c: compare.assigned(c, literal(news[i], c.type)) for i, c in set_here
        }
        if version is not None and isinstance(version.type, types.Integer):
            new[version] = version + 1
        differs = [compare.differs(c, literal(news[i], c.type)) for i, c in set_here]
        statements.append(
            sql_update(target.table)
            .where(*(c == literal(v, c.type) for c, v in zip(target.key, keys, strict=True)))
            .where(or_(*differs))
            .values({**new, **stamps})
        )
    size = _offline_size(options["chunk_rows"]) or max(len(statements), 1)
    columns = [c.name for c in checked.columns]
    if version is not None and isinstance(version.type, types.Integer):
        columns.append(version.name)
    _print(
        context,
        tag,
        target,
        columns,
        f"apply of {len(statements)} row(s) to {target.name!r}, {size} to a transaction",
        options["journal_prefix"],
        [statements[i : i + size] for i in range(0, len(statements), size)],
    )


def _stamps(target: Target, options: dict[str, Any]) -> dict[Any, Any]:
    return stamp_values(
        target, options.get("stamp_column"), options.get("actor_column"), options.get("actor")
    )


def _print(
    context: MigrationContext,
    tag: str,
    target: Target,
    columns: list[str],
    what: str,
    journal_prefix: str,
    chunks: Sequence[Sequence[Update]],
) -> None:
    """Print the chunks, each in a transaction of its own, after a comment on what
    setwise would have done online."""
    impl = context.impl
    journal = f"{journal_prefix}journal_{target.table.name}"
    impl.static_output(
        f"-- setwise {tag}: {what}.\n"
        f"-- Online, setwise would copy each chunk's old and new {', '.join(columns)} into"
        f" {journal} and record the run in {journal_prefix}runs (tag {tag}), so that a"
        " downgrade reverts it. This script keeps no journal: back up what it changes."
    )
    with context.autocommit_block():  # ends the migration's transaction, as online
        for chunk in chunks:
            impl.emit_begin()
            for statement in chunk:
                sql = written_out(statement, context.dialect)
                impl.static_output(sql + impl.command_terminator)
            impl.emit_commit()


def written_out(statement: Update, dialect: Dialect) -> str:
    """``statement`` as SQL text with every value written out as a literal, the way
    ``dialect`` writes literals of the value's type, for a person to run.

    Each bound value is turned into literal text first: compiling with
    ``literal_binds`` alone leaves placeholders where a dialect's compiler does not pass
    it on (SQLAlchemy's SQLite ``IS NOT`` and MySQL ``<=>``). And it is compiled for
    named parameters: a dialect whose driver takes ``%s`` doubles every ``%`` of a
    literal, which a script run by hand would store twice."""
    dialect = cast(Any, type(dialect))(paramstyle="named")
    compiler = statement.compile(dialect=dialect)

    def literal_text(element: Any, **_: Any) -> Any:
        if isinstance(element, BindParameter):
            value = compiler.render_literal_value(element.effective_value, element.type)
            return literal_column(value, element.type)
        return None

    rewritten = replacement_traverse(statement, {}, literal_text)
    assert isinstance(rewritten, Update)
    return str(rewritten.compile(dialect=dialect)).strip()


__all__ = ["apply", "key_spans", "revert_revision", "revision_runs", "update"]
