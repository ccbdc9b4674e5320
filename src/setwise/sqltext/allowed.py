"""What ``--where`` / ``--set`` text may hold: the allow-lists the builder rebuilds from
(operators, functions, the parts of a subquery) and the tokens refused on sight."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql import operators
from sqlglot import TokenType, exp

# Tokens that begin a statement of their own: refused with a plain message before
# parsing, though the allow-list below would refuse them too.
STATEMENT_TOKENS = frozenset(
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

COMPARISONS: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.EQ: operators.eq,
    exp.NEQ: operators.ne,
    exp.GT: operators.gt,
    exp.GTE: operators.ge,
    exp.LT: operators.lt,
    exp.LTE: operators.le,
    exp.NullSafeEQ: operators.is_not_distinct_from,
    exp.NullSafeNEQ: operators.is_distinct_from,
}

ARITHMETIC: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
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
class AllowedFunction:
    """An allowed function: its SQLAlchemy name and the sqlglot arguments it may carry."""

    name: str
    arguments: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    """Arguments sqlglot sets by itself, which change nothing here."""
    aggregate: bool = False


FUNCTIONS: dict[type[exp.Expr], AllowedFunction] = {
    exp.Abs: AllowedFunction("abs", ("this",)),
    exp.Coalesce: AllowedFunction("coalesce", ("this", "expressions")),
    exp.CurrentDate: AllowedFunction("current_date", ()),
    exp.CurrentTimestamp: AllowedFunction("current_timestamp", ()),
    exp.Lower: AllowedFunction("lower", ("this",)),
    exp.Nullif: AllowedFunction("nullif", ("this", "expression")),
    exp.Round: AllowedFunction("round", ("this", "decimals")),
    exp.Substring: AllowedFunction("substr", ("this", "start", "length")),
    exp.Trim: AllowedFunction("trim", ("this",)),
    exp.Upper: AllowedFunction("upper", ("this",)),
    exp.Avg: AllowedFunction("avg", ("this",), aggregate=True),
    exp.Count: AllowedFunction("count", ("this",), ignored=("big_int",), aggregate=True),
    exp.Max: AllowedFunction("max", ("this",), aggregate=True),
    exp.Min: AllowedFunction("min", ("this",), aggregate=True),
    exp.Sum: AllowedFunction("sum", ("this",), aggregate=True),
}

#: Functions sqlglot does not model in some dialect, by the name written. sqlglot reads
#: them as ``exp.Anonymous``, whose ``this`` is the name written, not an argument.
NAMED_FUNCTIONS = {"NOW": AllowedFunction("current_timestamp", (), ignored=("this",))}

ALLOWED_FUNCTIONS = (
    "ABS, CHAR_LENGTH, COALESCE (IFNULL), CURRENT_DATE, CURRENT_TIMESTAMP (NOW), LENGTH, "
    "LOWER, NULLIF, ROUND, SUBSTR (SUBSTRING), TRIM, UPPER; in a subquery also AVG, COUNT, "
    "MAX, MIN, SUM"
)

#: Terms of one AND or OR chain written without parentheses around groups of them:
#: a database's parser nests each term a level deeper (``balanced``). 64 keeps any
#: chain within a few hundred levels, far below SQLite's limit of 1,000.
CHAIN_TERMS = 64

# The parts of a subquery's SELECT that are rebuilt; any other part (WITH, FOR UPDATE,
# INTO, window clauses…) is refused.
SELECT_PARTS = frozenset(
    {"expressions", "from_", "joins", "where", "group", "having", "order", "limit", "distinct"}
)
