"""The SQLAlchemy side of rebuilt text: the kind of value an expression is, the type a
literal is bound as, a column found by name, long AND / OR chains grouped."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, FromClause, type_coerce, types
from sqlalchemy.sql.elements import Grouping, Null
from sqlglot import exp

from setwise.sqltext.allowed import CHAIN_TERMS


def find_column(source: FromClause, name: exp.Identifier) -> ColumnElement[Any] | None:
    """The column of ``source`` called ``name``; unquoted names match in any case."""
    found = source.columns.get(name.name)
    if found is None and not name.quoted:
        folded = [c for c in source.columns if c.name.lower() == name.name.lower()]
        found = folded[0] if len(folded) == 1 else None
    return found


def balanced(
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


def natural_type(value: Any) -> types.TypeEngine[Any]:
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


def is_null(element: Any) -> bool:
    """True for NULL, in parentheses or not."""
    while isinstance(element, Grouping):
        element = element.element
    return isinstance(element, Null)


def family(kind: types.TypeEngine[Any] | None) -> str | None:
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


def as_stored(value: Any, kind: types.TypeEngine[Any]) -> Any:
    """A whole number written 1.0 as an int for an integer column: SQLite's driver
    binds no Decimal there. A fraction stays, for validation to refuse."""
    integral = isinstance(value, Decimal) and value == value.to_integral_value()
    return int(value) if integral and isinstance(kind, types.Integer) else value
