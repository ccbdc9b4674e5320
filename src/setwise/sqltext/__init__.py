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

from setwise.sqltext.allowed import ALLOWED_FUNCTIONS, CHAIN_TERMS
from setwise.sqltext.names import TableLookup
from setwise.sqltext.statement import (
    parse_assignment,
    parse_delete,
    parse_filter,
    parse_update,
    parse_where,
)

__all__ = [
    "ALLOWED_FUNCTIONS",
    "CHAIN_TERMS",
    "TableLookup",
    "parse_assignment",
    "parse_delete",
    "parse_filter",
    "parse_update",
    "parse_where",
]
