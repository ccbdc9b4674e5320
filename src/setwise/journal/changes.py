"""The journal: the old and new values of every row a run changed, beside its run records.

``Journal`` is the run records (``setwise.journal.records``: ``{prefix}runs`` and
``{prefix}chunks``, and every rule of a run's status) plus, per journaled table:

- ``{prefix}journal_{table}``: per changed row, the run, the chunk, the key, and the
  old and new value of every column the run wrote, typed like the target's columns
  so that every value comes back exactly. Where the strategy ``packs_journal``
  (PostgreSQL), the same values as arrays, a row per part of a chunk
  (``journal.layout``); ``Journal.changes`` reads either layout one row per change,
  and ``setwise.init`` packs a journal an earlier setwise kept a row per change.
- in each journal row, ``op``: what the run did to the row (``setwise.operations``:
  updated, deleted with every old value kept, or inserted with its new values). A
  journal table an earlier setwise made without it reads as every row updated, and
  gets the column (with that default) the next time a run or ``setwise.init`` opens it.

A chunk's journal rows, its ``chunks`` row and the run's checkpoint are written in the
same transaction as the chunk's change, so the data and the journal never disagree.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    FromClause,
    Table,
    inspect,
)
from sqlalchemy.exc import DBAPIError

from setwise.dialects import Strategy
from setwise.errors import JournalTableError, SchemaError
from setwise.journal.layout import (
    JournalLayout,
    add_marker,
    layout_for,
    layout_named,
    layout_of,
)
from setwise.journal.records import RunRecords, default_actor, new_run_id
from setwise.journal.runinfo import ChunkInfo, RunInfo
from setwise.journal.runtables import DEFAULT_PREFIX
from setwise.operations import OP
from setwise.tables import column_names, column_shape, shared_table, staging_type
from setwise.target import Target

log = logging.getLogger("setwise")


class Journal(RunRecords):
    """The journal tables of one database, under one prefix."""

    # -- tables ---------------------------------------------------------------

    def changes_table(self, target: Target, strategy: Strategy) -> Table:
        """The journal table for ``target``: run, chunk, key, and old/new of every column;
        as arrays, a part of a chunk per row, where ``strategy`` packs journals."""
        name = strategy.identifier(f"{self.prefix}journal_{target.table.name}")
        key_names = {column.name for column in target.identity}
        values = [column for column in target.table.columns if column.name not in key_names]
        layout = layout_for(strategy, target.table.columns)
        options = strategy.journal_options(target.table)
        shape = (
            "journal",
            name,
            target.table.schema,
            layout.description,
            tuple(sorted(options.items())),
            len(target.identity),  # the key's columns come first, the values' after them
            column_shape([*target.identity, *values]),
        )
        return shared_table(
            shape, lambda: self._build_changes(name, target, values, strategy, layout, options)
        )

    def refuse_own(self, target: Target) -> None:
        """Refuse a run whose target is one of setwise's own tables under this prefix
        (run records and controls, journals, kept staging tables): writing one by hand
        would make the journal lie about what runs did."""
        name = target.table.name
        own = name in (self.runs.name, self.chunks.name, self.control.name) or name.startswith(
            (f"{self.prefix}journal_", f"{self.prefix}stage_")
        )
        if own:
            raise SchemaError(
                f"{name!r} is one of setwise's own tables (run records, a journal or a "
                "staging table): setwise does not change it as a target",
                name=name,
            )

    def _build_changes(
        self,
        name: str,
        target: Target,
        values: Sequence[Column[Any]],
        strategy: Strategy,
        layout: JournalLayout,
        options: dict[str, Any],
    ) -> Table:
        shape = JournalShape(
            layout,
            key={c.name: key_column(c.name, strategy) for c in target.identity},
            old={c.name: old_column(c.name, strategy) for c in values},
            new={c.name: new_column(c.name, strategy) for c in values},
        )
        columns = [(shape.key[c.name], staging_type(c.type)) for c in target.identity]
        for column in values:
            columns.append((shape.old[column.name], staging_type(column.type)))
            columns.append((shape.new[column.name], staging_type(column.type)))
        keys = len(target.identity)
        table = layout.table(name, target.table.schema, columns, keys, options)
        # What tells the journal from a user's table of the same name (``_refuse_foreign``),
        # where the database keeps table comments.
        table.comment = f"{JOURNAL_MARK} of {target.table.name}"
        table.info[JournalShape] = shape
        return table

    @staticmethod
    def changes(table: Table) -> FromClause:
        """The journal table ``table`` one row per changed row, whatever its layout:
        ``run_id``, ``chunk``, then ``k_``, ``o_`` and ``n_`` columns, and ``op``
        (``setwise.operations``: ``u``pdated, ``d``eleted or ``i``nserted)."""
        return layout_of(table).changes(table)

    def stage_name(self, run_id: str, strategy: Strategy) -> str:
        """The name of the staging table a chunked changeset run keeps until it finishes."""
        # Room for the "_key" of its index (``merge.Merge.index_stage``).
        return strategy.identifier(f"{self.prefix}stage_{run_id.replace('-', '_')}", room=4)

    def ensure(
        self,
        bind: Engine | Connection,
        strategy: Strategy,
        target: Target,
        *,
        convert: bool = False,
        changes: Table | None = None,
    ) -> bool:
        """Create the journal tables that do not exist yet, and return the target's.

        Where DDL would end the caller's transaction (MySQL commits implicitly), the
        tables are created on a connection of their own; SQLite creates them inside
        the current transaction, which a second connection could not write beside.
        ``convert``: a journal table an earlier setwise kept one row per changed row is
        packed where the strategy packs (else it is refused). Returns True when it
        created a table. ``changes``: the target's journal table, when the caller has it.
        """
        if changes is None:
            changes = self.changes_table(target, strategy)
        tables = [self.runs, self.chunks, self.control, changes]

        def create(connection: Connection) -> bool:
            return self._create(
                connection, tables, changes, strategy, convert=convert, journals=target.name
            )

        if isinstance(bind, Connection) and strategy.journal_ddl_apart:
            bind = bind.engine
        if not isinstance(bind, Engine):
            # In the caller's transaction: a rollback may take the tables away again.
            return create(bind)
        known = {t.fullname for t in tables}
        if known <= _EXISTING.get(bind, set()) and not convert:
            return False
        try:
            with bind.begin() as connection:
                created = create(connection)
        except DBAPIError:
            # Another run (another process, another node of a cluster) created a table
            # between the check and the CREATE: look again. A real failure fails again.
            with bind.begin() as connection:
                created = create(connection)
        _EXISTING.setdefault(bind, set()).update(known)
        return created

    def _create(
        self,
        connection: Connection,
        tables: Sequence[Table],
        changes: Table | None = None,
        strategy: Strategy | None = None,
        *,
        convert: bool = False,
        journals: str = "TABLE",
    ) -> bool:
        inspector = inspect(connection)
        missing = [t for t in tables if not inspector.has_table(t.name, schema=t.schema)]
        for table in missing:
            table.create(connection, checkfirst=True)
        if changes is not None and changes not in missing:
            found = set(column_names(connection, changes.name, changes.schema))
            _refuse_foreign(inspector, changes, found)
            kept, layout = layout_named(found), JournalShape.of(changes).layout
            if kept is not layout:
                if not (convert and strategy is not None and layout.converts):
                    raise _layout_refused(changes, kept, layout, journals)
                layout.convert(connection, changes, strategy)
            elif OP not in found:
                add_marker(connection, changes)
        elif changes is not None and strategy is not None:
            strategy.journal_created(connection, changes)
        return bool(missing)


@dataclass(frozen=True)
class JournalShape:
    """A journal table as ``Journal.changes_table`` built it: its layout, and its column
    of each key column (``key``), and of the old and new values of each other column."""

    layout: JournalLayout
    key: dict[str, str]
    old: dict[str, str]
    new: dict[str, str]

    @staticmethod
    def of(table: Table) -> JournalShape:
        """The shape of a journal table ``Journal.changes_table`` built."""
        shape = table.info[JournalShape]
        assert isinstance(shape, JournalShape)
        return shape

    def names(self, key: Iterable[Column[Any]], written: Iterable[Column[Any]]) -> list[str]:
        """The journal's columns of a run writing ``written``, in a journal row's order:
        the ``key``'s, then old and new of each column written."""
        names = [self.key[c.name] for c in key]
        return names + [n for c in written for n in (self.old[c.name], self.new[c.name])]


#: The start of a journal table's comment: a table of a journal's name without it, or
#: without the journal's columns, is a user's, never written as a journal.
JOURNAL_MARK = "setwise journal"


def _refuse_foreign(inspector: Any, changes: Table, found: set[str]) -> None:
    """Refuse a table that has a journal's name but is not one: it lacks the columns
    every journal has, has others, or carries another comment. (Journals that earlier
    versions made carry no comment; their columns vouch for them.)"""
    strangers = sorted(
        name
        for name in found
        if name not in ("run_id", "chunk", "part", OP) and not name.startswith(("k_", "o_", "n_"))
    )
    comment = None
    if inspector.dialect.supports_comments:
        comment = inspector.get_table_comment(changes.name, schema=changes.schema).get("text")
    if (
        {"run_id", "chunk"} <= found
        and not strangers
        and (comment is None or comment.startswith(JOURNAL_MARK))
    ):
        return
    why = (
        f"comment {comment!r}"
        if strangers == [] and {"run_id", "chunk"} <= found
        else (f"columns {sorted(found)}")
    )
    raise SchemaError(
        f"table {changes.name!r} has the name of setwise's journal but is not one ({why}): "
        "rename it, or pass another journal_prefix",
        name=changes.name,
    )


#: Journal tables known to exist, per engine: checked once, not on every run. Keyed by the
#: engine itself, since two engines with one URL may see different schemas (search_path).
_EXISTING: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


def _layout_refused(
    changes: Table, kept: JournalLayout, layout: JournalLayout, journals: str
) -> JournalTableError:
    """The error for a journal table (of the table named ``journals``) kept in the layout
    ``kept``, not the ``layout`` setwise writes, one made by an earlier setwise: writing
    to it would fail mid-run."""
    if layout.converts:
        remedy = (
            f"convert it with `setwise init {journals}` (setwise.init(bind, {journals!r})),"
            " which packs its runs in one transaction and keeps them revertible"
        )
    else:
        remedy = "rename it (its runs can still be read) or drop it, and run again"
    return JournalTableError(
        f"journal table {changes.name!r} keeps {kept.description}, but setwise now"
        f" keeps {layout.description} there: {remedy}",
        table=changes.name,
        layout=kept.description,
    )


def tagged(arguments: dict[str, Any], tag: str | None) -> dict[str, Any]:
    """A run's ``arguments`` with its ``tag``, when it has one (``Journal.tagged``)."""
    return arguments if tag is None else {**arguments, "tag": tag}


def key_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the key column ``name``."""
    return strategy.identifier(f"k_{name}")


def old_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the old values of column ``name``."""
    return strategy.identifier(f"o_{name}")


def new_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the new values of column ``name``."""
    return strategy.identifier(f"n_{name}")


# The run records' names, still found here by code that imports them from the journal.
__all__ = [
    "DEFAULT_PREFIX",
    "ChunkInfo",
    "Journal",
    "RunInfo",
    "default_actor",
    "key_column",
    "new_column",
    "new_run_id",
    "old_column",
    "tagged",
]
