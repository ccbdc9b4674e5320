"""``alembic upgrade --sql``: the statements a setwise call would run, printed for a
DBA, a ``BEGIN``/``COMMIT`` around each chunk and every value written out as a literal,
after a comment saying what setwise would have journaled. Used by ``setwise.alembic``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from alembic.runtime.migration import MigrationContext
from sqlalchemy import ColumnElement, Dialect, Update, literal, literal_column, or_, types
from sqlalchemy import update as sql_update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from setwise.api.stamps import stamp_values
from setwise.api.update import prepare
from setwise.dialects import get_strategy
from setwise.engine.sizing import AUTO_START_ROWS
from setwise.errors import InvalidArgumentError, SchemaError
from setwise.staging.intake import checked_rows
from setwise.target import Target, TargetLike, resolve_target
from setwise.writers.keys import EVERYTHING, Span


def key_spans(low: int, high: int, size: int) -> list[Span]:
    """Chunks of ``size`` keys between ``low`` and ``high``, in order: the first open
    below and the last open above, so every key falls in one whatever the range given."""
    if size < 1:
        raise InvalidArgumentError(
            f"chunk_rows must be a positive number or 'auto', not {size!r}",
            argument="chunk_rows",
            value=size,
        )
    if high < low:
        raise InvalidArgumentError(
            f"key_range=({low}, {high}): the lowest key comes first",
            argument="key_range",
            value=(low, high),
        )
    uppers: list[tuple[Any, ...] | None] = [(u,) for u in range(low - 1 + size, high, size)]
    lowers = [None, *uppers]
    return [Span(lower, upper) for lower, upper in zip(lowers, [*uppers, None], strict=True)]


def offline_size(chunk_rows: int | Literal["auto"] | None) -> int | None:
    """Rows (keys) per offline chunk: None for one transaction; "auto" has no chunk
    times to adapt to, so it keeps the size an automatic run starts at."""
    if chunk_rows == "auto":
        return AUTO_START_ROWS
    return chunk_rows


def print_update(
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
    size = offline_size(options["chunk_rows"])
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
            raise InvalidArgumentError(
                f"{tag} runs offline (alembic --sql), where setwise cannot ask the database"
                f" for the keys of {target.name!r}: pass key_range=(lowest, highest) of"
                f" {key[0].name} to setwise.alembic.update, to cut chunks of {size} keys from",
                argument="key_range",
            )
        spans = key_spans(*key_range, size)
        ranged = f" by {key[0].name} from {key_range[0]} to {key_range[1]}"
    stamps = stamps_of(target, options)
    statements = [[plan.direct_update(span, stamps)] for span in spans]
    print_chunks(
        context,
        tag,
        target,
        [c.name for c in plan.written_columns()],
        f"update of {target.name!r} in {len(spans)} chunk(s) of {size or 'all'} key(s){ranged}",
        options["journal_prefix"],
        statements,
    )


def print_apply(
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
    if options.get("missing", "report") != "report":
        raise SchemaError(
            f"offline, missing={options['missing']!r} is not written for {target.name!r}: a"
            " script of UPDATEs by key cannot tell which keys have no row; run the"
            " migration online"
        )
    checked = checked_rows(target, changes, csv_null=csv_null)
    if checked.expects_version:
        raise SchemaError(
            f"offline, the rows of {target.name!r} cannot carry versions: a script cannot"
            " report the rows whose version moved; run the migration online"
        )
    compare = get_strategy(context.dialect).offline_comparison(target.table)
    stamps = stamps_of(target, options)
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
    size = offline_size(options["chunk_rows"]) or max(len(statements), 1)
    columns = [c.name for c in checked.columns]
    if version is not None and isinstance(version.type, types.Integer):
        columns.append(version.name)
    print_chunks(
        context,
        tag,
        target,
        columns,
        f"apply of {len(statements)} row(s) to {target.name!r}, {size} to a transaction",
        options["journal_prefix"],
        [statements[i : i + size] for i in range(0, len(statements), size)],
    )


def stamps_of(target: Target, options: dict[str, Any]) -> dict[Any, Any]:
    return stamp_values(
        target, options.get("stamp_column"), options.get("actor_column"), options.get("actor")
    )


def print_chunks(
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
