"""The per-database strategies, keyed by SQLAlchemy's ``dialect.name``.

Callers ask ``get_strategy(connection.dialect)``; nothing outside this package
branches on the dialect's name.
"""

from __future__ import annotations

from sqlalchemy.engine import Dialect

from setwise.dialects.base import IntegrityFacts, RowCap, Strategy
from setwise.dialects.mysql import MariaDBStrategy, MySQLStrategy
from setwise.dialects.postgresql import PostgreSQLStrategy
from setwise.dialects.sqlite import SQLiteStrategy

_STRATEGIES: dict[str, type[Strategy]] = {
    "sqlite": SQLiteStrategy,
    "postgresql": PostgreSQLStrategy,
    "mysql": MySQLStrategy,
    "mariadb": MariaDBStrategy,
}


def get_strategy(dialect: Dialect) -> Strategy:
    """The strategy for ``dialect``; the generic one for a dialect setwise does not know."""
    if dialect.name == "mysql" and getattr(dialect, "is_mariadb", False):
        return MariaDBStrategy(dialect)
    return _STRATEGIES.get(dialect.name, Strategy)(dialect)


__all__ = ["IntegrityFacts", "RowCap", "Strategy", "get_strategy"]
