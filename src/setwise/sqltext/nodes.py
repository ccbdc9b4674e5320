"""Reading sqlglot's nodes: a literal's Python value, the operands of a chain, a name's
lookup key, where a node was read from and what to call it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlglot import exp


class NotLiteral:
    pass


NOT_LITERAL = NotLiteral()


def literal_value(node: exp.Expr) -> Any:
    """The Python value of a literal node (``-5`` included), else ``NOT_LITERAL``."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        value = literal_value(node.this)
        return -value if isinstance(value, int | Decimal) else NOT_LITERAL
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        text = str(node.this)
        if node.is_string:
            return text
        # Digits only: an integer. A decimal point or an exponent: an exact Decimal.
        return int(text) if text.isdigit() else Decimal(text)
    return NOT_LITERAL


def chain(node: exp.Expr) -> list[exp.Expr]:
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


def name_key(identifier: exp.Identifier) -> str:
    return identifier.name if identifier.quoted else identifier.name.lower()


def span(node: exp.Expr) -> tuple[int, int] | None:
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


def describe(node: exp.Expr) -> str:
    """A readable name for a node: ``CAST``, ``IntDiv`` → ``INTDIV``."""
    return node.key.upper()
