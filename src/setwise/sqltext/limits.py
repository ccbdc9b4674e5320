"""How far ``--where`` / ``--set`` text may go: how deeply it nests, how large its numbers.

sqlglot's parser, the rebuilding in ``sqltext`` and SQLAlchemy's compiler all recurse
once per level of nesting, so text nested deeply enough ends in a ``RecursionError``
(issue 19: 50 nested parentheses, 100 chained NOTs, 1,000 OR'd terms). A number
literal is converted to ``int`` or ``Decimal``, so its size bounds the work done on
it (``int`` of 1e9999999 took minutes and 480 MB). Each check here says what is over
its limit and where; ``sqltext`` turns that into a ``SQLTextError`` with a caret.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlglot import Token, TokenType, exp

#: Levels of parentheses, brackets, CASE and prefix operators (NOT, signs) one text may
#: open inside each other. sqlglot 30's parser takes up to 28 Python frames per level
#: (a function call's parentheses, MySQL dialect; measured with a profiler), so text at
#: the limit parses in under 500 frames, half of Python's default recursion limit,
#: leaving the other half to the caller. Filters written by hand nest a handful.
MAX_NESTING = 16

#: Depth of the parsed tree (a chain of AND or of OR counts once). A chain of binary
#: operators (a - b - c …) parses flat but builds nested: SQLAlchemy's compiler takes
#: up to 6 frames per level (measured for "/"), so the limit keeps compiling under 400.
MAX_DEPTH = 64

#: Digits a number may be written with: ``int()`` refuses more than 4,300
#: (``sys.int_info.default_max_str_digits``), and no column keeps more than
#: PostgreSQL's NUMERIC precision of 1,000.
MAX_DIGITS = 1000

#: Largest power of ten a number may reach, either way. The largest double is 1.8e308:
#: past it no column type holds the value but PostgreSQL's unbounded NUMERIC, and
#: MariaDB refuses it as an illegal double; 1e9999999 as an integer took minutes and
#: 480 MB to convert. Symmetric for tiny numbers, which a double rounds to zero.
MAX_EXPONENT = 308

# A number as SQL writes it, ASCII digits only ("١٢" is a digit to str.isdigit).
_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?")

_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END})
# Tokens that end the operand of a prefix operator at the same level of parentheses.
_OPERAND_ENDS = frozenset(
    {
        TokenType.AND,
        TokenType.OR,
        TokenType.COMMA,
        TokenType.WHEN,
        TokenType.THEN,
        TokenType.ELSE,
    }
)
# Tokens after which a sign is an operator between two operands, not a prefix.
_VALUES = frozenset(
    {
        TokenType.VAR,
        TokenType.NUMBER,
        TokenType.STRING,
        TokenType.IDENTIFIER,
        TokenType.NULL,
        TokenType.TRUE,
        TokenType.FALSE,
        TokenType.STAR,
        *_CLOSERS,
    }
)


@dataclass(frozen=True)
class Overrun:
    """A part of the text past a limit: why, and the node or token it was found at."""

    reason: str
    node: exp.Expr | None = None
    token: Token | None = None


def nesting_overrun(tokens: Sequence[Token], prefixes: Collection[TokenType]) -> Overrun | None:
    """The first token at which ``tokens`` nest more than ``MAX_NESTING`` levels deep.

    Every opener (``(``, ``[``, ``{``, CASE) is a level until its closer. Every prefix
    operator (``prefixes``: NOT and the dialect's unary operators) is one too, until
    the operand it applies to ends: at AND, OR, a comma, WHEN, THEN or ELSE at its own
    level, or when the level closes. Counted from tokens, before sqlglot parses them."""
    # One entry per open level: how many prefix operators wait there for their operand.
    pending = [0]
    previous: TokenType | None = None
    for token in tokens:
        kind = token.token_type
        if kind in _OPENERS:
            pending.append(0)
        elif kind in _CLOSERS:
            if len(pending) > 1:
                pending.pop()
        elif kind in _OPERAND_ENDS:
            pending[-1] = 0
        elif kind in prefixes and (
            kind == TokenType.NOT or previous is None or previous not in _VALUES
        ):
            pending[-1] += 1
        previous = kind
        if len(pending) - 1 + sum(pending) > MAX_NESTING:
            levels = f"{MAX_NESTING} levels of parentheses, CASE and NOT"
            return Overrun(_too_deep(levels), token=token)
    return None


def tree_overrun(root: exp.Expr) -> Overrun | None:
    """The first node past ``MAX_DEPTH`` levels, or a number literal too large to read;
    walked without recursion, so that a tree of any depth is checked."""
    stack: list[tuple[exp.Expr, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return Overrun(_too_deep(f"{MAX_DEPTH} operators, functions and subqueries"), node)
        if isinstance(node, exp.Literal) and not node.is_string:
            problem = number_problem(str(node.this))
            if problem is not None:
                return Overrun(problem, node)
        chained = isinstance(node, exp.And | exp.Or)
        for child in node.iter_expressions():
            flat = chained and type(child) is type(node)
            stack.append((child, depth if flat else depth + 1))
    return None


def number_problem(text: str) -> str | None:
    """Why ``text``, read as a number by sqlglot, is not one setwise takes; None if it is."""
    match = _NUMBER.fullmatch(text)
    if match is None or not (match.group(1) or match.group(2)):
        # sqlglot reads "1e5-1" as one number: its exponent takes a sign anywhere.
        split = re.fullmatch(r"([0-9.]+[eE][+-]?[0-9]+)([+-].*)", text)
        hint = f": write {split.group(1)} {split.group(2)[0]} {split.group(2)[1:]}" if split else ""
        return f"{text!r} is not a number{hint}"
    whole, fraction, _, exponent = match.groups()
    if len(whole) + len(fraction or "") > MAX_DIGITS:
        return f"a number of more than {MAX_DIGITS} digits"
    # An exponent of five digits is out of range with any mantissa of MAX_DIGITS; a
    # longer one is not even handed to Decimal (which refuses one of 19 digits).
    if exponent is not None and len(exponent.lstrip("0")) > 4:
        return f"{_magnitude(text)}: more than 1e{MAX_EXPONENT} or less than 1e-{MAX_EXPONENT}"
    if not -MAX_EXPONENT <= Decimal(text).adjusted() <= MAX_EXPONENT:
        return f"{_magnitude(text)}: more than 1e{MAX_EXPONENT} or less than 1e-{MAX_EXPONENT}"
    return None


def _magnitude(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:10]}…{text[-10:]}"
    return f"{shown} is out of range"


def _too_deep(what: str) -> str:
    return f"nested too deeply: more than {what} inside each other; simplify the expression"
