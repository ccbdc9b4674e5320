"""``--where`` and ``--set`` text → checked SQLAlchemy expressions on one table.

The text is parsed by sqlglot in the database's own dialect, then rebuilt node by
node as SQLAlchemy expressions: nothing of the text itself reaches the database.
Only what the allow-lists below name is rebuilt: columns of the table (a subquery may
read other user tables, never the database's own: ``Strategy.is_system_table``),
comparisons, arithmetic, AND/OR/NOT, CASE, IN, BETWEEN, LIKE, IS NULL, EXISTS, scalar
subqueries and a few pure functions. Every literal becomes a bound parameter; a
number written with a decimal point or an exponent becomes a Decimal, so exact
columns stay exact. A condition goes where SQL needs one, arithmetic takes numbers,
and a literal meets a value of its own kind, so that no database reads the text
otherwise than another. Text nested past ``sqllimits`` is refused before it is
parsed deeply enough to exhaust Python's stack. Anything else raises
``SQLTextError`` with a caret under the offending token, before any statement runs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Select,
    Table,
    Update,
    and_,
    case,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    type_coerce,
    types,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import Grouping, Null
from sqlglot import Dialect as SqlglotDialect
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from setwise.dialects import Strategy, get_strategy
from setwise.errors import SchemaError, SQLTextError
from setwise.messages import closest
from setwise.sqltext_limits import Overrun, nesting_overrun, tree_overrun
from setwise.target import resolve_target

TableLookup = Callable[[str, str | None], Table]
"""Finds another table by name and schema, for a subquery; raises ``SchemaError``."""

# Tokens that begin a statement of their own: refused with a plain message before
# parsing, though the allow-list below would refuse them too.
_STATEMENT_TOKENS = frozenset(
    {
        TokenType.ALTER,
        TokenType.ATTACH,
        TokenType.BEGIN,
        TokenType.COMMAND,
        TokenType.COMMIT,
        TokenType.COPY,
        TokenType.CREATE,
        TokenType.DELETE,
        TokenType.DESCRIBE,
        TokenType.DETACH,
        TokenType.DROP,
        TokenType.EXECUTE,
        TokenType.GRANT,
        TokenType.INSERT,
        TokenType.INTO,
        TokenType.MERGE,
        TokenType.PRAGMA,
        TokenType.RETURNING,
        TokenType.ROLLBACK,
        TokenType.SET,
        TokenType.SHOW,
        TokenType.TRUNCATE,
        TokenType.UPDATE,
        TokenType.USE,
        TokenType.WITH,
    }
)

_COMPARISONS: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.EQ: operators.eq,
    exp.NEQ: operators.ne,
    exp.GT: operators.gt,
    exp.GTE: operators.ge,
    exp.LT: operators.lt,
    exp.LTE: operators.le,
    exp.NullSafeEQ: operators.is_not_distinct_from,
    exp.NullSafeNEQ: operators.is_distinct_from,
}

_ARITHMETIC: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.Add: operators.add,
    exp.Sub: operators.sub,
    exp.Mul: operators.mul,
    exp.Mod: operators.mod,
    # The database's own "/" (integer division where it has it), not SQLAlchemy's
    # true division, which would add a CAST the text did not ask for.
    exp.Div: lambda left, right: left.op("/")(right),
    exp.DPipe: lambda left, right: left.concat(right),
}


@dataclass(frozen=True)
class _Function:
    """An allowed function: its SQLAlchemy name and the sqlglot arguments it may carry."""

    name: str
    arguments: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    """Arguments sqlglot sets by itself, which change nothing here."""
    aggregate: bool = False


_FUNCTIONS: dict[type[exp.Expr], _Function] = {
    exp.Abs: _Function("abs", ("this",)),
    exp.Coalesce: _Function("coalesce", ("this", "expressions")),
    exp.CurrentDate: _Function("current_date", ()),
    exp.CurrentTimestamp: _Function("current_timestamp", ()),
    exp.Lower: _Function("lower", ("this",)),
    exp.Nullif: _Function("nullif", ("this", "expression")),
    exp.Round: _Function("round", ("this", "decimals")),
    exp.Substring: _Function("substr", ("this", "start", "length")),
    exp.Trim: _Function("trim", ("this",)),
    exp.Upper: _Function("upper", ("this",)),
    exp.Avg: _Function("avg", ("this",), aggregate=True),
    exp.Count: _Function("count", ("this",), ignored=("big_int",), aggregate=True),
    exp.Max: _Function("max", ("this",), aggregate=True),
    exp.Min: _Function("min", ("this",), aggregate=True),
    exp.Sum: _Function("sum", ("this",), aggregate=True),
}

#: Functions sqlglot does not model in some dialect, by the name written.
_NAMED_FUNCTIONS = {"NOW": _Function("current_timestamp", ())}

ALLOWED_FUNCTIONS = (
    "ABS, CHAR_LENGTH, COALESCE (IFNULL), CURRENT_DATE, CURRENT_TIMESTAMP (NOW), LENGTH, "
    "LOWER, NULLIF, ROUND, SUBSTR (SUBSTRING), TRIM, UPPER; in a subquery also AVG, COUNT, "
    "MAX, MIN, SUM"
)

#: Terms of one AND or OR chain written without parentheses around groups of them:
#: a database's parser nests each term a level deeper (``_balanced``). 64 keeps any
#: chain within a few hundred levels, far below SQLite's limit of 1,000.
CHAIN_TERMS = 64

# The parts of a subquery's SELECT that are rebuilt; any other part (WITH, FOR UPDATE,
# INTO, window clauses…) is refused.
_SELECT_PARTS = frozenset(
    {"expressions", "from_", "joins", "where", "group", "having", "order", "limit", "distinct"}
)


def parse_where(
    text: str,
    table: Table,
    dialect: Dialect,
    *,
    tables: TableLookup | None = None,
    label: str = "--where",
) -> ColumnElement[bool]:
    """The filter ``text`` as a condition on ``table``'s columns.

    ``tables`` finds the other tables a subquery reads; by default, the tables of
    ``table``'s MetaData.
    """
    builder = _Builder(text, table, get_strategy(dialect), tables, label)
    node = builder.parse()
    return builder.condition(node, builder.top)


def parse_assignment(
    text: str,
    table: Table,
    dialect: Dialect,
    *,
    tables: TableLookup | None = None,
    label: str = "--set",
) -> tuple[Column[Any], ColumnElement[Any]]:
    """``"column = expression"`` as the column of ``table`` and the value to give it."""
    builder = _Builder(text, table, get_strategy(dialect), tables, label)
    node = builder.parse()
    if not isinstance(node, exp.EQ) or not isinstance(node.this, exp.Column):
        builder.fail(node, "expected an assignment: column = expression")
    column = builder.column(node.this, builder.top)
    if not isinstance(column, Column) or column.table is not table:
        builder.fail(node.this, f"only a column of {table.fullname!r} can be set")
    value = node.expression
    if _literal_value(value) is not _NOT_LITERAL:
        # A plain value is bound with the column's own type, so it is checked against
        # the column (length, scale, range) like any value given to setwise.update.
        return column, builder.bind(value, column.type, store=True)
    return column, builder.expression(value, builder.top, hint=column.type)


def parse_update(
    bind: Engine | Connection,
    table: str,
    assignments: Sequence[str],
    where: str | None = None,
) -> Update:
    """An UPDATE of ``table``, reflected from the database, from ``--set`` texts and a
    ``--where`` text. Tables a subquery names are reflected too."""
    with _connection(bind) as connection:
        target = resolve_target(table, connection).table
        lookup = _reflecting(connection)
        values: dict[Column[Any], ColumnElement[Any]] = {}
        for text in assignments:
            column, value = parse_assignment(text, target, connection.dialect, tables=lookup)
            if column in values:
                position = text.find(column.name)
                raise SQLTextError(
                    text,
                    f"column {column.name!r} is set twice",
                    position=max(position, 0),
                    end=max(position, 0) + len(column.name) - 1,
                    label="--set",
                )
            values[column] = value
        statement = sql_update(target).values(values)
        if where is not None:
            statement = statement.where(
                parse_where(where, target, connection.dialect, tables=lookup)
            )
    return statement


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


def _reflecting(connection: Connection) -> TableLookup:
    """Reflect the tables a subquery reads, each once."""
    seen: dict[str, Table] = {}

    def lookup(name: str, schema: str | None) -> Table:
        qualified = f"{schema}.{name}" if schema else name
        if qualified not in seen:
            seen[qualified] = resolve_target(qualified, connection).table
        return seen[qualified]

    return lookup


class _NotLiteral:
    pass


_NOT_LITERAL = _NotLiteral()


def _literal_value(node: exp.Expr) -> Any:
    """The Python value of a literal node (``-5`` included), else ``_NOT_LITERAL``."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        value = _literal_value(node.this)
        return -value if isinstance(value, int | Decimal) else _NOT_LITERAL
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        text = str(node.this)
        if node.is_string:
            return text
        # Digits only: an integer. A decimal point or an exponent: an exact Decimal.
        return int(text) if text.isdigit() else Decimal(text)
    return _NOT_LITERAL


@dataclass
class _Scope:
    """The tables a (sub)query reads, by the name the text uses for each."""

    tables: dict[str, FromClause] = field(default_factory=dict)
    parent: _Scope | None = None


class _Builder:
    """Rebuilds one parsed text as SQLAlchemy expressions, refusing what is not allowed."""

    def __init__(
        self,
        text: str,
        table: Table,
        strategy: Strategy,
        tables: TableLookup | None,
        label: str,
    ) -> None:
        self.text = text
        self.table = table
        self.strategy = strategy
        self.lookup = tables or self._metadata_lookup
        self.label = label
        # Reachable as written quoted, or in any case unquoted (see ``_key``).
        self.top = _Scope({table.name: table, table.name.lower(): table})

    # -- parsing ---------------------------------------------------------------

    def parse(self) -> exp.Expr:
        """The one expression in the text, or a SQLTextError."""
        if "\x00" in self.text:
            at = self.text.index("\x00")
            self.error("a NUL character (\\x00) is not allowed", at, at)
        reader = SqlglotDialect.get_or_raise(self.strategy.sqlglot_dialect or None)
        tokenizer = reader.tokenizer()
        try:
            tokens = tokenizer.tokenize(self.text)
        except TokenError:
            self._unreadable(tokenizer.tokens)
        if not tokens:
            self.error("empty: give an expression", 0, len(self.text) - 1)
        for token in tokens:
            if token.token_type == TokenType.SEMICOLON:
                self.error(
                    "';' would start a second statement; give one expression",
                    token.start,
                    token.end,
                )
            if token.token_type in (TokenType.PLACEHOLDER, TokenType.PARAMETER):
                self.error(
                    "parameters are not allowed: write the value itself", token.start, token.end
                )
            if token.token_type in _STATEMENT_TOKENS:
                self.error(
                    f"{token.text.upper()} is not allowed: {self.label} takes an "
                    "expression, not a statement",
                    token.start,
                    token.end,
                )
        parser = reader.parser()
        self.overrun(nesting_overrun(tokens, {TokenType.NOT, *parser.UNARY_PARSERS}))
        try:
            parsed = parser.parse_into(exp.Condition, tokens, self.text)
        except ParseError as exc:
            self._misread(exc)
        node = parsed[0] if len(parsed) == 1 else None
        if node is None:
            self.error("empty: give an expression", 0, len(self.text) - 1)
        self.overrun(tree_overrun(node))
        return node

    def overrun(self, found: Overrun | None) -> None:
        """Refuse the text past a limit of ``sqllimits``, if ``found``."""
        if found is None:
            return
        if found.node is not None:
            self.fail(found.node, found.reason)
        token = found.token
        start, end = (token.start, token.end) if token is not None else (0, len(self.text) - 1)
        self.error(found.reason, start, end)

    def _unreadable(self, read: Sequence[Token]) -> NoReturn:
        start = read[-1].end + 1 if read else 0
        while start < len(self.text) and self.text[start].isspace():
            start += 1
        rest = self.text[start:]
        if rest[:1] in ("'", '"', "`"):
            reason = f"unterminated {rest[0]} quote: it is never closed"
        else:
            reason = "cannot read the text from here"
        self.error(reason, start, len(self.text) - 1)

    def _misread(self, exc: ParseError) -> NoReturn:
        found = exc.errors[0] if exc.errors else {}
        highlight = str(found.get("highlight") or "")
        line, col = int(found.get("line") or 1), int(found.get("col") or 1)
        offset = sum(len(part) + 1 for part in self.text.split("\n")[: line - 1])
        start = offset + col - len(highlight)
        description = str(found.get("description") or "not a valid expression")
        self.error(f"cannot read this: {description}", start, start + len(highlight) - 1)

    # -- errors ----------------------------------------------------------------

    def error(self, reason: str, start: int, end: int, suggestion: str | None = None) -> NoReturn:
        raise SQLTextError(
            self.text, reason, position=start, end=end, label=self.label, suggestion=suggestion
        )

    def fail(self, node: exp.Expr, reason: str, suggestion: str | None = None) -> NoReturn:
        """Refuse ``node``, with the caret under the text it was read from."""
        start, end = _span(node) or (0, len(self.text) - 1)
        self.error(reason, start, end, suggestion)

    # -- expressions -----------------------------------------------------------

    def condition(self, node: exp.Expr, scope: _Scope) -> ColumnElement[bool]:
        """``node`` rebuilt where SQL needs a truth value (WHERE, ON, AND, NOT, WHEN…):
        a value of another type is refused, which PostgreSQL refuses too and MySQL and
        SQLite would read as true when it is not zero."""
        built = self.expression(node, scope)
        if not isinstance(built.type, types.Boolean | types.NullType):
            self.fail(
                node,
                "a condition is needed here (a comparison, IN, LIKE, IS NULL…), not a value "
                f"of type {built.type.__class__.__name__.upper()}",
            )
        return built

    def number(self, node: exp.Expr, scope: _Scope) -> ColumnElement[Any]:
        """``node`` rebuilt as an operand of arithmetic, which takes numbers: SQLAlchemy
        would turn text + text into joined text, and the databases compute dates and
        text each their own way (MySQL reads '2021-03-04' + 1 as 2022)."""
        built = self.expression(node, scope)
        found = _family(built.type)
        if found not in (None, "a number"):
            self.fail(node, f"arithmetic takes numbers, and this is {found}; join text with ||")
        return built

    def expression(
        self, node: exp.Expr, scope: _Scope, hint: types.TypeEngine[Any] | None = None
    ) -> ColumnElement[Any]:
        """``node`` rebuilt; ``hint`` is the type a bare literal here should be bound as."""
        if _literal_value(node) is not _NOT_LITERAL:
            return self.bind(node, hint)
        if isinstance(node, exp.Null):
            return null()
        if isinstance(node, exp.Column):
            return self.column(node, scope)
        if isinstance(node, exp.Paren):
            return Grouping(self.expression(node.this, scope, hint))
        if isinstance(node, exp.Neg):
            return operators.neg(self.number(node.this, scope))  # type: ignore[no-any-return]
        if isinstance(node, exp.Not):
            return not_(self.condition(node.this, scope))
        if isinstance(node, exp.And | exp.Or):
            join = and_ if isinstance(node, exp.And) else or_
            return _balanced(join, [self.condition(part, scope) for part in _chain(node)])
        if type(node) in _COMPARISONS:
            left, right = self.pair(node.this, node.expression, scope)
            null_safe = isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ)
            if not null_safe and (_is_null(left) or _is_null(right)):
                # SQLAlchemy would write = NULL as IS NULL: rows the text never matches.
                self.fail(node, "a comparison with NULL is never true: write IS [NOT] NULL")
            return _COMPARISONS[type(node)](left, right)  # type: ignore[no-any-return]
        if type(node) in _ARITHMETIC:
            # sqlglot notes how the dialect divides ("typed", "safe"); the database's own
            # operator is what runs, so those notes change nothing here.
            self.allow(node, "this", "expression", ignored=("safe", "typed"))
            if isinstance(node, exp.DPipe):
                left = self.expression(node.this, scope)
                right = self.expression(node.expression, scope)
            else:
                left, right = self.number(node.this, scope), self.number(node.expression, scope)
            return _ARITHMETIC[type(node)](left, right)  # type: ignore[no-any-return]
        if isinstance(node, exp.Is):
            return self.is_(node, scope)
        if isinstance(node, exp.In):
            return self.in_(node, scope)
        if isinstance(node, exp.Between):
            self.allow(node, "this", "low", "high")
            subject = self.expression(node.this, scope)
            low = self.expression(node.args["low"], scope, subject.type)
            high = self.expression(node.args["high"], scope, subject.type)
            return subject.between(low, high)
        if isinstance(node, exp.Like | exp.ILike):
            self.allow(node, "this", "expression", ignored=("negate",))
            subject, pattern = self.pair(node.this, node.expression, scope)
            if isinstance(node, exp.ILike):
                matched = (
                    subject.not_ilike(pattern)
                    if node.args.get("negate")
                    else subject.ilike(pattern)
                )
            else:
                matched = (
                    subject.not_like(pattern) if node.args.get("negate") else subject.like(pattern)
                )
            return matched
        if isinstance(node, exp.Case):
            return self.case(node, scope, hint)
        if isinstance(node, exp.Exists):
            self.allow(node, "this")
            return self.select(node.this, scope).exists()
        if isinstance(node, exp.Subquery):
            self.allow(node, "this")
            return self.select(node.this, scope, one_column=True).scalar_subquery()
        if isinstance(node, exp.Length):
            self.allow(node, "this", ignored=("binary",))
            # MySQL's LENGTH counts bytes (sqlglot marks it binary); CHAR_LENGTH counts
            # characters everywhere (SQLAlchemy writes it length() on SQLite).
            counter = func.length if node.args.get("binary") else func.char_length
            return counter(self.expression(node.this, scope))
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in _NAMED_FUNCTIONS:
            if node.expressions:
                self.fail(node, f"{str(node.this).upper()}() takes no arguments")
            return self.function(node, _NAMED_FUNCTIONS[str(node.this).upper()], scope, hint)
        if type(node) in _FUNCTIONS:
            return self.function(node, _FUNCTIONS[type(node)], scope, hint)
        self.refuse(node)

    def refuse(self, node: exp.Expr) -> NoReturn:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            self.fail(node, "parameters are not allowed: write the value itself")
        if isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            self.fail(node, f"function {name.upper()} is not allowed; allowed: {ALLOWED_FUNCTIONS}")
        if isinstance(node, exp.Select | exp.SetOperation):
            self.fail(node, "a query is allowed only in parentheses, as a subquery")
        self.fail(node, f"{_describe(node)} is not allowed in {self.label}")

    def allow(self, node: exp.Expr, *allowed: str, ignored: Sequence[str] = ()) -> None:
        """Refuse ``node`` if it carries a part not in ``allowed`` (or ``ignored``)."""
        for name, value in node.args.items():
            if value and name not in allowed and name not in ignored:
                part = value if isinstance(value, exp.Expr) else node
                self.fail(part, f"{name.upper()} is not supported in {_describe(node)}")

    def pair(
        self, left: exp.Expr, right: exp.Expr, scope: _Scope
    ) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """Two operands; a bare literal on one side is bound with the other side's type."""
        if _literal_value(left) is not _NOT_LITERAL and _literal_value(right) is _NOT_LITERAL:
            built_right = self.expression(right, scope)
            return self.expression(left, scope, built_right.type), built_right
        built_left = self.expression(left, scope)
        return built_left, self.expression(right, scope, built_left.type)

    def is_(self, node: exp.Is, scope: _Scope) -> ColumnElement[Any]:
        self.allow(node, "this", "expression", ignored=("negate",))
        subject = self.expression(node.this, scope)
        other = node.expression
        if isinstance(other, exp.Null):
            value: Any = None
        elif isinstance(other, exp.Boolean):
            value = bool(other.this)
        else:
            self.fail(other, "IS takes NULL, TRUE or FALSE")
        return subject.is_not(value) if node.args.get("negate") else subject.is_(value)

    def in_(self, node: exp.In, scope: _Scope) -> ColumnElement[Any]:
        self.allow(node, "this", "expressions", "query", ignored=("negate",))
        subject = self.expression(node.this, scope)
        query = node.args.get("query")
        if query is not None:
            inner = query.this if isinstance(query, exp.Subquery) else query
            matched = subject.in_(self.select(inner, scope, one_column=True))
        else:
            matched = subject.in_(
                [self.expression(item, scope, subject.type) for item in node.expressions]
            )
        return not_(matched) if node.args.get("negate") else matched

    def case(
        self, node: exp.Case, scope: _Scope, hint: types.TypeEngine[Any] | None
    ) -> ColumnElement[Any]:
        self.allow(node, "this", "ifs", "default")
        operand = node.args.get("this")
        value = self.expression(operand, scope) if operand is not None else None
        whens = []
        for branch in node.args.get("ifs") or []:
            self.allow(branch, "this", "true")
            when = (
                self.expression(branch.this, scope, value.type)
                if value is not None
                else self.condition(branch.this, scope)
            )
            whens.append((when, self.expression(branch.args["true"], scope, hint)))
        default = node.args.get("default")
        otherwise = self.expression(default, scope, hint) if default is not None else None
        return case(*whens, value=value, else_=otherwise)

    def function(
        self,
        node: exp.Expr,
        allowed: _Function,
        scope: _Scope,
        hint: types.TypeEngine[Any] | None,
    ) -> ColumnElement[Any]:
        self.allow(node, *allowed.arguments, ignored=allowed.ignored)
        if allowed.aggregate and scope.parent is None:
            self.fail(node, f"{allowed.name.upper()} is an aggregate: use it in a subquery")
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
            return func.count()
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
            self.allow(node.this, "expressions")
            if len(node.this.expressions) != 1:
                self.fail(node, "COUNT(DISTINCT …) takes one expression")
            return func.count(self.expression(node.this.expressions[0], scope).distinct())
        nodes: list[exp.Expr] = []
        for name in allowed.arguments:
            value = node.args.get(name)
            nodes.extend(value if isinstance(value, list) else [value] if value else [])
        # COALESCE and NULLIF return one of their arguments: literals among them take the
        # type of the first argument that is not one (or of the place the result goes).
        if allowed.name in ("coalesce", "nullif"):
            for candidate in nodes:
                if _literal_value(candidate) is _NOT_LITERAL:
                    hint = hint or self.expression(candidate, scope).type
                    break
        else:
            hint = None
        arguments = [self.expression(argument, scope, hint) for argument in nodes]
        return getattr(func, allowed.name)(*arguments)  # type: ignore[no-any-return]

    # -- literals --------------------------------------------------------------

    def bind(
        self,
        node: exp.Expr,
        hint: types.TypeEngine[Any] | None,
        *,
        store: bool = False,
    ) -> ColumnElement[Any]:
        """A literal as a bound parameter. ``hint``: the type it meets (a column's);
        ``store``: the value is written to a column of that type, so it takes it."""
        value = _literal_value(node)
        if not store:
            self._comparable(node, value, _family(hint))
        if isinstance(value, str) and hint is not None:
            value = self._parse_text(node, value, hint)
            if isinstance(
                hint, types.String | types.Date | types.DateTime | types.Time | types.Uuid
            ):
                return literal(value, hint)
        if store and hint is not None:
            return literal(_as_stored(value, hint), hint)
        return literal(value, _natural_type(value))

    def _comparable(self, node: exp.Expr, value: Any, other: str | None) -> None:
        """Refuse a literal of one kind met with a value of another (``other``, from
        ``_family``): PostgreSQL refuses integer = text, where MySQL turns 'many' into 0
        and matches the rows that hold 0. Quoted text meets a date or time as an ISO
        8601 value (``_parse_text``)."""
        if isinstance(value, bool):
            mine = "a truth value"
        elif isinstance(value, str):
            mine = "text" if other != "a date or time" else other
        else:
            mine = "a number"
        if other is None or mine == other:
            return
        advice = {
            "a number": "write the number without quotes",
            "text": "write the text in quotes",
            "a truth value": "compare it with TRUE or FALSE",
            "a date or time": "write it in quotes, as '2021-03-04'",
        }[other]
        self.fail(node, f"this is {mine}, met with {other}: {advice}")

    def _parse_text(self, node: exp.Expr, value: str, kind: types.TypeEngine[Any]) -> Any:
        """A quoted literal compared with or written to a date, time or UUID column."""
        parsers: tuple[tuple[type[Any], Callable[[str], Any], str], ...] = (
            (types.DateTime, dt.datetime.fromisoformat, "an ISO 8601 timestamp"),
            (types.Date, dt.date.fromisoformat, "an ISO 8601 date (YYYY-MM-DD)"),
            (types.Time, dt.time.fromisoformat, "an ISO 8601 time (HH:MM[:SS])"),
            (types.Uuid, uuid.UUID, "a UUID"),
        )
        for kind_of, parse, wanted in parsers:
            if isinstance(kind, kind_of):
                try:
                    return parse(value)
                except ValueError:
                    self.fail(node, f"{value!r} is not {wanted}")
        return value

    # -- columns and tables ----------------------------------------------------

    def column(self, node: exp.Column, scope: _Scope) -> ColumnElement[Any]:
        """The column ``node`` names, looked up from the innermost query outwards."""
        self.allow(node, "this", "table", "db")
        if isinstance(node.this, exp.Star):
            self.fail(node, "* is allowed only in a subquery's select list or COUNT(*)")
        name = node.this
        if not isinstance(name, exp.Identifier):
            self.fail(node, f"{node.sql()} is not a column name")
        qualifier = node.args.get("table")
        schema = node.args.get("db")
        at: _Scope | None = scope
        while at is not None:
            if qualifier is not None:
                source = self._source(at, qualifier, schema)
                if source is not None:
                    found = _find(source, name)
                    if found is None:
                        self.fail(
                            node,
                            f"unknown column {name.name!r} in {qualifier.name!r}",
                            closest(name.name, source.columns.keys()),
                        )
                    return found
            else:
                hits = [c for c in (_find(s, name) for s in at.tables.values()) if c is not None]
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
        self, scope: _Scope, qualifier: exp.Identifier, schema: exp.Identifier | None
    ) -> FromClause | None:
        source = scope.tables.get(_key(qualifier))
        if source is None or schema is None:
            return source
        if isinstance(source, Table) and source.schema == schema.name:
            return source
        original = getattr(source, "element", None)
        if isinstance(original, Table) and original.schema == schema.name:
            return source
        return None

    def select(self, node: exp.Expr, scope: _Scope, *, one_column: bool = False) -> Select[Any]:
        """A read-only subquery: SELECT … FROM tables [JOIN …] [WHERE …] [GROUP BY …]…;
        ``one_column``: it stands for a value (IN, a scalar subquery), so selects one."""
        if not isinstance(node, exp.Select):
            self.fail(node, "a subquery must be a single SELECT")
        self.allow(node, *_SELECT_PARTS)
        inner = _Scope(parent=scope)
        start = node.args.get("from_")
        joins: list[exp.Join] = node.args.get("joins") or []
        if start is None:
            self.fail(node, "a subquery needs FROM")
        self.allow(start, "this")
        first = self.table_source(start.this, inner)
        sources = [(join, self.table_source(join.this, inner)) for join in joins]

        columns = [c for item in node.expressions for c in self.selected(item, inner)]
        if one_column and len(columns) != 1:
            self.fail(
                node,
                f"this subquery stands for one value, so it selects one column, not {len(columns)}",
            )
        query = select(*columns).select_from(first)
        for join, source in sources:
            self.allow(join, "this", "on", "side", "kind")
            side, kind = str(join.side or "").upper(), str(join.kind or "").upper()
            on = join.args.get("on")
            if on is None and side == "" and kind in ("", "CROSS"):
                query = query.select_from(source)
            elif on is not None and side in ("", "LEFT") and kind in ("", "INNER", "OUTER"):
                query = query.join(source, self.condition(on, inner), isouter=side == "LEFT")
            else:
                self.fail(join, "only JOIN … ON, LEFT JOIN … ON and comma joins are supported")
        if (where := node.args.get("where")) is not None:
            query = query.where(self.condition(where.this, inner))
        if (group := node.args.get("group")) is not None:
            self.allow(group, "expressions")
            query = query.group_by(*[self.expression(e, inner) for e in group.expressions])
        if (having := node.args.get("having")) is not None:
            query = query.having(self.condition(having.this, inner))
        if (order := node.args.get("order")) is not None:
            self.allow(order, "expressions")
            query = query.order_by(*[self.ordered(e, inner) for e in order.expressions])
        if (limit := node.args.get("limit")) is not None:
            self.allow(limit, "expression")
            count = _literal_value(limit.expression)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 2**63:
                self.fail(limit, "LIMIT takes a whole number, 0 or more")
            query = query.limit(count)
        if (distinct := node.args.get("distinct")) is not None:
            self.allow(distinct)
            query = query.distinct()
        return query

    def selected(self, node: exp.Expr, scope: _Scope) -> list[ColumnElement[Any]]:
        """One item of a subquery's select list: an expression, ``*`` or ``t.*``."""
        if isinstance(node, exp.Star):
            return [c for source in scope.tables.values() for c in source.columns]
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            qualifier = node.args.get("table")
            source = self._source(scope, qualifier, node.args.get("db")) if qualifier else None
            if source is None:
                self.fail(node, f"no table {node.sql()[:-2]!r} in this subquery")
            return list(source.columns)
        if isinstance(node, exp.Alias):
            self.allow(node, "this", "alias")
            return [self.expression(node.this, scope).label(node.alias)]
        return [self.expression(node, scope)]

    def ordered(self, node: exp.Expr, scope: _Scope) -> ColumnElement[Any]:
        if not isinstance(node, exp.Ordered):
            return self.expression(node, scope)
        # nulls_first is filled in by sqlglot from the dialect's default: ignored.
        self.allow(node, "this", "desc", ignored=("nulls_first",))
        built = self.expression(node.this, scope)
        return built.desc() if node.args.get("desc") else built.asc()

    def table_source(self, node: exp.Expr, scope: _Scope) -> FromClause:
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
        key = _key(alias.this) if alias is not None else _key(name)
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


def _find(source: FromClause, name: exp.Identifier) -> ColumnElement[Any] | None:
    """The column of ``source`` called ``name``; unquoted names match in any case."""
    found = source.columns.get(name.name)
    if found is None and not name.quoted:
        folded = [c for c in source.columns if c.name.lower() == name.name.lower()]
        found = folded[0] if len(folded) == 1 else None
    return found


def _chain(node: exp.Expr) -> list[exp.Expr]:
    """The operands of a chain of one operator (a OR b OR c), left to right, found
    without recursion: a chain of a thousand terms parses as a thousand levels."""
    operands: list[exp.Expr] = []
    pending = [node]
    while pending:
        part = pending.pop()
        if type(part) is type(node):
            pending += [part.expression, part.this]
        else:
            operands.append(part)
    return operands


def _balanced(
    join: Callable[..., ColumnElement[bool]], parts: list[ColumnElement[bool]]
) -> ColumnElement[bool]:
    """``join`` (AND or OR) of ``parts``, in groups of at most ``CHAIN_TERMS``: a database
    parses a plain chain as a tree as deep as it is long, and SQLite refuses one deeper
    than 1,000 ("Expression tree is too large"). Both operators are associative, in
    SQL's three-valued logic too, so grouping changes no result."""
    while len(parts) > CHAIN_TERMS:
        groups = [parts[at : at + CHAIN_TERMS] for at in range(0, len(parts), CHAIN_TERMS)]
        # Through type_coerce: a bare Grouping shows its operator, and SQLAlchemy
        # would flatten it back into the enclosing chain.
        parts = [Grouping(type_coerce(join(*group), types.Boolean())) for group in groups]
    return join(*parts)


def _key(identifier: exp.Identifier) -> str:
    return identifier.name if identifier.quoted else identifier.name.lower()


def _natural_type(value: Any) -> types.TypeEngine[Any]:
    """The type a literal is bound as when no column tells: as written."""
    if isinstance(value, bool):
        return types.Boolean()
    if isinstance(value, int) and -(2**31) <= value < 2**31:
        return types.Integer()
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return types.BigInteger()
    if isinstance(value, int | Decimal):
        # Past 64 bits no integer type holds it: a NUMERIC, as every driver can bind
        # (SQLite's refuses an int that wide outright).
        return types.Numeric()
    return types.String()


def _is_null(element: Any) -> bool:
    """True for NULL, in parentheses or not."""
    while isinstance(element, Grouping):
        element = element.element
    return isinstance(element, Null)


def _family(kind: types.TypeEngine[Any] | None) -> str | None:
    """What a value of ``kind`` is, as far as comparing and computing go; None when
    setwise cannot tell (NULL, a function it does not type, JSON, UUID…)."""
    if isinstance(kind, types.Boolean):
        return "a truth value"
    if isinstance(kind, types.Integer | types.Numeric):
        return "a number"
    if isinstance(kind, types.String):
        return "text"
    if isinstance(kind, types.Date | types.DateTime | types.Time | types.Interval):
        return "a date or time"
    return None


def _as_stored(value: Any, kind: types.TypeEngine[Any]) -> Any:
    """A whole number written 1.0 as an int for an integer column: SQLite's driver
    binds no Decimal there. A fraction stays, for validation to refuse."""
    integral = isinstance(value, Decimal) and value == value.to_integral_value()
    return int(value) if integral and isinstance(kind, types.Integer) else value


def _span(node: exp.Expr) -> tuple[int, int] | None:
    """Where ``node`` was read from: the extent of the tokens under it (or its parent's)."""
    at: exp.Expr | None = node
    while at is not None:
        starts, ends = [], []
        for part in at.walk():
            meta = part.meta
            if "start" in meta:
                starts.append(int(meta["start"]))
                ends.append(int(meta["end"]))
        if starts:
            return min(starts), max(ends)
        at = at.parent
    return None


def _describe(node: exp.Expr) -> str:
    """A readable name for a node: ``CAST``, ``IntDiv`` → ``INTDIV``."""
    return node.key.upper()
