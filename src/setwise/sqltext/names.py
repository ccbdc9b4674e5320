"""The names in rebuilt text: columns looked up from the innermost query outwards, and
the tables a subquery reads (user tables only), each as an alias of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table
from sqlglot import exp

from setwise.dialects import Strategy
from setwise.errors import SchemaError
from setwise.messages import closest
from setwise.sqltext.kinds import find_column
from setwise.sqltext.nodes import name_key
from setwise.sqltext.reader import TextReader

TableLookup = Callable[[str, str | None], Table]
"""Finds another table by name and schema, for a subquery; raises ``SchemaError``."""


@dataclass
class Scope:
    """The tables a (sub)query reads, by the name the text uses for each."""

    tables: dict[str, FromClause] = field(default_factory=dict)
    parent: Scope | None = None


class NameResolver(TextReader):
    """Finds the columns and tables a text names, from the target ``table`` outwards."""

    def __init__(
        self,
        text: str,
        table: Table,
        strategy: Strategy,
        tables: TableLookup | None,
        label: str,
    ) -> None:
        super().__init__(text, strategy, label)
        self.table = table
        self.lookup = tables or self._metadata_lookup
        # Reachable as written quoted, or in any case unquoted (see ``name_key``).
        self.top = Scope({table.name: table, table.name.lower(): table})

    def column(self, node: exp.Column, scope: Scope) -> ColumnElement[Any]:
        """The column ``node`` names, looked up from the innermost query outwards."""
        self.allow(node, "this", "table", "db")
        if isinstance(node.this, exp.Star):
            self.fail(node, "* is allowed only in a subquery's select list or COUNT(*)")
        name = node.this
        if not isinstance(name, exp.Identifier):
            self.fail(node, f"{node.sql()} is not a column name")
        qualifier = node.args.get("table")
        schema = node.args.get("db")
        at: Scope | None = scope
        while at is not None:
            if qualifier is not None:
                source = self._source(at, qualifier, schema)
                if source is not None:
                    found = find_column(source, name)
                    if found is None:
                        self.fail(
                            node,
                            f"unknown column {name.name!r} in {qualifier.name!r}",
                            closest(name.name, source.columns.keys()),
                        )
                    return found
            else:
                hits = [
                    c for c in (find_column(s, name) for s in at.tables.values()) if c is not None
                ]
                if len(hits) > 1:
                    self.fail(node, f"column {name.name!r} is ambiguous: qualify it")
                if hits:
                    return hits[0]
            at = at.parent
        if qualifier is not None:
            self.fail(
                node,
                f"{node.sql()} is a column of another table: outside a subquery only "
                f"columns of {self.table.fullname!r} may be used",
            )
        self.fail(
            node,
            f"unknown column {name.name!r} in table {self.table.fullname!r}",
            closest(name.name, self.table.columns.keys()),
        )

    def _source(
        self, scope: Scope, qualifier: exp.Identifier, schema: exp.Identifier | None
    ) -> FromClause | None:
        source = scope.tables.get(name_key(qualifier))
        if source is None or schema is None:
            return source
        if isinstance(source, Table) and source.schema == schema.name:
            return source
        original = getattr(source, "element", None)
        if isinstance(original, Table) and original.schema == schema.name:
            return source
        return None

    def table_source(self, node: exp.Expr, scope: Scope) -> FromClause:
        """A table a subquery reads, as an alias of its own: the same table read twice
        (or the target itself) is a separate source, as SQL's scoping says."""
        if not isinstance(node, exp.Table):
            self.fail(node, "a subquery may read tables only (no derived tables or functions)")
        self.allow(node, "this", "db", "alias")
        name = node.this
        schema = node.args.get("db")
        alias = node.args.get("alias")
        if not isinstance(name, exp.Identifier):
            self.fail(node, "a subquery may read tables only (no table functions)")
        if schema is not None and not isinstance(schema, exp.Identifier):
            self.fail(schema, "a schema is named by an identifier")
        if alias is not None:
            self.allow(alias, "this")
            if not isinstance(alias.this, exp.Identifier):
                self.fail(alias, "an alias is an identifier")
        table = self._table(node, name, schema.name if schema is not None else None)
        key = name_key(alias.this) if alias is not None else name_key(name)
        if key in scope.tables:
            self.fail(node, f"{key!r} names two tables in this subquery: give one an alias")
        source = table.alias(alias.this.name if alias is not None else None)
        scope.tables[key] = source
        return source

    def _table(self, node: exp.Expr, name: exp.Identifier, schema: str | None) -> Table:
        if name.name.lower() == self.table.name.lower() and schema in (None, self.table.schema):
            return self.table
        if self.strategy.is_system_table(name.name, schema):
            written = f"{schema}.{name.name}" if schema else name.name
            self.fail(
                node,
                f"{written!r} is one of {self.strategy.name}'s own tables, not a user's: a "
                "subquery may read user tables only",
            )
        candidates = [name.name]
        if not name.quoted and name.name != name.name.lower():
            candidates.append(name.name.lower())  # unquoted names fold to lower case
        failure: SchemaError | None = None
        for candidate in candidates:
            try:
                return self.lookup(candidate, schema)
            except SchemaError as exc:
                failure = failure or exc
        suggestion = failure.suggestion if failure is not None else None
        if failure is not None and schema is not None and failure.name == schema:
            self.fail(node, f"unknown schema {schema!r}", suggestion)
        self.fail(node, f"unknown table {name.name!r}", suggestion)

    def _metadata_lookup(self, name: str, schema: str | None) -> Table:
        metadata = self.table.metadata
        qualified = f"{schema}.{name}" if schema else name
        table = metadata.tables.get(qualified)
        if table is None:
            raise SchemaError.unknown("table", qualified, metadata.tables.keys(), "the MetaData")
        return table
