"""Parsed text rebuilt node by node as SQLAlchemy expressions, refusing what the
allow-lists do not name; every literal a bound parameter of a checked kind."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    types,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import Grouping
from sqlglot import exp

from setwise.sqltext.allowed import (
    ALLOWED_FUNCTIONS,
    ARITHMETIC,
    COMPARISONS,
    FUNCTIONS,
    NAMED_FUNCTIONS,
    SELECT_PARTS,
    AllowedFunction,
)
from setwise.sqltext.kinds import as_stored, balanced, family, is_null, natural_type
from setwise.sqltext.names import NameResolver, Scope
from setwise.sqltext.nodes import NOT_LITERAL, chain, describe, literal_value
from setwise.staging.jsonvalues import parse_json
from setwise.staging.validation import Unfit
from setwise.staging.values import in_utc


class Builder(NameResolver):
    """Rebuilds one parsed text as SQLAlchemy expressions, refusing what is not allowed."""

    # -- expressions -----------------------------------------------------------

    def condition(self, node: exp.Expr, scope: Scope) -> ColumnElement[bool]:
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

    def number(self, node: exp.Expr, scope: Scope) -> ColumnElement[Any]:
        """``node`` rebuilt as an operand of arithmetic, which takes numbers: SQLAlchemy
        would turn text + text into joined text, and the databases compute dates and
        text each their own way (MySQL reads '2021-03-04' + 1 as 2022)."""
        built = self.expression(node, scope)
        found = family(built.type)
        if found not in (None, "a number"):
            self.fail(node, f"arithmetic takes numbers, and this is {found}; join text with ||")
        return built

    def expression(
        self, node: exp.Expr, scope: Scope, hint: types.TypeEngine[Any] | None = None
    ) -> ColumnElement[Any]:
        """``node`` rebuilt; ``hint`` is the type a bare literal here should be bound as."""
        if literal_value(node) is not NOT_LITERAL:
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
            return balanced(join, [self.condition(part, scope) for part in chain(node)])
        if type(node) in COMPARISONS:
            left, right = self.pair(node.this, node.expression, scope)
            null_safe = isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ)
            if not null_safe and (is_null(left) or is_null(right)):
                # SQLAlchemy would write = NULL as IS NULL: rows the text never matches.
                self.fail(node, "a comparison with NULL is never true: write IS [NOT] NULL")
            return COMPARISONS[type(node)](left, right)  # type: ignore[no-any-return]
        if type(node) in ARITHMETIC:
            # sqlglot notes how the dialect divides ("typed", "safe"); the database's own
            # operator is what runs, so those notes change nothing here.
            self.allow(node, "this", "expression", ignored=("safe", "typed"))
            if isinstance(node, exp.DPipe):
                left = self.expression(node.this, scope)
                right = self.expression(node.expression, scope)
            else:
                left, right = self.number(node.this, scope), self.number(node.expression, scope)
            return ARITHMETIC[type(node)](left, right)  # type: ignore[no-any-return]
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
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in NAMED_FUNCTIONS:
            if node.expressions:
                self.fail(node, f"{str(node.this).upper()}() takes no arguments")
            return self.function(node, NAMED_FUNCTIONS[str(node.this).upper()], scope, hint)
        if type(node) in FUNCTIONS:
            return self.function(node, FUNCTIONS[type(node)], scope, hint)
        self.refuse(node)

    def refuse(self, node: exp.Expr) -> NoReturn:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            self.fail(node, "parameters are not allowed: write the value itself")
        if isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            self.fail(node, f"function {name.upper()} is not allowed; allowed: {ALLOWED_FUNCTIONS}")
        if isinstance(node, exp.Select | exp.SetOperation):
            self.fail(node, "a query is allowed only in parentheses, as a subquery")
        self.fail(node, f"{describe(node)} is not allowed in {self.label}")

    def pair(
        self, left: exp.Expr, right: exp.Expr, scope: Scope
    ) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """Two operands; a bare literal on one side is bound with the other side's type."""
        if literal_value(left) is not NOT_LITERAL and literal_value(right) is NOT_LITERAL:
            built_right = self.expression(right, scope)
            return self.expression(left, scope, built_right.type), built_right
        built_left = self.expression(left, scope)
        return built_left, self.expression(right, scope, built_left.type)

    def is_(self, node: exp.Is, scope: Scope) -> ColumnElement[Any]:
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

    def in_(self, node: exp.In, scope: Scope) -> ColumnElement[Any]:
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
        self, node: exp.Case, scope: Scope, hint: types.TypeEngine[Any] | None
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
        allowed: AllowedFunction,
        scope: Scope,
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
                if literal_value(candidate) is NOT_LITERAL:
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
        value = literal_value(node)
        if not store:
            self._comparable(node, value, family(hint))
        if isinstance(value, str) and hint is not None:
            value = self._parse_text(node, value, hint)
            if isinstance(
                hint, types.String | types.Date | types.DateTime | types.Time | types.Uuid
            ):
                return literal(value, hint)
        if store and hint is not None:
            return literal(as_stored(value, hint), hint)
        return literal(value, natural_type(value))

    def _comparable(self, node: exp.Expr, value: Any, other: str | None) -> None:
        """Refuse a literal of one kind met with a value of another (``other``, from
        ``family``): PostgreSQL refuses integer = text, where MySQL turns 'many' into 0
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
        if isinstance(kind, types.JSON):  # JSON text, as SQL reads it: never a JSON string
            try:
                return parse_json(value)
            except Unfit as unfit:
                self.fail(node, f"{value!r} is {unfit.reason}")
        for kind_of, parse, wanted in parsers:
            if isinstance(kind, kind_of):
                try:
                    parsed = parse(value)
                except ValueError:
                    self.fail(node, f"{value!r} is not {wanted}")
                if isinstance(parsed, dt.date | dt.time) and getattr(kind, "timezone", True):
                    return parsed
                # As a file's value: an offset into a column without one is UTC.
                if isinstance(parsed, dt.datetime) and parsed.tzinfo is not None:
                    return parsed.astimezone(dt.UTC).replace(tzinfo=None)
                return in_utc(parsed) if isinstance(parsed, dt.time) else parsed
        return value

    # -- subqueries ------------------------------------------------------------

    def select(self, node: exp.Expr, scope: Scope, *, one_column: bool = False) -> Select[Any]:
        """A read-only subquery: SELECT … FROM tables [JOIN …] [WHERE …] [GROUP BY …]…;
        ``one_column``: it stands for a value (IN, a scalar subquery), so selects one."""
        if not isinstance(node, exp.Select):
            self.fail(node, "a subquery must be a single SELECT")
        self.allow(node, *SELECT_PARTS)
        inner = Scope(parent=scope)
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
            count = literal_value(limit.expression)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 2**63:
                self.fail(limit, "LIMIT takes a whole number, 0 or more")
            query = query.limit(count)
        if (distinct := node.args.get("distinct")) is not None:
            self.allow(distinct)
            query = query.distinct()
        return query

    def selected(self, node: exp.Expr, scope: Scope) -> list[ColumnElement[Any]]:
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

    def ordered(self, node: exp.Expr, scope: Scope) -> ColumnElement[Any]:
        if not isinstance(node, exp.Ordered):
            return self.expression(node, scope)
        # nulls_first is filled in by sqlglot from the dialect's default: ignored.
        self.allow(node, "this", "desc", ignored=("nulls_first",))
        built = self.expression(node.this, scope)
        return built.desc() if node.args.get("desc") else built.asc()
