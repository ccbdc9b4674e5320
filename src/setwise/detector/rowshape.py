"""Tell a single-row UPDATE or DELETE from any other statement, and name its replacement.

``learn()`` reads a statement as it reached the driver and returns a ``RowShape`` when
the statement writes at most one row: its WHERE clause sets every column of a primary
or unique key equal to one value. SQLAlchemy statements are read from the statement
object and the keys its ``Table`` declares. ``text()`` and driver SQL are parsed with
sqlglot; their table's keys are unknown in the hook, so ``RowShape.key`` is None and
the caller confirms the key by reflection later (reflecting inside an execution hook
would send statements in the middle of someone else's).

``suggest()`` writes the set-based call that replaces a loop of one shape, naming the
real table, key and columns, with values taken from the loop's first row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

import sqlglot
from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.engine import Compiled
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Delete, Update
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList
from sqlalchemy.sql.elements import ColumnClause as SAColumn
from sqlglot import exp

Row = Any
"""One parameter set: a mapping (named parameters) or a sequence (positional ones)."""

Pick = Callable[[Row], tuple[Any, ...]]

#: Keys shown in a suggestion before "...": enough to see what the loop touched.
SHOWN_KEYS = 3

#: Longest value shown in a suggestion; a suggestion is read, not run as is.
SHOWN_VALUE_CHARS = 60

_POSITIONAL = frozenset({"qmark", "format", "numeric", "numeric_dollar"})
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%|\?|\$(\d+)|(?<![:\w]):(\d+)\b")
_ARITHMETIC: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}


@dataclass(frozen=True, eq=False)
class RowShape:
    """A statement that writes at most one row, and how to read its parameters."""

    kind: str
    """"UPDATE" or "DELETE"."""

    table: str
    schema: str | None
    shape: str
    """The statement as one line, every value a placeholder: the grouping key."""

    pinned: tuple[str, ...]
    """Columns the WHERE clause sets equal to one value."""

    pinned_values: Pick
    """The values of ``pinned`` in one parameter set."""

    set_values: Pick
    """The values the SET clause takes from one parameter set, version bumps left out."""

    key: tuple[str, ...] | None
    """The declared key among ``pinned``; None when it must be confirmed by reflection."""

    compiled: Compiled | None
    """The compiled statement this was read from; its rows are ``compiled_parameters``."""

    positions: tuple[str, ...] | None = None
    """Parameter names in placeholder order, for a compiled positional statement."""

    def named_values(self, row: Row) -> dict[str, Any]:
        """One parameter set keyed the way ``canonical_sql`` names the placeholders."""
        if isinstance(row, Mapping):
            if self.positions:
                return {f"_{i}": row.get(name) for i, name in enumerate(self.positions)}
            return dict(row)
        return {f"_{i}": value for i, value in enumerate(row)}


def learn(
    statement: str, compiled: Compiled | None, names: Sequence[str], paramstyle: str
) -> RowShape | None:
    """The single-row shape of ``statement``, or None for any other statement.

    ``names`` are the compiled statement's parameter names (one execution's keys).
    """
    element = getattr(compiled, "statement", None)
    if isinstance(element, Update | Delete) and compiled is not None:
        return _from_statement(statement, element, compiled, names, paramstyle)
    head = statement.lstrip()[:6].upper()
    if head in ("UPDATE", "DELETE") and (compiled is None or element is not None):
        return _from_text(statement, paramstyle)
    return None


def _from_statement(
    sql: str, element: Update | Delete, compiled: Compiled, names: Sequence[str], paramstyle: str
) -> RowShape | None:
    table = element.table
    columns = {column.name for column in getattr(table, "columns", ())}
    bind_names = getattr(compiled, "bind_names", {})
    pinned: dict[str, str] = {}
    for column, bind in _equalities(element.whereclause):
        name = bind_names.get(bind)
        if column.name in columns and name is not None:
            pinned.setdefault(column.name, name)
    if not pinned:
        return None
    declared = _declared_keys(table)
    key = next((k for k in declared if set(k) <= pinned.keys()), None)
    if declared and key is None:
        return None

    kind = "UPDATE" if isinstance(element, Update) else "DELETE"
    # A column both pinned and set is a version bump (the ORM's version_id_col); an
    # onupdate column is filled in by SQLAlchemy. Neither says what the program changed.
    ignored = set(pinned) | {c.key for c in getattr(compiled, "update_prefetch", ())}
    set_names = [n for n in names if n not in pinned.values() and n not in ignored]
    positions = getattr(compiled, "positiontup", None)
    return RowShape(
        kind=kind,
        table=str(getattr(table, "name", table)),
        schema=getattr(table, "schema", None),
        shape=shape_of(sql, paramstyle),
        pinned=tuple(pinned),
        pinned_values=_pick(list(pinned.values())),
        set_values=_pick(set_names) if kind == "UPDATE" else _pick([]),
        key=key,
        compiled=compiled,
        positions=tuple(positions) if positions else None,
    )


def _equalities(where: Any) -> list[tuple[SAColumn[Any], BindParameter[Any]]]:
    """The ``column = :value`` terms of a WHERE clause that is a conjunction."""
    if where is None:
        return []
    terms = (
        where.clauses
        if isinstance(where, BooleanClauseList) and where.operator is operators.and_
        else [where]
    )
    found = []
    for term in terms:
        if not isinstance(term, BinaryExpression) or term.operator is not operators.eq:
            continue
        left, right = term.left, term.right
        if isinstance(right, SAColumn) and isinstance(left, BindParameter):
            left, right = right, left
        if isinstance(left, SAColumn) and isinstance(right, BindParameter):
            found.append((left, right))
    return found


def _declared_keys(table: Any) -> list[tuple[str, ...]]:
    """The primary key, then every unique constraint and unique index, as column names."""
    keys: list[tuple[str, ...]] = []
    primary = getattr(table, "primary_key", None)
    if primary is not None and len(primary.columns):
        keys.append(tuple(column.name for column in primary.columns))
    for constraint in getattr(table, "constraints", ()):
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns):
            keys.append(tuple(column.name for column in constraint.columns))
    for index in getattr(table, "indexes", ()):
        if isinstance(index, Index) and index.unique:
            keys.append(tuple(c.name for c in index.columns if isinstance(c, Column)))
    keys += [(c.name,) for c in getattr(table, "columns", ()) if getattr(c, "unique", False)]
    return [key for key in keys if key]


def canonical_sql(sql: str, paramstyle: str, *, named: bool = True) -> str:
    """``sql`` with every placeholder written ``:name`` (positional ones ``:_0``, ``:_1``…)
    and backquoted names double-quoted, so that one sqlglot grammar reads every driver's
    SQL. With ``named=False`` every placeholder is written ``?`` instead (for display)."""
    counter = iter(range(1 << 30))

    def mark(name: str | None) -> str:
        if not named:
            return "?"
        return f":{name}" if name is not None else f":_{next(counter)}"

    def rewrite(match: re.Match[str]) -> str:
        text, name, dollar, numeric = match.group(0, 1, 2, 3)
        if paramstyle in ("format", "pyformat") and text[0] == "%":
            return "%" if text == "%%" else mark(name)
        if paramstyle == "qmark" and text == "?":
            return mark(None)
        if paramstyle == "numeric_dollar" and dollar:
            return mark(f"_{int(dollar) - 1}")
        if paramstyle == "numeric" and numeric:
            return mark(f"_{int(numeric) - 1}")
        return text

    return _PLACEHOLDER.sub(rewrite, sql).replace("`", '"')


def parse(sql: str, paramstyle: str) -> exp.Update | exp.Delete | None:
    """The UPDATE or DELETE ``sql`` holds, parsed; None for anything else or unreadable."""
    try:
        tree = sqlglot.parse_one(canonical_sql(sql, paramstyle))
    except sqlglot.errors.SqlglotError:
        return None
    return tree if isinstance(tree, exp.Update | exp.Delete) else None


def shape_of(sql: str, paramstyle: str) -> str:
    """``sql`` as one line in one spelling whatever the driver, every value a ``?``."""
    tree = parse(sql, paramstyle)
    if tree is None:
        return " ".join(canonical_sql(sql, paramstyle, named=False).split())
    return _shape(tree)


def _shape(tree: exp.Expression) -> str:
    def blank(node: exp.Expression) -> exp.Expression:
        value = _bare(node) if isinstance(node, exp.Cast) else node
        return exp.Placeholder() if isinstance(value, exp.Literal | exp.Placeholder) else node

    return tree.transform(blank).sql()


def _from_text(sql: str, paramstyle: str) -> RowShape | None:
    tree = parse(sql, paramstyle)
    if tree is None or not isinstance(tree.this, exp.Table) or tree.args.get("where") is None:
        return None
    positional = paramstyle in _POSITIONAL
    pinned_params: dict[str, str | int] = {}
    pinned_constants: dict[str, Any] = {}
    for term in _conjuncts(tree.args["where"].this):
        if not isinstance(term, exp.EQ):
            continue
        left, right = _bare(term.this), _bare(term.expression)
        if not isinstance(left, exp.Column):
            left, right = right, left
        if not isinstance(left, exp.Column) or left.name in pinned_params | pinned_constants:
            continue
        if isinstance(right, exp.Placeholder):
            pinned_params[left.name] = _place(right, positional)
        elif isinstance(right, exp.Literal):
            pinned_constants[left.name] = _literal(right)
    if not pinned_params and not pinned_constants:
        return None

    set_places: list[str | int] = []
    set_constants: list[Any] = []
    for assignment in tree.expressions if isinstance(tree, exp.Update) else ():
        column = assignment.this if isinstance(assignment, exp.EQ) else None
        if isinstance(column, exp.Column) and column.name in pinned_params | pinned_constants:
            continue  # a version bump
        set_places += [_place(p, positional) for p in assignment.find_all(exp.Placeholder)]
        set_constants += [_literal(literal) for literal in assignment.find_all(exp.Literal)]
    return RowShape(
        kind="UPDATE" if isinstance(tree, exp.Update) else "DELETE",
        table=tree.this.name,
        schema=tree.this.db or None,
        shape=_shape(tree),
        pinned=(*pinned_params, *pinned_constants),
        pinned_values=_pick(list(pinned_params.values()), tuple(pinned_constants.values())),
        set_values=_pick(set_places, tuple(set_constants)),
        key=None,
        compiled=None,
    )


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = _bare(node)
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    return [node]


def _bare(node: exp.Expression) -> exp.Expression:
    """The expression inside any parentheses and casts."""
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return node


def _literal(node: exp.Literal) -> Any:
    """A literal's value as Python: text, an int, or an exact Decimal."""
    if node.is_string:
        return node.this
    try:
        return int(node.this)
    except ValueError:
        return Decimal(node.this)


def _place(placeholder: exp.Placeholder, positional: bool) -> str | int:
    """Where a placeholder's value sits in a raw parameter set: an index or a name."""
    name = placeholder.name
    if positional and name.startswith("_") and name[1:].isdigit():
        return int(name[1:])
    return name


def _pick(places: Sequence[str | int], constants: tuple[Any, ...] = ()) -> Pick:
    """Read these places out of one parameter set, followed by the constants."""
    if not places:
        return lambda row: constants
    get = itemgetter(*places)
    if len(places) == 1:
        return lambda row: (get(row), *constants)
    return lambda row: (*get(row), *constants)


# -- suggestions -----------------------------------------------------------------------------


def suggest(
    shape: RowShape,
    key: Sequence[str],
    *,
    sql: str,
    values: Mapping[str, Any],
    sample: Sequence[tuple[Any, ...]],
    rows: int,
    same_values: bool,
    paramstyle: str,
) -> str:
    """The set-based call that replaces ``rows`` executions of ``shape``.

    ``sql`` and ``values`` are the first execution's statement and parameters
    (``RowShape.named_values``); ``sample`` holds the pinned values of the first rows.
    """
    name = _identifier(shape.table)
    positions = [shape.pinned.index(column) for column in key]
    keys = [tuple(pinned[i] for i in positions) for pinned in sample]
    where = _key_in(name, key, keys, rows)
    if shape.kind == "DELETE":
        return f"setwise.delete(bind, delete({name}).where({where}))"
    assignments = _assignments(parse(sql, paramstyle), name, values, ignored=set(shape.pinned))
    if same_values:
        listed = ", ".join(f"{column}={python}" for column, python, _ in assignments) or "..."
        return f"setwise.update(bind, update({name}).where({where}).values({listed}))"
    entries = [f"{column!r}: {_shown(value)}" for column, value in zip(key, keys[0], strict=True)]
    computed = []
    for column, python, plain in assignments:
        if plain:
            entries.append(f"{column!r}: {python}")
        else:
            computed.append(f"{column} = {python}")
    note = f"  # {rows} rows keyed by {', '.join(key)}"
    if computed:
        note += "; compute each row's " + ", ".join(computed)
    return f"setwise.apply(bind, {name}, [{{{', '.join(entries)}}}, ...]){note}"


def _key_in(name: str, key: Sequence[str], keys: Sequence[tuple[Any, ...]], rows: int) -> str:
    more = ", ..." if rows > len(keys) else ""
    if len(key) == 1:
        listed = ", ".join(_shown(k[0]) for k in keys)
        return f"{name}.c.{key[0]}.in_([{listed}{more}])"
    columns = ", ".join(f"{name}.c.{column}" for column in key)
    listed = ", ".join("(" + ", ".join(_shown(v) for v in k) + ")" for k in keys)
    return f"tuple_({columns}).in_([{listed}{more}])"


def _assignments(
    tree: exp.Update | exp.Delete | None, name: str, values: Mapping[str, Any], ignored: set[str]
) -> list[tuple[str, str, bool]]:
    """(column, the new value as Python, whether it is a plain value) for each SET term;
    none when the statement could not be read back."""
    if not isinstance(tree, exp.Update):
        return []
    found = []
    for assignment in tree.expressions:
        column = assignment.this if isinstance(assignment, exp.EQ) else None
        if not isinstance(column, exp.Column) or column.name in ignored:
            continue
        value = _bare(assignment.expression)
        plain = isinstance(value, exp.Placeholder | exp.Literal | exp.Null | exp.Boolean)
        found.append((column.name, _python(value, name, values), plain))
    return found


def _python(node: exp.Expression, name: str, values: Mapping[str, Any]) -> str:
    """A SET expression written as SQLAlchemy Python over the table ``name``."""
    node = _bare(node) if isinstance(node, exp.Cast) else node
    if isinstance(node, exp.Placeholder):
        return _shown(values.get(node.name))
    if isinstance(node, exp.Literal):
        return _shown(_literal(node))
    if isinstance(node, exp.Null):
        return "None"
    if isinstance(node, exp.Boolean):
        return str(node.this)
    if isinstance(node, exp.Column):
        return f"{name}.c.{node.name}"
    if isinstance(node, exp.Paren):
        return f"({_python(node.this, name, values)})"
    if isinstance(node, exp.Neg):
        return f"-{_python(node.this, name, values)}"
    operator = _ARITHMETIC.get(type(node))
    if operator is not None:
        left, right = (_python(node.args[k], name, values) for k in ("this", "expression"))
        return f"{left} {operator} {right}"
    return f"literal_column({node.sql()!r})"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."


def _identifier(table: str) -> str:
    """A Python name for the table in a suggestion."""
    name = re.sub(r"\W", "_", table)
    return name if name.isidentifier() else f"t_{name}"
